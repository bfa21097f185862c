"""The serving app (FastAPI): the latest features of a use case's entities and the champion's predictions.

``GET /health``, ``POST /features``, ``POST /predict`` (a ranking use case, the recommender:
``POST /recommend`` instead, :mod:`pitlake.serving.recommendations`); OpenAPI docs at ``/docs``. Started by
``make serve`` (``python -m pitlake serve``) on 127.0.0.1:8000 or as the compose ``serving``
service. Requests are validated by pydantic; a bad one gets a 4xx with one line in ``detail``
(400: malformed JSON; 422: a wrong type, an unknown feature, a missing key, more than
:data:`MAX_ENTITIES` entities). Answers are encoded with orjson. Every prediction is logged to
``monitoring.predictions`` through :class:`~pitlake.serving.prediction_log.PredictionLog`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from pitlake.core.settings import Settings
from pitlake.serving.champion import ChampionWatcher
from pitlake.serving.lookup import EntityFeatures, FeatureLookup, UnknownFeatureError
from pitlake.serving.prediction_log import PredictionLog
from pitlake.serving.recommendations import CandidatePool
from pitlake.serving.store import OnlineStore, StoreUnavailable, open_store
from pitlake.training_set.build import get_use_case

MAX_ENTITIES = 1000
MAX_RECOMMENDATIONS = 100


class FeaturesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entities: list[dict[str, StrictStr]] = Field(
        min_length=1, max_length=MAX_ENTITIES, description='entity keys, e.g. [{"customer_id": "c0001"}]'
    )
    features: list[StrictStr] | None = Field(
        default=None, description="'<view>:<feature>' references; all of the use case's features when omitted"
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entities: list[dict[str, StrictStr]] = Field(min_length=1, max_length=MAX_ENTITIES)


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: StrictStr = Field(min_length=1)
    k: int = Field(default=10, ge=1, le=MAX_RECOMMENDATIONS, description="how many products to recommend")


class FeaturesResponse(BaseModel):
    results: list[dict[str, Any]]


class PredictResponse(BaseModel):
    model: str
    model_version: int
    predictions: list[dict[str, Any]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status, media_type="application/json"
    )


def _problem(status: int, detail: str) -> Response:
    return _json({"detail": detail}, status)


def _one_line(err: RequestValidationError) -> tuple[int, str]:
    first = err.errors()[0] if err.errors() else {}
    if first.get("type") == "json_invalid":
        return 400, f"malformed JSON: {first.get('ctx', {}).get('error', 'cannot parse the body')}"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return 422, f"{where}: {first.get('msg', 'invalid request')}"


def create_app(
    settings: Settings,
    *,
    use_case: str = "purchase_propensity",
    store: OnlineStore | None = None,
    clock: Callable[[], datetime] | None = None,
    reload_seconds: float = 20.0,
    flush_seconds: float = 5.0,
    log_predictions: bool = True,
) -> FastAPI:
    """The app for ``use_case``; ``store`` defaults to the configured online store.

    ``clock`` gives the request time (naive UTC) the features are looked up at; by default UTC now,
    or with ``PITLAKE_SERVING_CLOCK=materialization`` the newest materialization's ``as_of``.
    """
    uc = get_use_case(use_case)
    keys = uc.keys
    store = store or open_store(settings)
    lookup = FeatureLookup(store, uc)
    watcher = ChampionWatcher(settings, uc.name, reload_seconds=reload_seconds)
    predictions = PredictionLog(settings, flush_seconds=flush_seconds)

    def now() -> datetime:
        if clock is not None:
            return clock()
        if settings.serving_clock == "materialization":
            return lookup.latest_as_of() or datetime.now(UTC).replace(tzinfo=None)
        return datetime.now(UTC).replace(tzinfo=None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        if log_predictions:
            predictions.start()
        try:
            yield
        finally:
            watcher.stop()
            if log_predictions:
                predictions.close()
            store.close()

    app = FastAPI(
        title="pitlake serving",
        version="1",
        description=f"Online features and predictions for the use case `{uc.name}`: {uc.description}",
        lifespan=lifespan,
    )
    app.state.lookup, app.state.watcher, app.state.predictions = lookup, watcher, predictions

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> Response:
        return _problem(*_one_line(err))

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, err: StoreUnavailable) -> Response:
        return _problem(503, str(err))

    # The recommender's views have keys of their own (customer, product, customer x category, ...): an entity
    # names the keys of the views asked for, and each view is looked up by its own.
    same_keys = all(tuple(v.keys) == tuple(keys) for v in lookup.views)
    all_keys = sorted({k for v in lookup.views for k in v.keys})

    def by_view_keys(entities: list[dict[str, str]], views: list[str], at: datetime) -> list[EntityFeatures] | Response:
        merged = [EntityFeatures(tuple(e.get(k, "") for k in keys), False, False, {}, {}) for e in entities]
        for ref in views:
            view_keys = lookup.refs[ref].keys
            for i, entity in enumerate(entities):
                missing = [k for k in view_keys if k not in entity]
                if missing:
                    return _problem(422, f"entities.{i}: view {ref} needs keys {list(view_keys)}, missing {missing}")
            for result, one in zip(merged, lookup.lookup_view(ref, [tuple(e[k] for k in view_keys) for e in entities],
                                                                at), strict=True):  # fmt: skip
                result.found |= one.found
                result.stale |= one.stale
                result.values.update(one.values)
                result.feature_time.update(one.feature_time)
        return merged

    def entity_tuples(entities: list[dict[str, str]]) -> list[tuple[str, ...]] | Response:
        out = []
        for i, entity in enumerate(entities):
            if not same_keys:
                unknown = sorted(set(entity) - set(all_keys))
                if unknown:
                    return _problem(422, f"entities.{i}: unknown keys {unknown}; the views' keys are {all_keys}")
                out.append(tuple(entity.get(k, "") for k in keys))
                continue
            if set(entity) != set(keys):
                return _problem(422, f"entities.{i}: needs exactly the keys {list(keys)}, got {sorted(entity)}")
            out.append(tuple(entity[k] for k in keys))
        return out

    @app.get("/health")
    async def health() -> Response:
        reachable = store.ping()
        champion = watcher.current
        states = lookup.states() if reachable else {}
        body = {
            "status": "ok" if reachable and champion is not None else "degraded",
            "use_case": uc.name,
            "store": {"kind": store.kind, "reachable": reachable},
            "model": {
                "name": uc.name,
                "loaded": champion is not None,
                "version": champion.version if champion else None,
                "run_id": champion.run_id if champion else None,
                "compiled": champion.compiled is not None if champion else None,
                "error": watcher.error,
            },
            "materializations": {
                ref: (
                    {k: s.record[k] for k in ("as_of", "delta_version", "mode", "keys_written", "materialized_at")}
                    if s.record
                    else None
                )
                for ref, s in states.items()
            },
            "predictions": {
                "pending": predictions.pending(),
                "written": predictions.written,
                "error": predictions.last_error,
            },
        }
        return _json(body, 200 if body["status"] == "ok" else 503)

    @app.post("/features", response_model=FeaturesResponse)
    async def features(request: FeaturesRequest) -> Response:
        entities = entity_tuples(request.entities)
        if isinstance(entities, Response):
            return entities
        try:
            wanted = lookup.resolve(request.features)
        except UnknownFeatureError as err:
            return _problem(422, str(err))
        views = list(dict.fromkeys(v for v, _ in wanted))
        at = now()
        found = lookup.lookup(entities, at, views) if same_keys else by_view_keys(request.entities, views, at)
        if isinstance(found, Response):
            return found
        results = []
        for raw, result in zip(request.entities, found, strict=True):
            item: dict[str, Any] = dict(raw)
            item["found"] = result.found
            item["features"] = {f"{v}:{f}": result.values[f] for v, f in wanted}
            item["feature_time"] = result.feature_time
            item["stale"] = result.stale
            results.append(item)
        return _json({"as_of": at.isoformat() + "Z", "results": results})

    if uc.task == "ranking":
        pool = CandidatePool(lookup)

        @app.post("/recommend")
        async def recommend(request: RecommendRequest) -> Response:
            champion = watcher.current
            if champion is None:
                return _problem(503, f"no champion model loaded for {uc.name}: {watcher.error or 'loading'}")
            at = now()
            found = pool.candidates(request.customer_id, at)
            if not found.products:  # nothing carted, nothing sold lately (or every feature row past its TTL)
                return _json({
                    "model": champion.name, "model_version": champion.version, "customer_id": request.customer_id,
                    "as_of": at.isoformat() + "Z", "candidates": 0, "from_history": 0, "recommendations": [],
                    "detail": "no candidate: the customer carted or bought nothing in 28 days and no product sold "
                    "in 7 days, as of the features the store holds for this time",
                })  # fmt: skip
            scores = champion.score([{f: v.get(f) for f in champion.features} for v in found.vectors])
            ranked = sorted(zip(found.products, found.categories, scores, strict=True), key=lambda t: (-t[2], t[0]))
            items = [{"product_id": p, "category": c, "score": float(score), "rank": i}
                     for i, (p, c, score) in enumerate(ranked[: request.k], start=1)]  # fmt: skip
            return _json({
                "model": champion.name, "model_version": champion.version, "customer_id": request.customer_id,
                "as_of": at.isoformat() + "Z", "candidates": len(found.products), "from_history": found.from_history,
                "recommendations": items,
            })  # fmt: skip

        return app

    @app.post("/predict", response_model=PredictResponse)
    async def predict(request: PredictRequest) -> Response:
        champion = watcher.current
        if champion is None:
            return _problem(503, f"no champion model loaded for {uc.name}: {watcher.error or 'loading'}")
        entities = entity_tuples(request.entities)
        if isinstance(entities, Response):
            return entities
        at = now()
        found = lookup.lookup(entities, at)
        vectors = [{f: r.values.get(f) for f in champion.features} for r in found]
        scores = champion.score(vectors)
        as_ofs = [s.as_of for s in lookup.states().values() if s.as_of is not None]
        as_of = min(as_ofs).replace(tzinfo=UTC) if as_ofs else None
        predicted_at = at.replace(tzinfo=UTC)
        out, records = [], []
        for entity, result, vector, score in zip(entities, found, vectors, scores, strict=True):
            request_id = uuid.uuid4().hex
            item: dict[str, Any] = dict(zip(keys, entity, strict=True))
            item["score"] = float(score)
            item["request_id"] = request_id
            out.append(item)
            if log_predictions:
                records.append(
                    {
                        "request_id": request_id,
                        "predicted_at": predicted_at,
                        "prediction_date": predicted_at.date(),
                        "use_case": uc.name,
                        "model_name": champion.name,
                        "model_version": champion.version,
                        **dict(zip(keys, entity, strict=True)),
                        "found": result.found,
                        "features": orjson.dumps(vector).decode(),
                        "feature_as_of": as_of,
                        "score": float(score),
                    }
                )
        if records:
            predictions.append(records)
        return _json({"model": champion.name, "model_version": champion.version, "predictions": out})

    return app
