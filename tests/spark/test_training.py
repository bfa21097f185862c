"""Training, lineage and registry: time split, MLflow logging, the promotion gate, leakage, pins, reproduce.

Everything but the last test runs without Spark: the training set is a Delta table written with
``deltalake`` plus a manifest written here, with labels drawn from a known signal and ground truth.
Synthetic design (seeded): customer latents z1, z2 ~ N(0, 1); P(label) = sigmoid(-0.3 + 1.6 z1 + 0.5 z2);
``count_page_views_7d`` = z1, ``count_purchases_28d`` = z2, ``segment`` and ``tenure_days`` are noise.
So all features ≈ the ceiling, z1 alone a little below it (above the 90% floor), noise alone ≈ 0.5.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pitlake.training_set.manifest import TrainingSetManifest, manifest_dir, write_manifest

from tests.builders import PROFILE_DDL, labelled_history, write_table

TS_TABLE = "training_sets.purchase_propensity"
FEATURES = ["count_page_views_7d", "count_purchases_28d", "segment", "tenure_days"]
START = date(2026, 1, 1)
DAYS = 40  # label dates 01-01 .. 02-09: the newest 8 (02-02 .. 02-09) evaluate
EVAL_START = datetime(2026, 2, 2)
INPUT_VERSIONS = {"labels.purchase_propensity": 4, "features.customer_activity": 6, "features.customer_profile": 2}


@pytest.fixture()
def home(mlflow_home):
    return mlflow_home


def synthetic(seed: int = 11, customers: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    z1, z2 = rng.normal(size=customers), rng.normal(size=customers)
    p = 1 / (1 + np.exp(-(-0.3 + 1.6 * z1 + 0.5 * z2)))
    rows = []
    for d in range(DAYS):
        day = START + timedelta(days=d)
        for c in np.flatnonzero(rng.random(customers) < 0.3):
            label_time = datetime.combine(day, datetime.min.time()) + timedelta(seconds=int(rng.integers(6, 20) * 3600))
            segment = ["a", "b", "c"][c % 3] if c % 10 else None
            tenure = float(rng.integers(0, 1000)) if rng.random() > 0.1 else None
            rows.append((f"c{c:04d}", label_time, day, int(rng.random() < p[c]), z1[c], z2[c], segment, tenure))
    frame = pd.DataFrame(rows, columns=["customer_id", "label_time", "label_date", "label", *FEATURES])
    truth = pd.DataFrame({"customer_id": [f"c{c:04d}" for c in range(customers)], "propensity": p})
    return frame, truth


def write_training_set(settings, frame: pd.DataFrame, training_set_id: str, features=FEATURES, truth=None) -> int:
    """Append ``frame`` as one training set (like Spark: UTC timestamps, int label) and write its manifest."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    path = settings.table_path(TS_TABLE)
    data = frame.assign(training_set_id=training_set_id)
    data["label_time"] = pd.to_datetime(data["label_time"]).dt.tz_localize("UTC")
    types = {"customer_id": pa.string(), "label_time": pa.timestamp("us", tz="UTC"), "label_date": pa.date32(),
             "label": pa.int32(), "segment": pa.string(), "training_set_id": pa.string()}  # fmt: skip
    schema = pa.schema([(c, types.get(c, pa.float64())) for c in data.columns])  # typed even when empty
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    write_deltalake(path, table, partition_by=["training_set_id"], mode="append")
    version = DeltaTable(path).version()
    if truth is not None:
        for day in sorted(frame["label_date"].unique()):
            folder = settings.landing / "ground_truth" / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            lines = [
                json.dumps({"customer_id": c, "date": str(day), "propensity": p, "expected_purchases": 0.8 * p})
                for c, p in zip(truth["customer_id"], truth["propensity"], strict=True)
            ]
            (folder / "part-0000.jsonl").write_text("\n".join(lines) + "\n")
    manifest = TrainingSetManifest(
        training_set_id=training_set_id,
        use_case="purchase_propensity",
        table=TS_TABLE,
        label_start=str(frame["label_date"].min()) if len(frame) else "2026-01-01",
        label_end=str(frame["label_date"].max()) if len(frame) else "2026-01-01",
        as_of_write=False,
        inputs={t: {"path": settings.table_path(t), "version": v} for t, v in INPUT_VERSIONS.items()},
        row_count=len(frame),
        positives=int(frame["label"].sum()),
        content_hash=f"hash-of-{training_set_id}",
        feature_columns=tuple(features),
        label_column="label",
        delta_version=version,
        manifest_path=str(manifest_dir(settings, "purchase_propensity") / f"{training_set_id}.json"),
        built_at="2026-03-01T00:00:00",
    )
    write_manifest(manifest)
    return version


