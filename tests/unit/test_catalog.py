"""The pitlake pages (pitlake.catalog) on a tiny lake: feature tables written with delta-rs, validation runs
appended to ops.validation_results as the gate writes them, Airflow task records and an MLflow registry with
three versions and their lineage manifests. No JVM, no Airflow: the app's guards let everything through here
(tests/unit/test_pitlake_ui.py checks the plugin's real Airflow guards)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pitlake.catalog import lake as catalog_lake
from pitlake.catalog import validations as catalog_validations
from pitlake.catalog.app import create_app
from pitlake.catalog.features import catalog, describe
from pitlake.catalog.runs import commits_of, run_key
from pitlake.catalog.validations import latest_by_suite
from pitlake.features import get_view
from pitlake.lineage import manifest as lineage

from tests.builders import write_feature_day

ACTIVITY = get_view("customer_activity")
PROFILE = get_view("customer_profile")
FEATURE_RUN = "scheduled__2026-01-03T00:00:00+00:00"
TRAIN_RUN = "manual__2026-01-21T00:00:00+00:00"
MODEL = "purchase_propensity"


# --------------------------------------------------------------------------- builders


def results_schema():
    import pyarrow as pa

    return pa.schema([
        ("result_id", pa.string()), ("suite", pa.string()), ("table_name", pa.string()),
        ("delta_version", pa.int64()), ("interval_start", pa.date32()), ("interval_end", pa.date32()),
        ("training_set_id", pa.string()), ("run_id", pa.string()), ("validated_at", pa.timestamp("us", tz="UTC")),
        ("success", pa.bool_()), ("expectation", pa.string()), ("column", pa.string()), ("severity", pa.string()),
        ("expectation_success", pa.bool_()), ("unexpected_count", pa.int64()), ("element_count", pa.int64()),
        ("check", pa.string()), ("observed_value", pa.string()), ("report_path", pa.string()),
    ])  # fmt: skip


def validation_rows(result_id, suite, table, version, run_id, at, checks, day="2026-01-02", report=None):
    """One run's rows as the gate appends them: one per check ``(expectation, column, severity, ok, unexpected,
    elements, check, observed)``; the run fails when a critical check does."""
    success = all(ok or severity != "critical" for _, _, severity, ok, *_ in checks)
    return [
        {"result_id": result_id, "suite": suite, "table_name": table, "delta_version": version,
         "interval_start": date.fromisoformat(day), "interval_end": date.fromisoformat(day), "training_set_id": None,
         "run_id": run_id, "validated_at": datetime.fromisoformat(at).replace(tzinfo=UTC), "success": success,
         "expectation": exp, "column": col, "severity": severity, "expectation_success": ok,
         "unexpected_count": unexpected, "element_count": elements, "check": check,
         "observed_value": json.dumps(observed), "report_path": report}
        for exp, col, severity, ok, unexpected, elements, check, observed in checks
    ]  # fmt: skip


def append_results(settings, rows, *, files: int = 1):
    """One commit to ops.validation_results, like the gate's append: one data file, or (``files`` > 1) the rows
    split over several, as a Spark session with several partitions writes them."""
    import pyarrow as pa
    from deltalake import write_deltalake

    table = pa.Table.from_pylist(rows, results_schema())
    batches = table.to_batches(max_chunksize=-(-len(rows) // files))
    write_deltalake(settings.table_path("ops.validation_results"), batches if files > 1 else table, mode="append",
                    target_file_size=1 if files > 1 else None)  # fmt: skip


ROW_COUNT = ("expect_table_row_count_to_be_between", None, "critical", True, None, None, "row count in band", 3)
KEYS = ("expect_column_values_to_not_be_null", "customer_id", "critical", True, 0, 3, "keys are never null", None)
DRIFT = ("expect_column_mean_to_be_between", "count_purchases_7d", "warning", False, None, None,
         "mean within the reference band", 4.25)  # fmt: skip
NEGATIVE = ("expect_column_values_to_be_between", "count_purchases_7d", "critical", False, 2, 5, "never negative",
            None)  # fmt: skip


def write_validations(settings, report: Path) -> None:
    # An older, failed run of the activity suite, compacted into one file with a profile run (as OPTIMIZE leaves them).
    append_results(settings,
        validation_rows("r-old", "features_customer_activity", "features.customer_activity", 1, "manual",
                        "2026-01-02T01:00:00", [ROW_COUNT, NEGATIVE], day="2026-01-01")
        + validation_rows("r-profile", "features_customer_profile", "features.customer_profile", 0, "manual",
                          "2026-01-02T01:05:00", [ROW_COUNT, KEYS], day="2026-01-01"))  # fmt: skip
    append_results(settings, validation_rows("r-new", "features_customer_activity", "features.customer_activity", 2,
                                             FEATURE_RUN, "2026-01-03T01:00:00.250731", [ROW_COUNT, KEYS, DRIFT],
                                             report=str(report)), files=2)  # fmt: skip
    # The newest commit is another suite's: the activity suite's latest run must still be r-new.
    append_results(settings, validation_rows("r-bronze", "bronze_events", "bronze.events", 3, FEATURE_RUN,
                                             "2026-01-03T02:00:00", [ROW_COUNT]))  # fmt: skip


def write_task_records(settings) -> None:
    folder = settings.runs_dir / "airflow" / "feature_pipeline" / run_key(FEATURE_RUN)
    folder.mkdir(parents=True)
    records = {
        "ingest_events.1.json": {"stage": "ingest_events", "error": "the Spark engine went away", "retryable": True},
        "ingest_events.2.json": {
            "stage": "ingest_events", "table": "bronze.events", "ingest_date": "2026-01-02", "rows_read": 10,
            "accepted": 8, "quarantined": 1, "duplicates_dropped": 1, "delta_version": 3, "quarantine_version": 1,
            "validation": [{"result_id": "r-bronze", "suite": "bronze_events", "table": "bronze.events",
                            "delta_version": 3, "success": True}],
        },
        "build_customer_activity.1.json": {
            "stage": "build_features", "view": "customer_activity", "table": "features.customer_activity",
            "delta_version": 2, "rollup_version": 5, "rows_by_date": {"2026-01-02": 3}, "source_table": "bronze.events",
            "source_version": 3, "timing": {"body_s": 4.25},
            "validation": [{"result_id": "r-new", "suite": "features_customer_activity",
                            "table": "features.customer_activity", "delta_version": 2, "success": True}],
        },
        "build_customer_profile.1.json": {"stage": "build_features",
                                          "error": "validation gate failed: suite features_customer_profile"},
    }  # fmt: skip
    for name, record in records.items():
        (folder / name).write_text(json.dumps(record))


def manifest(run_id: str, version: int, ts_version: int, activity_version: int, airflow_run: str | None):
    ts = lineage.TrainingSetRecord(
        training_set_id=f"ts-{ts_version}", use_case=MODEL, table="training_sets.purchase_propensity",
        path="/lake/training_sets/purchase_propensity", delta_version=ts_version, content_hash="c0ffee",
        row_count=1200, positives=300, label_start="2026-01-01", label_end="2026-01-20", as_of_write=False,
        feature_columns=("count_purchases_7d", "segment"), manifest_path=None,
    )  # fmt: skip
    inputs = (
        lineage.InputRecord(lineage.InputRole.LABELS, "labels.purchase_propensity", "/l", 3, "2026-01-21T00:10:00"),
        lineage.InputRecord(lineage.InputRole.FEATURES, "features.customer_activity", "/a", activity_version, None),
        lineage.InputRecord(lineage.InputRole.FEATURES, "features.customer_profile", "/p", 0, None),
    )
    return lineage.LineageManifest(
        schema_version=lineage.SCHEMA_VERSION, created_at="2026-01-21T00:20:00",
        model=lineage.ModelRecord(MODEL, version, run_id, f"runs:/{run_id}/model", "hist_gradient_boosting"),
        training_set=ts, inputs=inputs,
        feature_views=(lineage.FeatureViewRecord("customer_activity", 1, "features.customer_activity", "/a",
                                                 activity_version, 86400, "bronze.events", ("count_purchases_7d",)),),
        upstream=(lineage.UpstreamRecord("bronze.events", "/b", (3,), "labels.purchase_propensity",
                                         lineage.UpstreamSource.JOB_RECORDS),),
        validations=(lineage.ValidationRecord("r-new", "features_customer_activity", "features.customer_activity",
                                              activity_version, True, None),),
        code=lineage.CodeRecord("abc123", False), packages={"mlflow": "3"},
        airflow=lineage.AirflowRecord("train_model", airflow_run, "train_and_register", 1, None, None, None)
        if airflow_run else None,
        training=lineage.TrainingRecord(7, ("logistic_regression", "hist_gradient_boosting"), "hist_gradient_boosting",
                                        ("count_purchases_7d", "segment"), 0.25, 7, "2026-01-15", 900, 300, 0.4, "f1"),
        quality=lineage.QualityRecord(0.8, 0.79, None, 0.77, "ground_truth", 0.02, False, ()),
        metrics={"roc_auc": 0.78, "pr_auc": 0.5},
    )  # fmt: skip


def register_versions(settings) -> dict[int, str]:
    """v1 previous, v2 champion (trained by train_model's run), v3 challenger whose gate failed; returns run ids."""
    from mlflow import MlflowClient
    from pitlake.core import tracking

    uri = tracking.tracking_uri(settings)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = tracking.ensure_experiment(client, settings, MODEL)
    client.create_registered_model(MODEL)
    runs = {}
    specs = {1: (0.75, 2, 1, None), 2: (0.78, 4, 2, TRAIN_RUN), 3: (0.70, 5, 2, None)}
    for version, (roc, ts_version, activity_version, airflow_run) in specs.items():
        tags = {"airflow.dag_id": "train_model", "airflow.run_id": airflow_run} if airflow_run else {}
        run = client.create_run(experiment, tags=tags)
        run_id = run.info.run_id
        for key, value in {"roc_auc": roc, "pr_auc": 0.5, "ceiling_auc": 0.8, "quality_floor": 0.77}.items():
            client.log_metric(run_id, key, value)
        client.log_text(run_id, manifest(run_id, version, ts_version, activity_version, airflow_run).to_json(),
                        lineage.MANIFEST_ARTIFACT)  # fmt: skip
        client.set_terminated(run_id)
        mv = client.create_model_version(MODEL, source=f"{run.info.artifact_uri}/model", run_id=run_id)
        assert int(mv.version) == version
        passed = version != 3
        client.set_model_version_tag(MODEL, str(version), "gate.outcome", "passed" if passed else "failed")
        client.set_model_version_tag(MODEL, str(version), "gate.reasons", "all checks passed" if passed else
                                     "Metric roc_auc value threshold check failed: 0.70 < 0.77")  # fmt: skip
        runs[version] = run_id
    for alias, version in (("previous", 1), ("champion", 2), ("challenger", 3)):
        client.set_registered_model_alias(MODEL, alias, str(version))
    return runs


@pytest.fixture(scope="module")
def home(tmp_path_factory, repo_settings, mlflow_template):
    import pyarrow as pa
    from deltalake import write_deltalake

    root = tmp_path_factory.mktemp("catalog") / "home"
    settings = dataclasses.replace(
        repo_settings, home=root, mlflow_tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    )
    (root / "mlflow").mkdir(parents=True)
    shutil.copy(mlflow_template, root / "mlflow" / "mlflow.db")
    write_feature_day(settings, ACTIVITY, "2026-01-01", [{"customer_id": "c1"}, {"customer_id": "c2"}],
                      "2026-01-02T01:00:00")  # v0  # fmt: skip
    write_feature_day(settings, ACTIVITY, "2026-01-02", [{"customer_id": f"c{i}"} for i in range(4)],
                      "2026-01-03T01:00:00")  # v1  # fmt: skip
    write_feature_day(settings, ACTIVITY, "2026-01-02", [{"customer_id": f"c{i}"} for i in range(3)],
                      "2026-01-03T02:00:00")  # v2 replaces the day: 2 + 3 rows  # fmt: skip
    write_feature_day(settings, PROFILE, "2026-01-01", [{"customer_id": "c1", "segment": "vip"}], "2026-01-02T01:00:00")
    write_deltalake(settings.table_path("bronze.events"), pa.table({"event_id": ["e1"]}))  # its suite is listed
    docs = settings.gx_dir / "data_docs" / "local_site" / "validations" / "features_customer_activity" / "r-new.html"
    docs.parent.mkdir(parents=True)
    docs.write_text("<html><body>Data Docs of r-new</body></html>")
    report = settings.gx_dir / "results" / "features_customer_activity" / "r-new.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"result_id": "r-new", "docs_path": str(docs), "gx_result": {}}))
    write_validations(settings, report)
    write_task_records(settings)
    runs = register_versions(settings)
    return settings, runs


@pytest.fixture(scope="module")
def client(home):
    app = create_app(home[0], guard=lambda: None, run_guard=lambda: None, airflow_base="/af")
    with TestClient(app) as c:
        yield c


def get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text[-600:]
    return response.text


# --------------------------------------------------------------------------- the data behind the pages


def test_a_feature_is_described_from_its_definition():
    features = {f.name: f for f in describe(ACTIVITY)}
    assert features["count_purchases_7d"].type == "bigint"
    assert features["count_purchases_7d"].description == (
        "Number of bronze.events rows with event_type = purchase in the 7 days before feature_time."
    )
    assert features["sum_purchase_amount_28d"].description == (
        "Sum of amount over the bronze.events rows with event_type = purchase in the 28 days before feature_time "
        "(0 if none)."
    )
    assert features["count_page_views_1d"].description.endswith("in the day before feature_time.")
    assert features["cart_to_purchase_ratio_28d"].description == (
        "count_purchases_28d / count_add_to_carts_28d (null when the denominator is 0)."
    )
    assert features["days_since_last_purchase"].type == "int"
    profile = {f.name: f for f in describe(PROFILE)}
    assert profile["segment"].type == "string" and profile["tenure_days"].type == "int"
    assert list(features) == ACTIVITY.feature_names()


def test_table_state_comes_from_the_delta_log(home):
    entries = {e.view.name: e for e in catalog(home[0])}
    activity = entries["customer_activity"].stats
    assert (activity.version, activity.rows, activity.files) == (2, 5, 2)
    assert activity.latest == datetime(2026, 1, 3, tzinfo=UTC)
    profile = entries["customer_profile"].stats
    assert (profile.version, profile.rows, profile.latest) == (0, 1, datetime(2026, 1, 2, tzinfo=UTC))
    assert entries["customer_activity"].validation is not None
    assert entries["customer_activity"].validation.result_id == "r-new"


def test_the_latest_run_of_a_suite_reads_only_the_files_that_may_hold_it(home, monkeypatch):
    read: list[str] = []
    real = catalog_lake.read_files
    monkeypatch.setattr(catalog_validations, "read_files", lambda paths: read.extend(paths) or real(paths))
    latest = latest_by_suite(home[0], ["features_customer_activity", "features_customer_profile", "labels_x"])
    assert {s: r.result_id for s, r in latest.items()} == {
        "features_customer_activity": "r-new",
        "features_customer_profile": "r-profile",
    }
    run = latest["features_customer_activity"]
    assert (run.success, len(run.checks), len(run.warnings), run.slice) == (True, 3, 1, "2026-01-02")
    # Three of the table's four files, once each: the two of the activity suite's newest commit (the older, compacted
    # file is not opened: its newest run is older than r-new), and the compacted file for the profile suite.
    assert len(read) == len(set(read)) == 3
    assert len(catalog_validations.file_stats(home[0].table_path("ops.validation_results"), ("suite",)) or []) == 4


def test_a_range_ingest_result_lists_every_day_committed_once():
    result = {"table": "bronze.events", "delta_version": 5, "days": [
        {"table": "bronze.events", "delta_version": 4, "quarantine_version": 2},
        {"table": "bronze.events", "delta_version": 5, "quarantine_version": 3}]}  # fmt: skip
    assert [(c.table, c.version) for c in commits_of(result)] == [
        ("bronze.events", 5), ("bronze.events", 4), ("quarantine.events", 2), ("quarantine.events", 3)
    ]  # fmt: skip


# --------------------------------------------------------------------------- the pages


def test_the_catalog_page(client):
    page = get(client, "/catalog")
    assert "customer_activity" in page and "customer_profile" in page
    assert "<code>count_purchases_7d</code>" in page and "<code>bigint</code>" in page
    assert "Number of bronze.events rows with event_type = purchase in the 7 days before feature_time." in page
    # Summary row of customer_activity: 14 features, table v2, 5 rows, fresh up to Jan 3 00:00, validated (warning).
    assert '<td class="num">14</td><td class="num">v2</td><td class="num">5</td>' in page
    assert '<td class="nowrap">2026-01-03 00:00 UTC</td>' in page
    assert "passed, 1 warning" in page and 'href="/validations/r-new"' in page
    assert "growth-data" in page and "1 day" in page and "<code>bronze.customers</code>" in page


def test_the_validation_pages(client):
    page = get(client, "/validations")
    assert page.index('id="bronze_events"') < page.index('id="features_customer_activity"')
    assert "mean within the reference band" in page and ">4.25<" in page and "r-old" not in page
    # The Airflow run that validated it links to the run's page (its tasks left records).
    assert 'href="/runs/feature_pipeline/scheduled__2026-01-03T00%3A00%3A00%2B00%3A00"' in page
    run = get(client, "/validations/r-new")
    assert "Validation run of features_customer_activity" in run and "1 / 0" not in run and "0 / 1" in run
    assert 'href="/data-docs/local_site/validations/features_customer_activity/r-new.html"' in run
    assert "Data Docs of r-new" in get(
        client, "/data-docs/local_site/validations/features_customer_activity/r-new.html"
    )
    old = get(client, "/validations/r-old")
    assert '<tr class="fail">' in old and "2 of 5" in old and "never negative" in old
    history = get(client, "/validations/suites/features_customer_activity")
    assert history.index("/validations/r-new") < history.index("/validations/r-old")
    assert client.get("/validations/nope").status_code == 404
    assert client.get("/data-docs/../../mlflow/mlflow.db").status_code == 404


def test_the_models_page(client, home):
    page = get(client, "/models")
    runs = home[1]
    rows = {v: page[page.index(f'/versions/{v}/lineage">v{v}</a>') :] for v in (1, 2, 3)}
    assert rows[2].startswith(
        f'/versions/2/lineage">v2</a><br><a href="http://127.0.0.1:5000/#/experiments/1/runs/{runs[2]}"'
    )
    assert '</td><td class="nowrap"><span class="badge brand">champion' in rows[2][:600]
    assert '<span class="badge neutral">previous' in rows[1][:600]
    assert '<span class="badge warning">challenger' in rows[3][:600]
    # v2: 93% of the ceiling's lift ((0.78 - 0.5) / (0.8 - 0.5)), trained on the training set v4 and activity v2.
    assert '<td class="num">0.7800</td><td class="num">0.8000</td><td class="num">93%</td>' \
           '<td class="num">0.7700</td><td class="num">0.5000</td>' in rows[2]  # fmt: skip
    assert "<code>training_sets.purchase_propensity</code> v4<br><code>labels.purchase_propensity</code> v3<br>" \
           "<code>features.customer_activity</code> v2" in rows[2]  # fmt: skip
    assert "0.70 &lt; 0.77" in rows[3]


def test_the_champions_lineage_page(client, home):
    page = get(client, "/models/purchase_propensity/lineage")
    assert "Lineage of purchase_propensity v2" in page
    assert "<code>ts-4</code>" in page and "2026-01-01 .. 2026-01-20" in page
    assert '<code>features.customer_activity</code></td><td class="num">v2</td>' in page
    assert "<code>bronze.events</code></td><td>v3</td>" in page  # upstream
    assert 'href="/runs/train_model/manual__2026-01-21T00%3A00%3A00%2B00%3A00"' in page
    assert 'href="/af/dags/train_model/runs/manual__2026-01-21T00%3A00%3A00%2B00%3A00" target="_top"' in page
    # Inside the Airflow UI's frame (sandboxed: no top navigation, no new window) no link tries to leave it.
    framed = client.get("/models/purchase_propensity/lineage", headers={"Sec-Fetch-Dest": "iframe"}).text
    assert 'target="_top"' not in framed and 'href="/runs/train_model/' in framed
    assert get(client, "/models/purchase_propensity/versions/1/lineage").count('badge neutral">previous') == 1
    assert client.get("/models/purchase_propensity/versions/9/lineage").status_code == 404


def test_the_run_page_shows_what_the_run_committed(client):
    page = get(client, f"/runs/feature_pipeline/{FEATURE_RUN}")
    assert "<code>features.customer_activity</code> v2" in page
    assert '<code>features.customer_activity_daily</code> v5<span class="muted"> (rollups)' in page
    assert "<code>bronze.events</code> v3" in page and "<code>quarantine.events</code> v1" in page
    assert "2 (2 records)" in page and "the Spark engine went away" not in page  # the retry's record wins
    assert "validation gate failed: suite features_customer_profile" in page
    assert "8 accepted, 1 quarantined" in page and "4.2 s" in page
    assert page.count('href="/validations/r-new"') >= 2 and "r-profile" not in page  # a manual run is not this run's
    assert "Failed checks of features_customer_activity" in page  # the warning, spelled out
    trained = get(client, f"/runs/train_model/{TRAIN_RUN}")
    assert "Models registered by this run" in trained and "purchase_propensity v2</a>" in trained
    assert "no task of this run left a result record" in get(client, "/runs/feature_pipeline/manual__nothing")


def test_every_page_renders_within_a_second(client):
    paths = ["/catalog", "/validations", "/validations/r-new", "/validations/suites/features_customer_activity",
             "/models", "/models/purchase_propensity/lineage", f"/runs/feature_pipeline/{FEATURE_RUN}",
             f"/runs/train_model/{TRAIN_RUN}"]  # fmt: skip
    timings = {}
    for path in paths:
        client.get(path)  # warm: imports and the manifests' cache
        started = time.perf_counter()
        assert client.get(path).status_code == 200
        timings[path] = time.perf_counter() - started
    print("render times (s):", {p: round(t, 3) for p, t in timings.items()})
    assert max(timings.values()) < 1.0, timings


def test_an_empty_home_renders_every_page(lake):
    with TestClient(create_app(lake, guard=lambda: None, run_guard=lambda: None)) as c:
        assert "not built yet" in get(c, "/catalog")
        assert "no validation results yet" in get(c, "/validations")
        assert "no model is registered yet" in get(c, "/models")
        assert "no validation result carries this run id" in get(c, "/runs/feature_pipeline/x")
        assert c.get("/models/purchase_propensity/lineage").status_code == 404
    assert not (lake.mlflow_dir / "mlflow.db").exists()  # reading never creates a registry


def test_a_run_reads_what_its_jobs_lineage_says_landing_folders_included():
    from pitlake.catalog.runs import Read, reads_of

    result = {
        "source_table": "bronze.events",  # an older record's field: the lineage wins when present
        "source_version": 1,
        "lineage": {
            "inputs": [
                {"namespace": "file", "name": "/h/landing/events/date=2026-01-05", "facets": {}},
                {"table": "bronze.customers", "version": 7},
            ],
            "outputs": [{"table": "bronze.events", "version": 8}],
        },
    }
    assert reads_of(result, "/h") == [Read("landing/events/date=2026-01-05", None), Read("bronze.customers", 7)]
    assert reads_of({"source_table": "bronze.events", "source_version": 1}) == [Read("bronze.events", 1)]
