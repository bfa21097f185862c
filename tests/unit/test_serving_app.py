"""The serving app through HTTP (FastAPI's TestClient): features, predictions, bad requests, the prediction log,
the champion's reload. No JVM: feature tables are written with delta-rs, the champion is a small fitted model."""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import datetime

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pitlake.features import get_view
from pitlake.serving.app import MAX_ENTITIES, create_app
from pitlake.serving.materialize import materialize
from pitlake.serving.store import SQLiteStore, sqlite_path
from pitlake.training.dataset import model_inputs
from pitlake.training_set.build import get_use_case

from tests.builders import register_champion, training_frame, write_feature_day

ACTIVITY = get_view("customer_activity")
PROFILE = get_view("customer_profile")
FEATURES = get_use_case("purchase_propensity").feature_columns()
AS_OF = datetime(2026, 1, 3)


@pytest.fixture(scope="module")
def served(tmp_path_factory, repo_settings, mlflow_template):
    """A home with two days of features materialized as of Jan 3 00:00 and a registered champion."""
    home = tmp_path_factory.mktemp("serving") / "home"
    settings = dataclasses.replace(
        repo_settings, home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    )
    (home / "mlflow").mkdir(parents=True)
    shutil.copy(mlflow_template, home / "mlflow" / "mlflow.db")
    write_feature_day(settings, ACTIVITY, "2026-01-01", [
        {"customer_id": "fresh", "count_purchases_7d": 1, "count_page_views_1d": 9},
        {"customer_id": "expired", "count_purchases_7d": 5, "count_page_views_1d": 2},
    ], "2026-01-02T01:00:00")  # fmt: skip
    write_feature_day(settings, ACTIVITY, "2026-01-02", [
        {"customer_id": "fresh", "count_purchases_7d": 2, "count_page_views_1d": 4, "sum_purchase_amount_7d": 12.5,
         "days_since_last_purchase": 0},
    ], "2026-01-03T01:00:00")  # fmt: skip
    write_feature_day(settings, PROFILE, "2026-01-02", [
        {"customer_id": "fresh", "segment": "vip", "country": "DE", "loyalty_tier": "gold", "tenure_days": 40},
    ], "2026-01-03T01:00:00")  # fmt: skip
    store = SQLiteStore(sqlite_path(settings))
    for view in (ACTIVITY, PROFILE):
        materialize(settings, view, as_of=AS_OF, store=store)
    store.close()
    frame, label = training_frame()
    version = register_champion(settings, frame, label)
    return settings, version, frame, label


@pytest.fixture(scope="module")
def client(served):
    settings = served[0]
    app = create_app(settings, clock=lambda: AS_OF, reload_seconds=0.5, flush_seconds=60)
    with TestClient(app) as c:
        yield c


def offline_score(served, row: dict) -> float:
    """The champion applied to one training-set row, as training applies it (kinds from a training frame)."""
    import mlflow.sklearn

    settings, version = served[0], served[1]
    from pitlake.core import tracking

    tracking.connect(settings)
    model = mlflow.sklearn.load_model(f"models:/purchase_propensity/{version}")
    frame = pd.concat([served[2].head(0), pd.DataFrame([row])], ignore_index=True)[FEATURES]
    numeric = [c for c in FEATURES if c not in ("segment", "country", "loyalty_tier")]
    return float(model.predict_proba(model_inputs(frame, FEATURES, numeric=numeric))[:, 1][0])


def test_features_of_a_fresh_an_expired_and_an_unknown_customer(client):
    body = {"entities": [{"customer_id": "fresh"}, {"customer_id": "expired"}, {"customer_id": "nobody"}],
            "features": ["customer_activity:count_purchases_7d", "customer_profile:segment"]}  # fmt: skip
    response = client.post("/features", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "as_of": "2026-01-03T00:00:00Z",
        "results": [
            {"customer_id": "fresh", "found": True, "stale": False,
             "features": {"customer_activity:count_purchases_7d": 2, "customer_profile:segment": "vip"},
             "feature_time": {"customer_activity": "2026-01-03T00:00:00Z", "customer_profile": "2026-01-03T00:00:00Z"}},
            # Its last activity row (Jan 2 00:00) is exactly at as_of - TTL: still valid (inclusive bound).
            {"customer_id": "expired", "found": True, "stale": False,
             "features": {"customer_activity:count_purchases_7d": 5, "customer_profile:segment": None},
             "feature_time": {"customer_activity": "2026-01-02T00:00:00Z", "customer_profile": None}},
            {"customer_id": "nobody", "found": False, "stale": False,
             "features": {"customer_activity:count_purchases_7d": None, "customer_profile:segment": None},
             "feature_time": {"customer_activity": None, "customer_profile": None}},
        ],
    }  # fmt: skip


def test_a_row_past_its_ttl_is_served_as_nulls_and_flagged_stale(served):
    app = create_app(served[0], clock=lambda: datetime(2026, 1, 3, 0, 0, 1), log_predictions=False)
    with TestClient(app) as c:
        result = c.post("/features", json={"entities": [{"customer_id": "expired"}]}).json()["results"][0]
    assert result["found"] and result["stale"]
    assert set(result["features"].values()) == {None} and len(result["features"]) == len(FEATURES)
    assert list(result["features"])[:2] == [
        "customer_activity:count_page_views_1d",
        "customer_activity:count_page_views_7d",
    ]


