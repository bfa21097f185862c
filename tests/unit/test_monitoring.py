"""The monitoring loop without a JVM: the prediction log, label maturity, realized ROC AUC, drift, the report.

A scratch home holds a tiny ``bronze.events`` and training set written with ``deltalake``, predictions
written with ``write_predictions``, and a champion registered in a SQLite MLflow store whose run carries a
lineage manifest built by the project's own writer (no model is logged: monitoring never loads it).

The day monitored is 2026-02-03. ``bronze.events`` was last ingested on 02-11, so with 3 days of lateness
``observed_until`` = 02-11 + 1 - 3 = 02-09: a prediction at ``t`` matured when ``t + 7 d <= 02-09 00:00``,
and the latest fully matured date is 02-09 - 1 - 7 = 02-01 (the evaluation window 01-26..02-01). Drift is
checked on what was served on 02-03.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pitlake.core.errors import ConfigError, InputError
from pitlake.core.settings import REPO_ROOT

from tests.builders import EVENTS_DDL, event

USE_CASE = "purchase_propensity"
DAY = date(2026, 2, 3)
EVAL_T = datetime(2026, 2, 1, 10, tzinfo=UTC)  # when the 50 evaluated predictions were served
SERVED_T = datetime(2026, 2, 3, 9, tzinfo=UTC)  # the drift day's predictions
FEATURES = ["count_purchases_7d", "segment"]
# The training set: counts 0,0,1,1,...,4,4 (five bins of 0.2 at the reference quantiles), segments 5 a, 5 b.
TRAIN_COUNTS = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
TRAIN_SEGMENTS = ["a", "b"] * 5
RETRAIN = "train_model is triggered to train a challenger on fresh data"


@pytest.fixture()
def home(mlflow_home):
    return dataclasses.replace(mlflow_home, max_event_lateness_days=3)


# --------------------------------------------------------------------------- builders


def write_events(settings, rows) -> None:
    """``bronze.events`` rows (``tests.builders.event`` tuples, naive UTC) as the Spark job lays them out."""
    import pyarrow as pa
    from deltalake import write_deltalake

    kinds = {"timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(), "double": pa.float64(),
             "bigint": pa.int64(), "string": pa.string()}  # fmt: skip
    columns = [c.split(" ") for c in EVENTS_DDL.split(", ")]
    schema = pa.schema([(name, kinds[kind]) for name, kind in columns])
    table = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)
    write_deltalake(settings.table_path("bronze.events"), table, partition_by=["event_date"], mode="append")


def purchase(cust: str, at: datetime, ingest: str | None = None):
    return event(f"p-{cust}-{at:%m%d%H%M%S}", "purchase", cust, at.strftime("%Y-%m-%d %H:%M:%S"), 10.0, ingest=ingest)


def last_ingest(settings) -> None:
    """One page view ingested on 02-11: observed_until = 02-09."""
    write_events(settings, [event("e-last", "page_view", "zz", "2026-02-11 08:00:00")])


def register_champion(settings, floor: float = 0.7, eval_start: str = "2026-01-01T00:00:00") -> str:
    """Training set ``ts-mon`` (deltalake + its manifest) and version 1 of the model at alias champion, whose run
    logs the lineage manifest (its evaluation window from ``eval_start``: by default every training row); the
    floor as the gate's tag. Returns the run id."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake
    from pitlake.core import tracking
    from pitlake.lineage import manifest as lineage
    from pitlake.registry import promote as registry
    from pitlake.training.provenance import Provenance, Snapshot, build_manifest
    from pitlake.training_set.build import get_use_case
    from pitlake.training_set.manifest import TrainingSetManifest, manifest_dir, write_manifest

    uc = get_use_case(USE_CASE)
    path = settings.table_path(uc.table)
    n = len(TRAIN_COUNTS)
    rows = pa.table(
        {
            "customer_id": [f"t{i}" for i in range(n)],
            "label_time": pa.array([datetime(2026, 1, 1 + i, 9) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "label_date": pa.array([date(2026, 1, 1 + i) for i in range(n)], pa.date32()),
            "label": pa.array([i % 2 for i in range(n)], pa.int32()),
            "count_purchases_7d": pa.array(TRAIN_COUNTS, pa.float64()),
            "segment": TRAIN_SEGMENTS,
            "training_set_id": ["ts-mon"] * n,
        }
    )
    write_deltalake(path, rows, partition_by=["training_set_id"], mode="append")
    build = TrainingSetManifest(
        training_set_id="ts-mon", use_case=USE_CASE, table=uc.table, label_start="2026-01-01",
        label_end="2026-01-10", as_of_write=False, inputs={}, row_count=n, positives=n // 2,
        content_hash="hash-ts-mon", feature_columns=tuple(FEATURES), label_column="label",
        delta_version=DeltaTable(path).version(),
        manifest_path=str(manifest_dir(settings, USE_CASE) / "ts-mon.json"), built_at="2026-01-20T00:00:00",
    )  # fmt: skip
    write_manifest(build)

    client = tracking.connect(settings)
    experiment = tracking.ensure_experiment(client, settings, USE_CASE)
    run_id = client.create_run(experiment).info.run_id
    source = settings.home / "model"
    source.mkdir(exist_ok=True)
    client.create_registered_model(USE_CASE)
    mv = client.create_model_version(USE_CASE, source=str(source), run_id=run_id)
    snapshot = Snapshot(use_case=uc, training_set_id="ts-mon", build=build, path=path)
    quality = lineage.QualityRecord(None, None, "no ground truth", floor, "fallback", None, False, ())
    training = lineage.TrainingRecord(7, ("logistic_regression",), "logistic_regression", tuple(FEATURES), 0.2, 7,
                                      eval_start, 8, 2, 0.5, "best_f1")  # fmt: skip
    model = lineage.ModelRecord(USE_CASE, int(mv.version), run_id, f"models:/{USE_CASE}/1", "logistic_regression")
    provenance = Provenance(lineage.git_state(), None, (), None)
    metrics = {"roc_auc": 0.83, "quality_floor": floor}
    record = build_manifest(settings, snapshot, provenance, model=model, training=training, quality=quality,
                            metrics=metrics)  # fmt: skip
    client.log_dict(run_id, record.to_dict(), lineage.MANIFEST_ARTIFACT)
    client.log_metric(run_id, "quality_floor", floor)
    client.set_terminated(run_id)
    client.set_model_version_tag(USE_CASE, mv.version, "gate.quality_floor", f"{floor:.6f}")
    client.set_registered_model_alias(USE_CASE, registry.CHAMPION, mv.version)
    return run_id


def prediction(rid: str, cust: str, at: datetime, score: float, version: int = 1, features=None) -> dict:
    return {
        "request_id": rid, "predicted_at": at, "prediction_date": at.date(), "use_case": USE_CASE,
        "model_name": USE_CASE, "model_version": version, "customer_id": cust, "found": True,
        "features": json.dumps(features if features is not None else {"count_purchases_7d": 1.0, "segment": "a"}),
        "feature_as_of": at.replace(hour=0), "score": score,
    }  # fmt: skip


def evaluated_day(settings, positive_scores: list[float]) -> None:
    """50 predictions at 02-01 10:00: c00..c24 buy within the horizon (c00 exactly at t + 7 d), c25..c49 do not
    (c25 buys exactly at t, c26 one second after t + 7 d); ``positive_scores`` score the 25 buyers in order,
    every non-buyer scores 0.4. Three predictions of another version and one resent request come with them."""
    from pitlake.monitoring.predictions import write_predictions

    buyers = [purchase("c00", EVAL_T + timedelta(days=7))]
    buyers += [purchase(f"c{i:02d}", datetime(2026, 2, 3, 12, tzinfo=UTC)) for i in range(1, 25)]
    others = [purchase("c25", EVAL_T), purchase("c26", EVAL_T + timedelta(days=7, seconds=1))]
    write_events(settings, buyers + others)
    scores = [*positive_scores, *[0.4] * 25]
    records = [prediction(f"r{i:02d}", f"c{i:02d}", EVAL_T, s) for i, s in enumerate(scores)]
    records += [prediction(f"v2-{i}", f"c{i:02d}", EVAL_T, 0.99, version=2) for i in range(3)]
    write_predictions(settings, records)
    write_predictions(settings, [prediction("r00", "c00", EVAL_T, positive_scores[0])])  # a retried batch


def drift_day(settings, segments: list[str]) -> None:
    """Ten vectors served on 02-03 with the training set's counts and these segments."""
    vectors = [{"count_purchases_7d": c, "segment": s} for c, s in zip(TRAIN_COUNTS, segments, strict=True)]
    write_predictions_served(settings, vectors)


def run_tags(settings, run_id: str) -> dict[str, str]:
    from pitlake.core import tracking

    return tracking.connect(settings).get_run(run_id).data.tags


# --------------------------------------------------------------------------- the prediction log


def test_write_predictions_appends_one_commit_per_batch_with_the_exact_schema(lake):
    from deltalake import DeltaTable
    from pitlake.monitoring.predictions import FIELDS, SCHEMA, read_predictions, write_predictions

    assert list(read_predictions(lake, DAY, DAY).columns) == list(FIELDS)  # no table yet: empty, typed
    assert write_predictions(lake, []) is None
    first = [prediction("a", "c1", SERVED_T, 0.25), prediction("b", "c2", EVAL_T, 0.75)]
    assert write_predictions(lake, first) == 0
    assert write_predictions(lake, [prediction("c", "c3", SERVED_T + timedelta(hours=1), 0.5)]) == 1
    delta = DeltaTable(lake.table_path("monitoring.predictions"))
    assert delta.metadata().partition_columns == ["prediction_date"]
    assert delta.to_pyarrow_dataset().schema.remove_metadata().equals(SCHEMA, check_metadata=False)
    frame = read_predictions(lake, date(2026, 2, 3), date(2026, 2, 3))
    assert frame["request_id"].tolist() == ["a", "c"]  # 02-01's row is outside the partitions read
    assert frame["predicted_at"].tolist() == [pd.Timestamp("2026-02-03 09:00", tz="UTC"),
                                              pd.Timestamp("2026-02-03 10:00", tz="UTC")]  # fmt: skip
    assert frame["prediction_date"].tolist() == [DAY, DAY]
    assert json.loads(frame["features"][0]) == {"count_purchases_7d": 1.0, "segment": "a"}


@pytest.mark.parametrize(
    ("drop", "change", "message"),
    [
        ("score", {"extra": 1}, "missing field(s) ['score'], unexpected field(s) ['extra']"),
        (None, {"predicted_at": datetime(2026, 2, 3, 9)}, "predicted_at must be a timezone-aware datetime"),
        (
            None,
            {"prediction_date": date(2026, 2, 2)},
            "prediction_date must be the UTC date of predicted_at (2026-02-03)",
        ),
        (None, {"features": "[1, 2]"}, "features must be a JSON object as a string"),
    ],
)
def test_a_bad_prediction_record_is_one_line_and_writes_nothing(lake, drop, change, message):
    from pitlake.monitoring.predictions import write_predictions

    bad = {k: v for k, v in prediction("x", "c1", SERVED_T, 0.5).items() if k != drop} | change
    with pytest.raises(InputError) as err:
        write_predictions(lake, [prediction("ok", "c2", SERVED_T, 0.5), bad])
    assert str(err.value).startswith("prediction record 1 (request_id 'x') for monitoring.predictions: ")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not Path(lake.table_path("monitoring.predictions")).exists()


# --------------------------------------------------------------------------- label maturity and outcomes


def test_outcomes_follow_the_label_horizon_and_mature_with_observed_until(lake):
    from pitlake.monitoring.monitor import observed_until, outcomes, purchases

    t = datetime(2026, 2, 1, 10, tzinfo=UTC)
    write_events(lake, [
        purchase("in", t + timedelta(hours=1)),
        purchase("at_t", t),  # the present, not the future: not counted
        purchase("edge", t + timedelta(days=7)),  # the horizon's closed end: counted
        purchase("late", t + timedelta(days=7, seconds=1)),
        purchase("before", t - timedelta(hours=1)),
        event("v1", "page_view", "view", "2026-02-02 10:00:00"),  # not a purchase
        event("e-last", "page_view", "zz", "2026-02-05 08:00:00", ingest=date(2026, 2, 11)),
    ])  # fmt: skip
    until, version = observed_until(lake)
    assert (until, version) == (date(2026, 2, 9), 0)  # 02-11 + 1 day - 3 days of lateness
    frame = pd.DataFrame({
        "customer_id": ["in", "at_t", "edge", "late", "before", "view", "edge", "edge", "in"],
        "predicted_at": [t] * 6 + [datetime(2026, 2, 2, tzinfo=UTC), datetime(2026, 2, 2, 0, 0, 1, tzinfo=UTC),
                                   datetime(2026, 2, 5, 10, tzinfo=UTC)],
    })  # fmt: skip
    scored = outcomes(frame, purchases(lake, date(2026, 2, 1), date(2026, 2, 13), version), until)
    # 02-02 00:00 + 7 d = 02-09 00:00 = observed_until: matured (edge's purchase at 02-08 10:00 is in its
    # horizon); one second later, or 02-05, not yet: no outcome, whatever bronze holds so far.
    assert scored["matured"].tolist() == [True] * 7 + [False, False]
    assert scored["outcome"].tolist() == [1, 0, 1, 0, 0, 0, 1, pd.NA, pd.NA]


# --------------------------------------------------------------------------- monitor


def test_a_low_realized_auc_breaches_with_one_line_and_the_report_is_logged(home):
    from pitlake.monitoring.monitor import MonitoringBreach, monitor, raise_on_breach

    run_id = register_champion(home)
    last_ingest(home)
    # Buyers: 10 score 0.6, 15 score 0.2; non-buyers 0.4: 10 * 25 of 625 pairs ordered right → AUC 0.4.
    evaluated_day(home, [0.6] * 10 + [0.2] * 15)
    drift_day(home, TRAIN_SEGMENTS)
    result = monitor(home, USE_CASE, DAY)

    assert result.breached and result.evaluation == "evaluated"
    assert result.message == (
        "purchase_propensity v1: realized ROC AUC 0.400 < floor 0.700 over 50 matured predictions of "
        f"2026-01-26..2026-02-01 — {RETRAIN}"
    )
    assert (result.observed_until, result.eval_start, result.eval_end) == ("2026-02-09", "2026-01-26", "2026-02-01")
    assert (result.evaluated, result.other_versions_excluded, result.duplicates_dropped) == (50, 3, 1)
    assert result.pending == 10  # the drift day's predictions: their horizon is not observed yet
    assert result.realized["roc_auc"] == pytest.approx(0.4)
    assert (result.realized["n"], result.realized["positives"]) == (50, 25)
    # Brier = (10 * 0.4² + 15 * 0.8² + 25 * 0.4²) / 50 = (1.6 + 9.6 + 4.0) / 50
    assert result.realized["brier"] == pytest.approx(0.304)
    assert (result.floor, result.floor_source) == (0.7, "gate.quality_floor tag of v1")
    assert result.training_roc_auc == 0.83 and result.run_id == run_id
    assert result.psi == {"count_purchases_7d": 0.0, "segment": 0.0}
    assert result.feature_kinds == {"count_purchases_7d": "numeric", "segment": "categorical"}
    with pytest.raises(MonitoringBreach) as err:
        raise_on_breach(result)
    assert str(err.value) == result.message and "\n" not in str(err.value)

    html = Path(home.home / "monitoring" / "reports" / USE_CASE / "2026-02-03.html")
    saved = json.loads(html.with_suffix(".json").read_text())
    assert result.report_html == str(html) and saved["message"] == result.message and saved["breached"] is True
    page = html.read_text()
    assert "<svg" in page and "realized ROC AUC 0.400 &lt; floor 0.700" in page and "ts-mon" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    tags = run_tags(home, run_id)
    assert tags["monitoring.last_report"] == str(html) and tags["monitoring.last_day"] == "2026-02-03"
    assert (tags["monitoring.realized_roc_auc"], tags["monitoring.breached"]) == ("0.400000", "true")
    from pitlake.core import tracking

    logged = {a.path for a in tracking.connect(home).list_artifacts(run_id, "monitoring")}
    assert logged == {"monitoring/2026-02-03.html", "monitoring/2026-02-03.json"}


def test_drift_of_a_served_feature_breaches(home):
    from pitlake.monitoring.monitor import monitor

    register_champion(home)
    last_ingest(home)
    evaluated_day(home, [0.6] * 20 + [0.2] * 5)  # AUC 20 * 25 / 625 = 0.8
    # segment served 8 a, 2 b against 5 a, 5 b: 0.3 ln(0.8 / 0.5) + 0.3 ln(0.5 / 0.2) = 0.3 ln 4 = 0.416
    drift_day(home, ["a"] * 8 + ["b"] * 2)
    result = monitor(home, USE_CASE, DAY)
    assert result.breached and result.psi["count_purchases_7d"] == 0.0
    assert result.psi["segment"] == pytest.approx(0.3 * math.log(4))
    assert result.reasons == ["PSI segment 0.42 > 0.20"]
    assert result.message == f"purchase_propensity v1: PSI segment 0.42 > 0.20 — {RETRAIN}"
    assert run_tags(home, result.run_id)["monitoring.breached"] == "true"


def test_drift_is_measured_against_the_evaluation_window_of_the_training_set(home):
    """The rows from eval_start (01-06 .. 01-10: counts 2,3,3,4,4, segments b,a,b,a,b) are the reference, not the
    older warm-up rows: vectors served in exactly those proportions drift by 0 (against all ten rows, the
    segments' 4 a / 6 b would give 0.1 ln(0.6/0.5) + 0.1 ln(0.5/0.4) = 0.04)."""
    from pitlake.monitoring.monitor import monitor

    register_champion(home, eval_start="2026-01-06T00:00:00")
    last_ingest(home)
    evaluated_day(home, [0.6] * 20 + [0.2] * 5)
    counts, segments = [2, 3, 3, 4, 4] * 2, ["b", "a", "b", "a", "b"] * 2
    write_predictions_served(
        home, [{"count_purchases_7d": c, "segment": s} for c, s in zip(counts, segments, strict=True)]
    )
    result = monitor(home, USE_CASE, DAY)
    assert result.psi == {"count_purchases_7d": 0.0, "segment": 0.0}
    assert not result.breached


def write_predictions_served(settings, vectors: list[dict]) -> None:
    from pitlake.monitoring.predictions import write_predictions

    write_predictions(settings, [prediction(f"d{i}", f"c{i:02d}", SERVED_T, 0.5, features=v)
                                 for i, v in enumerate(vectors)])  # fmt: skip


def test_a_healthy_model_says_so_in_one_line(home):
    from pitlake.monitoring.monitor import monitor, raise_on_breach

    register_champion(home)
    last_ingest(home)
    evaluated_day(home, [0.6] * 20 + [0.2] * 5)
    drift_day(home, TRAIN_SEGMENTS)
    result = monitor(home, USE_CASE, DAY)
    assert not result.breached and result.reasons == []
    assert result.message == (
        "purchase_propensity v1: healthy: realized ROC AUC 0.800 >= floor 0.700 over 50 matured predictions of "
        "2026-01-26..2026-02-01; max PSI count_purchases_7d 0.00 <= 0.20 over 10 served vectors of "
        "2026-02-03..2026-02-03"
    )
    # Brier = (20 * 0.4² + 5 * 0.8² + 25 * 0.4²) / 50 = (3.2 + 3.2 + 4.0) / 50
    assert result.realized["brier"] == pytest.approx(0.208)
    raise_on_breach(result)  # nothing raised
    assert run_tags(home, result.run_id)["monitoring.breached"] == "false"
    # A given floor replaces the gate's: 0.8 < 0.85 breaches.
    stricter = monitor(home, USE_CASE, DAY, auc_floor=0.85)
    assert stricter.breached and stricter.floor_source == "given"
    assert stricter.reasons == ["realized ROC AUC 0.800 < floor 0.850 over 50 matured predictions of "
                                "2026-01-26..2026-02-01"]  # fmt: skip


def test_too_few_matured_predictions_are_insufficient_not_a_breach(home):
    from pitlake.monitoring.monitor import monitor
    from pitlake.monitoring.predictions import write_predictions

    register_champion(home)
    last_ingest(home)
    write_events(home, [purchase("c1", EVAL_T + timedelta(days=1))])
    write_predictions(home, [prediction("r1", "c1", EVAL_T, 0.1), prediction("r2", "c2", EVAL_T, 0.9)])
    result = monitor(home, USE_CASE, DAY)
    assert not result.breached and result.evaluation == "insufficient"
    assert result.realized["roc_auc"] == 0.0  # computed and shown, but 2 < 50 predictions
    assert result.message == (
        "purchase_propensity v1: healthy: realized ROC AUC not evaluated: 2 matured predictions of "
        "2026-01-26..2026-02-01 with 1 positives (needs 50 and both classes); nothing served by v1 on "
        "2026-02-03..2026-02-03 to check drift"
    )


def test_nothing_served_is_a_result_and_no_champion_is_one_line(home):
    from pitlake.monitoring.monitor import monitor

    with pytest.raises(ConfigError) as err:
        monitor(home, USE_CASE, DAY)
    assert str(err.value).startswith("purchase_propensity has no champion in the model registry at sqlite:///")
    assert "run train_model first" in str(err.value) and "\n" not in str(err.value)

    register_champion(home)
    result = monitor(home, USE_CASE, DAY)  # no prediction table, no bronze.events either
    assert not result.breached and result.evaluation == "nothing_served"
    assert result.message == (
        "purchase_propensity v1: nothing was served in 2025-11-29..2026-02-03 (monitoring.predictions has no rows "
        "there): no realized metrics or drift to check"
    )
    assert Path(result.report_html).exists() and run_tags(home, result.run_id)["monitoring.realized_roc_auc"] == "none"


def test_the_job_prints_the_result_and_exits_1_with_one_line_on_a_breach(home):
    register_champion(home)
    last_ingest(home)
    evaluated_day(home, [0.6] * 10 + [0.2] * 15)
    drift_day(home, TRAIN_SEGMENTS)
    env = {"PATH": "/usr/bin:/bin", "PITLAKE_HOME": str(home.home), "MLFLOW_TRACKING_URI": home.mlflow_tracking_uri,
           "PITLAKE_MAX_EVENT_LATENESS_DAYS": "3", "MLFLOW_DISABLE_TELEMETRY": "true"}  # fmt: skip
    job = REPO_ROOT / "jobs" / "monitor_model.py"
    proc = subprocess.run([sys.executable, str(job), "--date", "2026-02-03"], capture_output=True, text=True,
                          env=env, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "pitlake monitor_model: breach: purchase_propensity v1: realized ROC AUC 0.400 < floor 0.700 over 50 "
        f"matured predictions of 2026-01-26..2026-02-01 — {RETRAIN}"
    )
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("PITLAKE_RESULT ")]
    result = json.loads(line.removeprefix("PITLAKE_RESULT "))
    assert (result["stage"], result["breached"], result["evaluated"]) == ("monitor_model", True, 50)
    assert (home.runs_dir / "monitor_model" / "purchase_propensity-2026-02-03.json").exists()