def client_for(settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def aliases(settings) -> dict[str, int]:
    model = client_for(settings).get_registered_model("purchase_propensity")
    return {a: int(v) for a, v in model.aliases.items()}


def version_tags(settings, version: int) -> dict[str, str]:
    return client_for(settings).get_model_version("purchase_propensity", str(version)).tags


# --------------------------------------------------------------------------- pure parts


def test_time_split_holds_out_the_newest_dates_and_purges_the_label_horizon():
    from pitlake.training.dataset import time_split

    t = datetime.fromisoformat
    rows = [(f"2026-01-{d:02d} 10:00:00", f"2026-01-{d:02d}") for d in range(1, 11)]
    rows += [("2026-01-06 00:00:00", "2026-01-06"), ("2026-01-06 00:00:01", "2026-01-06")]
    frame = pd.DataFrame(
        {"label_time": [t(a) for a, _ in rows], "label_date": [date.fromisoformat(b) for _, b in rows]}
    )
    split = time_split(frame, eval_fraction=0.2, purge=timedelta(days=3))
    # 10 dates → the newest ceil(0.2 * 10) = 2 evaluate; training rows end their 3-day horizon by 01-09 00:00.
    assert split.eval_dates == (date(2026, 1, 9), date(2026, 1, 10))
    assert split.eval_start == t("2026-01-09 00:00:00")
    assert sorted(split.eval_index.tolist()) == [8, 9]
    assert sorted(split.train_index.tolist()) == [0, 1, 2, 3, 4, 10]  # 01-06 00:00:00 is exactly on the bound
    assert split.purged_dates == (date(2026, 1, 7), date(2026, 1, 8))
    assert frame["label_time"][split.train_index].max() < frame["label_time"][split.eval_index].min()


def test_tracking_uri_defaults_to_sqlite_under_home_and_an_unreachable_server_is_one_line(lake):
    from pitlake.core.errors import ConfigError
    from pitlake.core.tracking import connect, tracking_uri

    local = dataclasses.replace(lake, mlflow_tracking_uri=None)  # as when MLFLOW_TRACKING_URI is unset
    assert tracking_uri(local) == f"sqlite:///{lake.home}/mlflow/mlflow.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    down = dataclasses.replace(lake, mlflow_tracking_uri=f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError) as err:
        connect(down)
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in str(err.value)
    assert "\n" not in str(err.value)


def test_bronze_versions_are_derived_from_the_job_records_of_live_partitions(lake):
    from deltalake import write_deltalake
    from pitlake.lineage.manifest import UpstreamSource, upstream_from_job_records

    path = lake.table_path("features.customer_activity")

    def part(days):
        return pd.DataFrame({"customer_id": ["A"] * len(days), "feature_date": days, "x": [1.0] * len(days)})

    write_deltalake(path, part(["2026-01-01", "2026-01-02"]), partition_by=["feature_date"])  # v0
    write_deltalake(path, part(["2026-01-02"]), partition_by=["feature_date"], mode="overwrite",
                    predicate="feature_date = '2026-01-02'")  # v1  # fmt: skip
    # A manual job writes runs/<stage>/<key>.json; an Airflow task runs/airflow/<dag>/<run>/<task>.<try>.json.
    manual = lake.runs_dir / "build_features"
    task = lake.runs_dir / "airflow" / "feature_pipeline" / "scheduled__2026-01-02T00_00_00_00_00"
    for key, dates, version, source in (("a", ["2026-01-01", "2026-01-02"], 0, 5), ("b", ["2026-01-02"], 1, 7),
                                        ("c", ["2026-01-03"], 2, 9)):  # fmt: skip
        record = {"table": "features.customer_activity", "dates_built": dates, "delta_version": version,
                  "source_table": "bronze.events", "source_version": source}  # fmt: skip
        path = task / "build_customer_activity.1.json" if key == "b" else manual / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    at_v0 = upstream_from_job_records(lake, "features.customer_activity", 0)
    at_v1 = upstream_from_job_records(lake, "features.customer_activity", 1)
    assert (at_v0.table, at_v0.versions, at_v0.derived_from) == ("bronze.events", (5,), UpstreamSource.JOB_RECORDS)
    assert at_v1.versions == (5, 7)  # 01-01 still from bronze v5, 01-02 rebuilt from v7; v2's record is later
    assert at_v1.path == lake.table_path("bronze.events") and at_v1.unresolved_partitions == 0
    assert upstream_from_job_records(lake, "features.customer_profile", 3) is None


# --------------------------------------------------------------------------- training runs


def test_first_model_logs_everything_pins_its_data_and_becomes_champion(home):
    import mlflow
    from pitlake.lineage.manifest import read_manifest
    from pitlake.registry.promote import pinned_versions
    from pitlake.training.train import train

    frame, truth = synthetic()
    write_training_set(home, frame.head(300), "older")  # version 0: another training set
    version = write_training_set(home, frame, "ts-one", truth=truth)
    assert version == 1
    airflow = {"dag_id": "train_model", "run_id": "manual__2026-03-01", "data_interval_end": "2026-03-01T00:00:00"}
    validations = [{"result_id": "gx-17", "suite": "training_sets", "table": TS_TABLE, "delta_version": 1,
                    "success": True}]  # fmt: skip
    result = train(home, training_set_id="ts-one", airflow=airflow, validation_results=validations,
                   upstream_versions={"bronze.events": 12})  # fmt: skip

    # Time split: 8 evaluation dates (02-02..02-09); training rows end their 7-day horizon by 02-02 00:00.
    times = pd.to_datetime(frame["label_time"])
    assert result.metrics["eval_rows"] == (times >= EVAL_START).sum()
    assert result.metrics["train_rows"] == (times + timedelta(days=7) <= EVAL_START).sum()
    run = client_for(home).get_run(result.run_id)
    assert run.data.params["eval_start"] == "2026-02-02T00:00:00"
    assert run.data.params["training_set_version"] == "1"
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "threshold", "ceiling_auc",
                 "quality_floor"):  # fmt: skip
        assert name in run.data.metrics, name
    assert 0.75 < run.data.metrics["roc_auc"] <= 1.0  # a clear signal, far above 0.5
    ceiling = run.data.metrics["ceiling_auc"]
    assert run.data.metrics["quality_floor"] == pytest.approx(0.5 + 0.9 * (ceiling - 0.5))
    assert run.data.tags["airflow.dag_id"] == "train_model" and run.data.tags["pitlake.training_set_id"] == "ts-one"
    assert run.data.tags["suspected_leakage"] == "false"
    children = mlflow.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(children["tags.mlflow.runName"]) == ["logistic_regression", "random_forest"]

    # Dataset input: the training set at its Delta version.
    source = json.loads(run.inputs.dataset_inputs[0].dataset.source)
    assert run.inputs.dataset_inputs[0].dataset.source_type == "delta_table"
    assert source == {"path": home.table_path(TS_TABLE), "delta_table_version": 1}

    client = client_for(home)
    names = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    for png in ("roc", "precision_recall", "calibration", "feature_importance", "eda_feature_distributions",
                "eda_correlation"):  # fmt: skip
        assert f"plots/{png}.png" in names
    manifest = read_manifest(mlflow.artifacts.load_text(f"runs:/{result.run_id}/lineage/manifest.json"))
    assert manifest.schema_version == "1"
    assert (manifest.model.name, manifest.model.version, manifest.model.run_id) == ("purchase_propensity", 1,
                                                                                   result.run_id)  # fmt: skip
    ts = manifest.training_set
    assert (ts.training_set_id, ts.delta_version, ts.content_hash, ts.row_count) == ("ts-one", 1, "hash-of-ts-one",
                                                                                     len(frame))  # fmt: skip
    assert {(i.table, i.delta_version) for i in manifest.inputs} == set(INPUT_VERSIONS.items())
    assert {(v.name, v.delta_version, v.ttl_seconds) for v in manifest.feature_views} == {
        ("customer_activity", 6, 86400),
        ("customer_profile", 2, 86400),
    }
    assert [(u.table, u.versions) for u in manifest.upstream] == [("bronze.events", (12,))]
    assert [(v.result_id, v.success) for v in manifest.validations] == [("gx-17", True)]
    assert manifest.airflow is not None and manifest.airflow.run_id == "manual__2026-03-01"
    assert manifest.packages["scikit-learn"] and manifest.packages["mlflow"]
    assert manifest.metrics["roc_auc"] == run.data.metrics["roc_auc"]

    # Registry: the first model passes the floor and becomes champion.
    assert aliases(home) == {"champion": 1}
    assert version_tags(home, 1)["gate.outcome"] == "passed"
    model = mlflow.pyfunc.load_model("models:/purchase_propensity@champion")
    assert model.predict(frame[FEATURES].head(3)).shape == (3, 2)  # probabilities of both classes

    pins = pinned_versions(home)
    assert pins[home.table_path(TS_TABLE)] == {1}
    assert pins[home.table_path("features.customer_activity")] == {6}
    assert pins[home.table_path("bronze.events")] == {12}