def test_predictions_are_the_champion_applied_to_the_training_row_and_are_logged(served, client):
    from deltalake import DeltaTable

    response = client.post("/predict", json={"entities": [{"customer_id": "fresh"}, {"customer_id": "nobody"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["model_version"]) == ("purchase_propensity", served[1])
    fresh = dict.fromkeys(FEATURES) | {"count_purchases_7d": 2, "count_page_views_1d": 4,
                                        "sum_purchase_amount_7d": 12.5, "days_since_last_purchase": 0,
                                        "segment": "vip", "country": "DE", "loyalty_tier": "gold",
                                        "tenure_days": 40}  # fmt: skip
    expected = [offline_score(served, fresh), offline_score(served, dict.fromkeys(FEATURES))]
    assert [p["customer_id"] for p in body["predictions"]] == ["fresh", "nobody"]
    assert [p["score"] for p in body["predictions"]] == pytest.approx(expected, abs=1e-12)
    assert len({p["request_id"] for p in body["predictions"]}) == 2

    log = client.app.state.predictions
    assert log.pending() >= 2
    assert log.flush() >= 2
    rows = DeltaTable(served[0].table_path("monitoring.predictions")).to_pandas()
    mine = rows[rows["request_id"].isin([p["request_id"] for p in body["predictions"]])].sort_values("customer_id")
    assert mine["customer_id"].tolist() == ["fresh", "nobody"]
    assert mine["found"].tolist() == [True, False]
    assert mine["score"].tolist() == pytest.approx(expected, abs=1e-12)
    assert str(mine["predicted_at"].iloc[0]) == "2026-01-03 00:00:00+00:00"
    assert mine["model_version"].tolist() == [served[1]] * 2


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ('{"entities": [', 400, "malformed JSON"),
        ({"entities": [{"customer_id": 7}]}, 422, "entities.0.customer_id: Input should be a valid string"),
        ({"entities": [{"customer": "a"}]}, 422,
         "entities.0: needs exactly the keys ['customer_id'], got ['customer']"),
        ({"entities": []}, 422, "entities: List should have at least 1 item"),
        ({"entities": [{"customer_id": "a"}], "features": ["customer_activity:nope"]}, 422,
         "unknown feature 'customer_activity:nope' for use case purchase_propensity"),
        ({"entities": [{"customer_id": "a"}], "features": ["nope"]}, 422, "unknown feature 'nope'"),
        ({"entities": [{"customer_id": str(i)} for i in range(MAX_ENTITIES + 1)]}, 422,
         "entities: List should have at most 1000 items"),
        ({"entities": [{"customer_id": "a"}], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_bad_request_gets_a_4xx_with_one_line(client, body, status, detail):
    if isinstance(body, str):
        response = client.post("/features", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/features", json=body)
    assert response.status_code == status, response.text
    message = response.json()["detail"]
    assert isinstance(message, str) and "\n" not in message
    assert message.startswith(detail), message


def test_health_docs_and_a_reload_when_the_champion_alias_moves(served, client):
    from pitlake.core import tracking

    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"]["version"] == served[1]
    assert health["model"]["compiled"] is True  # served by the compiled form, proven equal at load
    assert health["materializations"]["customer_activity"]["as_of"] == "2026-01-03T00:00:00"
    assert client.get("/docs").status_code == 200
    assert "/predict" in client.get("/openapi.json").json()["paths"]

    settings, frame, label = served[0], served[2], served[3]
    newer = register_champion(settings, frame.iloc[::-1].reset_index(drop=True), label[::-1])
    deadline = time.monotonic() + 20
    while client.get("/health").json()["model"]["version"] != newer and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.post("/predict", json={"entities": [{"customer_id": "fresh"}]}).json()["model_version"] == newer
    tracking.connect(settings).set_registered_model_alias("purchase_propensity", "champion", str(served[1]))


def test_a_clean_shutdown_writes_every_buffered_prediction_and_a_failed_write_loses_none(served, monkeypatch):
    from deltalake import DeltaTable
    from pitlake.monitoring import predictions as table

    app = create_app(served[0], clock=lambda: AS_OF, flush_seconds=3600)  # only the shutdown flushes
    calls = {"n": 0}
    real = table.write_predictions

    def flaky(settings, records):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(settings, records)

    monkeypatch.setattr(table, "write_predictions", flaky)
    with TestClient(app) as c:
        ids = []
        for customer in ("fresh", "expired", "nobody"):
            body = c.post("/predict", json={"entities": [{"customer_id": customer}]}).json()
            ids += [p["request_id"] for p in body["predictions"]]
        log = c.app.state.predictions
        assert log.flush() == 0 and log.pending() == 3 and log.last_error == "disk full"  # kept for the next flush
    rows = DeltaTable(served[0].table_path("monitoring.predictions")).to_pyarrow_table().to_pylist()
    assert sorted(r["customer_id"] for r in rows if r["request_id"] in ids) == ["expired", "fresh", "nobody"]
