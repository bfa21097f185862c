"""One day's check of the serving model (the ``champion``): realized quality once labels mature, and drift.

``monitor(settings, use_case, day)``, without a JVM (``deltalake`` reads, pandas, scikit-learn, MLflow):

1. *Model*: the registered model named after the use case at alias ``champion``, its run's
   ``lineage/manifest.json`` (training set, features, evaluation metrics) and the gate's ROC AUC floor
   (the version's ``gate.quality_floor`` tag, else the run's ``quality_floor`` metric).
2. *Outcomes*: a prediction served at ``t`` has outcome 1 when the customer purchases in
   ``(t, t + H]`` (``bronze.events``, ``H`` = :data:`pitlake.labels.build.HORIZON`), the label's own
   semantics. It is *matured* when ``t + H <= observed_until``, where ``observed_until`` is the day after
   the latest ``ingest_date`` minus the lateness window, as in :mod:`pitlake.labels.build`.
3. *Evaluation window*: a prediction date counts once all of its predictions matured
   (``d + 1 day + H <= observed_until``, the rule label dates follow), so a window never holds half a
   day; the window is the ``eval_days`` days ending at the latest such date ``<= day`` (and at most
   :data:`LOOKBACK_DAYS` before it) with a prediction of the champion's version. Other versions'
   predictions in it are counted and left out; a request id logged twice (a retried batch) counts once.
4. *Realized metrics*: ROC AUC, Brier, calibration (:mod:`pitlake.monitoring.metrics`); with fewer than
   :data:`MIN_EVAL_PREDICTIONS` matured predictions or a single class the AUC is "insufficient", never a breach.
5. *Drift*: PSI (:func:`pitlake.monitoring.metrics.psi`; plain numpy rather than Great Expectations, whose
   suites check a table's own rows, not one sample against another) of each model feature as served in the
   ``drift_days`` days ending at ``day`` against the champion's training set rows of its evaluation window
   (label times from the manifest's ``eval_start``: the newest rows, which the gate scored it on; older
   ones include the history's warm-up), numeric or categorical by the training frame's dtype.
6. *Breach*: realized ROC AUC < floor, or a feature's PSI > ``psi_threshold``. The HTML report and the
   result's JSON go to ``$PITLAKE_HOME/monitoring/reports/<use_case>/<day>.{html,json}`` and to the
   champion's run under ``monitoring/``, with ``monitoring.*`` tags on that run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pitlake.core import tracking
from pitlake.core.dates import day_start
from pitlake.core.errors import ConfigError, InputError, PitlakeError
from pitlake.core.settings import Settings
from pitlake.labels.build import HORIZON
from pitlake.monitoring import metrics, report
from pitlake.monitoring.predictions import PREDICTIONS_TABLE, read_predictions
from pitlake.registry import promote as registry
from pitlake.training_set.build import get_use_case

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

EVENTS_TABLE = "bronze.events"
MIN_EVAL_PREDICTIONS = 50
LOOKBACK_DAYS = 60  # how far before `day` the latest fully matured prediction date is looked for
EVAL_COLUMNS = ["request_id", "predicted_at", "prediction_date", "model_version", "customer_id", "score"]


class MonitoringBreach(PitlakeError):
    """The serving model breached its floor or drifted; ``str(err)`` is the one-line summary."""

    retryable = False


@dataclass
class MonitorResult:
    use_case: str
    day: str
    model_name: str
    model_version: int
    run_id: str
    training_set_id: str
    training_set_version: int
    features: list[str]
    training_roc_auc: float | None  # the evaluation ROC AUC recorded at training time
    floor: float | None
    floor_source: str
    observed_until: str | None  # outcomes are known for instants before this day's 00:00
    bronze_version: int | None
    evaluation: str  # evaluated | insufficient | none_matured | champion_not_served | nothing_served
    eval_days: int
    eval_start: str | None
    eval_end: str | None
    evaluated: int  # matured predictions of the champion's version in the window
    other_versions_excluded: int
    pending: int  # the champion's predictions after the window up to `day`: not matured yet
    duplicates_dropped: int
    realized: dict[str, Any]
    calibration: list[dict[str, Any]]
    drift_days: int
    drift_start: str
    drift_end: str
    drift_rows: int
    found_rate: float | None
    psi: dict[str, float]
    feature_kinds: dict[str, str]
    psi_threshold: float
    min_eval_predictions: int
    breached: bool
    reasons: list[str]
    message: str
    report_html: str | None = None
    report_json: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def raise_on_breach(result: MonitorResult) -> None:
    """A one-line :class:`MonitoringBreach` when ``result`` breached; nothing otherwise."""
    if result.breached:
        raise MonitoringBreach(result.message)


def _utc_naive(values: pd.Series) -> pd.Series:
    import pandas as pd

    stamps = pd.to_datetime(values)
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None) if stamps.dt.tz is not None else stamps


def observed_until(settings: Settings) -> tuple[date, int]:
    """(the first day whose events may be incomplete, the ``bronze.events`` version read): the latest
    ``ingest_date`` + 1 day − ``max_event_lateness_days``, as :func:`pitlake.labels.build.observed_until`."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        delta = DeltaTable(settings.table_path(EVENTS_TABLE))
    except TableNotFoundError:
        raise InputError(f"{EVENTS_TABLE} does not exist: outcomes need it; run feature_pipeline first") from None
    column = delta.to_pyarrow_dataset().to_table(columns=["ingest_date"], use_threads=False).column(0)
    latest = pc.max(column).as_py()
    if latest is None:
        raise InputError(f"{EVENTS_TABLE} is empty: ingest some days before monitoring outcomes")
    return latest + timedelta(days=1 - settings.max_event_lateness_days), int(delta.version())