def test_gate_keeps_a_worse_challenger_promotes_a_better_one_and_rollback_records_who_and_why(home):
    from pitlake.core.errors import ConfigError
    from pitlake.registry.promote import promote
    from pitlake.training.train import train

    frame, truth = synthetic()
    write_training_set(home, frame, "ts", truth=truth)
    first = train(home, training_set_id="ts", feature_columns=["count_page_views_7d", "segment", "tenure_days"])
    assert first.gate_passed and aliases(home) == {"champion": 1}

    worse = train(home, training_set_id="ts", feature_columns=["tenure_days"])  # noise only
    assert not worse.gate_passed
    assert aliases(home) == {"champion": 1, "challenger": 2}
    tags = version_tags(home, 2)
    assert tags["gate.outcome"] == "failed" and tags["gate.champion_version"] == "1"
    # The champion was re-scored on the challenger's evaluation rows: the same rows it was evaluated on.
    assert float(tags["gate.champion_roc_auc"]) == pytest.approx(first.metrics["roc_auc"], abs=1e-6)

    better = train(home, training_set_id="ts")  # z1 and z2
    assert better.metrics["roc_auc"] > first.metrics["roc_auc"] + 0.002
    assert better.gate_passed
    assert aliases(home) == {"champion": 3, "previous": 1}

    with pytest.raises(ConfigError, match="needs an actor and a reason"):
        promote(home, "purchase_propensity", 1, "champion")
    with pytest.raises(ConfigError, match="did not pass the quality floor"):
        promote(home, "purchase_propensity", 2, "champion", reason="try", actor="bob")
    rollback = promote(home, "purchase_propensity", 1, "champion", reason="v3 regressed in the shop", actor="alice")
    assert rollback["replaced_version"] == 3
    assert aliases(home) == {"champion": 1, "previous": 3}
    tags = version_tags(home, 1)
    assert (tags["promotion.actor"], tags["promotion.reason"], tags["promotion.forced"]) == (
        "alice",
        "v3 regressed in the shop",
        "false",
    )
    history = json.loads(tags["promotion.history"])
    assert [(h["actor"], h["alias"]) for h in history] == [("gate", "champion"), ("alice", "champion")]
    assert "alice" in version_tags(home, 3)["demoted"]