def purchases(settings: Settings, start: date, end: date, version: int) -> pd.DataFrame:
    """``customer_id, event_time`` (naive UTC) of the purchases with ``event_date`` in ``[start, end]``."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    dataset = DeltaTable(settings.table_path(EVENTS_TABLE), version=version).to_pyarrow_dataset(
        partitions=[("event_date", ">=", start.isoformat()), ("event_date", "<=", end.isoformat())]
    )
    wanted = pc.field("event_type") == "purchase"
    frame = dataset.to_table(columns=["customer_id", "event_time"], filter=wanted, use_threads=False).to_pandas()
    return frame.assign(event_time=_utc_naive(frame["event_time"]))


def outcomes(
    predictions: pd.DataFrame, bought: pd.DataFrame, until: date, horizon: timedelta = HORIZON
) -> pd.DataFrame:
    """``predictions`` with ``matured`` (``predicted_at + horizon <= until`` 00:00) and ``outcome``: 1 when
    ``bought`` has a purchase of the customer in ``(predicted_at, predicted_at + horizon]``, else 0; <NA>
    when not matured (a purchase may still come)."""
    import numpy as np
    import pandas as pd

    at = _utc_naive(predictions["predicted_at"]).reset_index(drop=True)
    rows = pd.DataFrame({"_row": np.arange(len(at)), "customer_id": predictions["customer_id"].to_numpy(), "_t": at})
    pairs = rows.merge(bought[["customer_id", "event_time"]], on="customer_id", how="inner")
    hit = pairs[(pairs["event_time"] > pairs["_t"]) & (pairs["event_time"] <= pairs["_t"] + horizon)]["_row"]
    matured = (at + horizon <= pd.Timestamp(day_start(until))).to_numpy()
    outcome = pd.array(np.isin(np.arange(len(at)), hit.to_numpy()).astype(int), dtype="Int64")
    outcome[~matured] = pd.NA
    return predictions.assign(matured=matured, outcome=outcome)


@dataclass(frozen=True)
class Champion:
    name: str
    version: int
    run_id: str
    manifest: Any  # pitlake.lineage.manifest.LineageManifest
    floor: float | None
    floor_source: str


def champion(client: MlflowClient, settings: Settings, name: str, auc_floor: float | None) -> Champion:
    """The ``champion`` version of ``name``, its lineage manifest and its ROC AUC floor."""
    version = registry.aliases(client, name).get(registry.CHAMPION)
    if version is None:
        raise ConfigError(
            f"{name} has no champion in the model registry at {tracking.tracking_uri(settings)}: "
            "run train_model first (the first version that passes the gate becomes champion)"
        )
    manifest = registry.model_manifest(client, name, version)
    mv = client.get_model_version(name, str(version))
    tag = (mv.tags or {}).get("gate.quality_floor")
    metric = client.get_run(mv.run_id).data.metrics.get("quality_floor") if mv.run_id else None
    if auc_floor is not None:
        floor, source = float(auc_floor), "given"
    elif tag not in (None, "", "none"):
        floor, source = float(str(tag)), f"gate.quality_floor tag of v{version}"
    elif metric is not None:
        floor, source = float(metric), "quality_floor metric of its run"
    else:
        floor, source = None, "none recorded"
    return Champion(name, version, str(mv.run_id), manifest, floor, source)


def _dedupe(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    unique = frame.drop_duplicates("request_id", keep="first")
    return unique, len(frame) - len(unique)


def _drift(settings: Settings, model: Champion, served: pd.DataFrame) -> tuple[dict[str, float], dict[str, str]]:
    """PSI of each model feature as served against the champion's training set rows, and each feature's kind."""
    import dataclasses

    import pandas as pd

    from pitlake.training.dataset import feature_kinds, read_training_set
    from pitlake.training_set.manifest import read_manifest

    ts = model.manifest.training_set
    use_case = get_use_case(ts.use_case)
    build = read_manifest(settings, use_case.name, ts.training_set_id)
    build = dataclasses.replace(build, delta_version=ts.delta_version, row_count=ts.row_count)  # the model's pin
    frame = read_training_set(settings, use_case, build)
    # The reference is the training set's evaluation window (the newest label dates, the rows the gate
    # scored the model on): the older rows include the history's warm-up, when 28-day windows were not
    # yet full and customers not yet seen, which no served vector resembles.
    eval_start = pd.Timestamp(model.manifest.training.eval_start)
    recent = frame[pd.to_datetime(frame[use_case.spine_time]) >= eval_start]
    frame = recent if len(recent) else frame
    features = list(model.manifest.training.feature_columns)
    numeric, _ = feature_kinds(frame, features)
    vectors = pd.DataFrame.from_records([json.loads(s) for s in served["features"]], index=range(len(served)))
    scores, kinds = {}, {}
    for feature in features:
        values = vectors[feature] if feature in vectors else pd.Series([None] * len(served), dtype="object")
        kind = "numeric" if feature in numeric else "categorical"
        if kind == "numeric":  # JSON true/false of a boolean feature compare as 1/0, like the model sees them
            values = values.map(lambda v: float(v) if isinstance(v, bool) else v)
        scores[feature] = metrics.psi(frame[feature], values, categorical=kind == "categorical")
        kinds[feature] = kind
    return scores, kinds


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def monitor(
    settings: Settings,
    use_case: str,
    day: date,
    *,
    eval_days: int = 7,
    drift_days: int = 1,
    psi_threshold: float = 0.2,
    auc_floor: float | None = None,
    client: MlflowClient | None = None,
) -> MonitorResult:
    """Check the champion of ``use_case`` on ``day`` (see the module docstring), write and log the report."""
    if eval_days < 1 or drift_days < 1 or not psi_threshold > 0:
        raise ConfigError(f"eval_days ({eval_days}) and drift_days ({drift_days}) must be >= 1, psi_threshold > 0")
    uc = get_use_case(use_case)
    if uc.keys != ("customer_id",):
        raise ConfigError(f"{PREDICTIONS_TABLE} logs customer_id only; use case {uc.name} is keyed by {uc.keys}")
    client = client or tracking.connect(settings)
    model = champion(client, settings, uc.name, auc_floor)
    drift_start = day - timedelta(days=drift_days - 1)
    # An evaluation window ending as early as LOOKBACK_DAYS before `day` is read whole.
    first = min(day - timedelta(days=LOOKBACK_DAYS + eval_days - 1), drift_start)
    logged, duplicates = _dedupe(read_predictions(settings, first, day, EVAL_COLUMNS))
    mine = logged[logged["model_version"] == model.version]
    ts = model.manifest.training_set
    out = MonitorResult(
        use_case=uc.name, day=day.isoformat(), model_name=model.name, model_version=model.version,
        run_id=model.run_id, training_set_id=ts.training_set_id, training_set_version=ts.delta_version,
        features=list(model.manifest.training.feature_columns),
        training_roc_auc=model.manifest.metrics.get("roc_auc"), floor=model.floor, floor_source=model.floor_source,
        observed_until=None, bronze_version=None, evaluation="nothing_served", eval_days=eval_days, eval_start=None,
        eval_end=None, evaluated=0, other_versions_excluded=0, pending=0, duplicates_dropped=duplicates, realized={},
        calibration=[], drift_days=drift_days, drift_start=drift_start.isoformat(), drift_end=day.isoformat(),
        drift_rows=0, found_rate=None, psi={}, feature_kinds={}, psi_threshold=psi_threshold,
        min_eval_predictions=MIN_EVAL_PREDICTIONS, breached=False, reasons=[], message="",
    )  # fmt: skip
    if logged.empty:
        out.message = (
            f"{model.name} v{model.version}: nothing was served in {first}..{day} "
            f"({PREDICTIONS_TABLE} has no rows there): no realized metrics or drift to check"
        )
        return publish(settings, client, out)
    until, bronze_version = observed_until(settings)
    out.observed_until, out.bronze_version = until.isoformat(), bronze_version
    complete = min(day, until - timedelta(days=1) - HORIZON)  # the latest date whose predictions all matured
    dates = mine["prediction_date"]
    ready = mine[(dates <= complete) & (dates >= day - timedelta(days=LOOKBACK_DAYS))]
    out.evaluation = "none_matured" if len(mine) else "champion_not_served"
    last = complete
    if not ready.empty:
        end = last = ready["prediction_date"].max()
        start = end - timedelta(days=eval_days - 1)
        window = logged[(logged["prediction_date"] >= start) & (logged["prediction_date"] <= end)]
        chosen = window[window["model_version"] == model.version]
        bought = purchases(settings, start, end + HORIZON + timedelta(days=1), bronze_version)
        scored = outcomes(chosen, bought, until)
        assert bool(scored["matured"].all()), "a fully observed date holds an unmatured prediction"
        y, p = scored["outcome"].astype(int).to_numpy(), scored["score"].astype(float).to_numpy()
        out.realized = metrics.realized_metrics(y, p)
        out.calibration = [asdict(b) for b in metrics.calibration(y, p).bins]
        out.eval_start, out.eval_end, out.evaluated = _iso(start), _iso(end), len(chosen)
        out.other_versions_excluded = len(window) - len(chosen)
        enough = len(chosen) >= MIN_EVAL_PREDICTIONS and out.realized["roc_auc"] is not None
        out.evaluation = "evaluated" if enough else "insufficient"
    out.pending = int((mine["prediction_date"] > last).sum())
    served, _ = _dedupe(read_predictions(settings, drift_start, day))
    served = served[served["model_version"] == model.version]
    out.drift_rows = len(served)
    if len(served):
        out.found_rate = float(served["found"].astype(bool).mean())
        out.psi, out.feature_kinds = _drift(settings, model, served)
    out.reasons, out.message = report.verdict(out.to_dict())
    out.breached = bool(out.reasons)
    return publish(settings, client, out)


def publish(settings: Settings, client: MlflowClient, result: MonitorResult) -> MonitorResult:
    """Write and log the report (:func:`pitlake.monitoring.report.publish`); ``result`` with its paths."""
    html_path, json_path = report.publish(settings, client, result.to_dict())
    result.report_html, result.report_json = str(html_path), str(json_path)
    return result