def test_empty_or_single_class_training_sets_are_one_line_input_errors_and_register_nothing(home):
    from pitlake.core.errors import InputError
    from pitlake.training.train import train

    frame, _ = synthetic(customers=40)
    write_training_set(home, frame.iloc[0:0], "empty")
    write_training_set(home, frame.assign(label=0), "all-negative")
    with pytest.raises(InputError) as empty:
        train(home, training_set_id="empty")
    with pytest.raises(InputError) as single:
        train(home, training_set_id="all-negative")
    assert "training set empty has no rows" in str(empty.value)
    assert f"training set all-negative has only label=0 ({len(frame)} rows)" in str(single.value)
    assert "\n" not in str(empty.value) + str(single.value)
    client = client_for(home)
    assert client.search_registered_models() == []
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_a_training_part_without_feature_values_is_refused_before_anything_is_logged(home):
    """Labels that start before the feature history: every training row has null features, which
    would train a constant model (ROC AUC 0.5); the demo once did exactly that."""
    from pitlake.core.errors import InputError
    from pitlake.training.train import train

    frame, _ = synthetic(customers=60)
    # Label dates 01-01 .. 02-09: 02-02 .. 02-09 evaluate, 01-01 .. 01-25 train (their 7-day horizon
    # ends before 02-02); only the evaluation dates keep their feature values.
    frame.loc[frame["label_date"] < EVAL_START.date(), FEATURES] = None
    write_training_set(home, frame, "no-history")
    with pytest.raises(InputError) as err:
        train(home, training_set_id="no-history")
    assert str(err.value).startswith("training set no-history: no feature has a value in the training part (")
    assert "label dates 2026-01-01..2026-01-25): the label range starts before the feature history" in str(err.value)
    assert client_for(home).search_registered_models() == []


def test_a_feature_equal_to_the_label_is_suspected_leakage_and_never_promoted(home):
    from pitlake.core.errors import ConfigError
    from pitlake.registry.promote import promote
    from pitlake.training.train import train

    frame, truth = synthetic()
    leaky = frame.assign(count_add_to_carts_1d=frame["label"].astype(float))
    write_training_set(home, leaky, "leaky", features=[*FEATURES, "count_add_to_carts_1d"], truth=truth)
    result = train(home, training_set_id="leaky")
    assert result.suspected_leakage
    assert result.metrics["roc_auc"] > result.ceiling_auc + 0.05
    assert not result.gate_passed
    assert aliases(home) == {"challenger": 1}  # not even the first model becomes champion
    tags = version_tags(home, 1)
    assert tags["gate.suspected_leakage"] == "true" and "count_add_to_carts_1d" in tags["gate.reasons"]
    assert client_for(home).get_run(result.run_id).data.tags["suspected_leakage"] == "true"
    with pytest.raises(ConfigError, match="flagged suspected_leakage"):
        promote(home, "purchase_propensity", 1, "champion", reason="looks great", actor="carol")
    forced = promote(home, "purchase_propensity", 1, "champion", force=True, reason="demo only", actor="carol")
    assert forced["forced"] and version_tags(home, 1)["promotion.forced"] == "true"


def test_without_ground_truth_the_ceiling_is_skipped_with_a_tag(home):
    from pitlake.training.train import train

    frame, _ = synthetic(customers=200)
    write_training_set(home, frame, "real")  # no ground_truth folder, as with real data
    result = train(home, training_set_id="real")
    run = client_for(home).get_run(result.run_id)
    assert run.data.tags["ceiling"].startswith("skipped: no ground truth")
    assert "ceiling_auc" not in run.data.metrics
    assert result.quality_floor == 0.55 and result.gate_passed


# --------------------------------------------------------------------------- reproduce (Spark)


def test_reproduce_rebuilds_the_same_rows_and_metrics_and_refuses_a_vacuumed_pin(spark, home):
    from deltalake import DeltaTable
    from pitlake.core.errors import InputError
    from pitlake.training.reproduce import reproduce
    from pitlake.training.train import train
    from pitlake.training_set.build import build, get_use_case

    profile = labelled_history(spark, home)
    use_case = get_use_case("purchase_propensity")
    built = build(spark, home, use_case, date(2026, 1, 1), date(2026, 1, 20))
    trained = train(home, training_set_id=built.training_set_id)

    result = reproduce(spark, home, "purchase_propensity", trained.model_version)
    assert result["hash_matches"] and result["content_hash"] == built.content_hash
    assert result["max_abs_difference"] <= 1e-9
    assert result["metrics_reproduced"]["roc_auc"] == trained.metrics["roc_auc"]

    # The profile table moves on and its old files are vacuumed: the pinned version 0 is gone.
    path = home.table_path("features.customer_profile")
    write_table(spark, home, "features.customer_profile", profile[:5], PROFILE_DDL, mode="overwrite",
                partition_by="feature_date")  # fmt: skip
    DeltaTable(path).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(InputError, match=r"features.customer_profile version 0 pinned by purchase_propensity v1 "):
        reproduce(spark, home, "purchase_propensity", trained.model_version)
