"""DAG integrity: every DAG file loads, is wired as documented, and is cheap to parse."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pitlake.core.settings import REPO_ROOT

DAGS = REPO_ROOT / "dags"
HEAVY = ("pyspark", "pandas", "sklearn", "mlflow", "great_expectations", "numpy", "deltalake")
DAG_FILES = sorted(p.name for p in DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    # Note: DagBag(include_examples=...) raises TypeError in 3.3.x; examples are off by config.
    return DagBag(dag_folder=str(DAGS))


DAY_TEMPLATE = "{{ data_interval_start.strftime('%Y-%m-%d') }}"


def test_every_dag_file_loads(dagbag):
    assert dagbag.import_errors == {}
    assert "feature_pipeline" in dagbag.dag_ids


def test_feature_pipeline_covers_whole_days(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["feature_pipeline"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.max_active_runs == 1
    assert dag.doc_md and "data interval" in dag.doc_md
    assert {"pitlake", "features"} <= set(dag.tags)
    views = ("customer_activity", "customer_profile", "product_popularity", "product_catalog",
             "customer_category_affinity", "customer_product_interactions")  # fmt: skip
    assert set(dag.task_ids) == {
        "generate_demo_data",
        "ingest_events",
        "ingest_customers",
        "ingest_products",
        *(f"build_{v}" for v in views),
        *(f"materialize_{v}" for v in views),
    }
    for view in views:
        assert dag.get_task(f"build_{view}").downstream_task_ids == {f"materialize_{view}"}
    assert dag.get_task("ingest_events").downstream_task_ids == {
        "build_customer_activity", "build_product_popularity", "build_customer_category_affinity",
        "build_customer_product_interactions",
    }  # fmt: skip
    assert dag.get_task("ingest_customers").downstream_task_ids == {"build_customer_profile"}
    # The catalog comes from its API, not from the demo's landing files.
    assert dag.get_task("ingest_products").downstream_task_ids == {"build_product_catalog"}
    assert dag.get_task("ingest_products").upstream_task_ids == set()
    assert [a.name for a in dag.get_task("ingest_products").outlets] == ["bronze.products"]
    build = dag.get_task("build_customer_activity")
    assert build.application == str(REPO_ROOT / "jobs" / "build_features.py")
    assert build.application_args == ["--view", "customer_activity:v1", "--date", DAY_TEMPLATE]
    assert [a.name for a in build.outlets] == ["features.customer_activity"]
    assert [a.name for a in dag.get_task("build_customer_profile").outlets] == ["features.customer_profile"]
    assert dag.get_task("generate_demo_data").downstream_task_ids == {"ingest_events", "ingest_customers"}
    for task in dag.tasks:
        assert task.owner == "pitlake"
        assert task.on_failure_callback
        assert task.execution_timeout == timedelta(hours=2)  # a hung try is stopped, then retried
    ingest = dag.get_task("ingest_events")
    assert ingest.retries == 2 and ingest.retry_exponential_backoff
    assert ingest._conn_id == "spark_default"
    assert ingest.application == str(REPO_ROOT / "jobs" / "ingest_events.py")
    assert ingest.application_args == ["--date", DAY_TEMPLATE]
    assert [a.name for a in ingest.outlets] == ["bronze.events"]


@pytest.fixture(scope="module")
def heavy_imports() -> dict[str, list[str]]:
    """Per DAG file, the heavy modules present after parsing it, all parsed in turn in one fresh interpreter.

    One process for all files is as strict as one each: a file that imported a heavy module fails
    its own check, so every later file is checked against an interpreter still free of them.
    """
    code = (
        "import json, runpy, sys\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    runpy.run_path(path)\n"
        f"    out[path] = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY ' + json.dumps(out))\n"
    )
    files = [str(DAGS / f) for f in DAG_FILES]
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("HEAVY ")][-1]
    return {Path(k).name: v for k, v in json.loads(line[len("HEAVY ") :]).items()}


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_no_heavy_import_at_parse_time(dag_file, heavy_imports):
    assert heavy_imports[dag_file] == [], f"{dag_file} imports {heavy_imports[dag_file]}"


# What `--help` must cost: argparse and the job frame, nothing that starts an engine or loads a data stack.
HELP_PROBE = """
import runpy, sys
job, heavy = sys.argv[1], sys.argv[2].split(",")
sys.argv = [job, "--help"]
try:
    runpy.run_path(job, run_name="__main__")
except SystemExit as exit_:
    code = exit_.code
print("EXIT", code, "HEAVY", sorted({m.split(".")[0] for m in sys.modules} & set(heavy)))
"""


@pytest.mark.parametrize("job", sorted(p.name for p in (REPO_ROOT / "jobs").glob("*.py")))
def test_jobs_are_thin_entry_points(job):
    """A job file only parses arguments and calls the library: one ``main``, imports of the standard
    library and pitlake only, and ``--help`` answers without importing Spark, pandas, GX, sklearn or MLflow."""
    import ast

    path = REPO_ROOT / "jobs" / job
    tree = ast.parse(path.read_text())
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert functions == ["main"], f"{job}: define only main() and move the work into the library"
    assert not [n for n in tree.body if isinstance(n, ast.ClassDef)], f"{job}: classes belong in the library"
    top_imports = [
        (n.module if isinstance(n, ast.ImportFrom) else a.name)
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [None])
    ]
    outside = [m for m in top_imports if m and m.split(".")[0] not in {"argparse", "json", "sys", "pitlake"}]
    assert outside == [], f"{job}: top-level imports {outside}"
    probe = [sys.executable, "-c", HELP_PROBE, str(path), ",".join(HEAVY)]
    out = subprocess.run(probe, capture_output=True, text=True, check=False)
    assert out.stdout.strip().splitlines()[-1] == "EXIT 0 HEAVY []", (job, out.stdout[-500:], out.stderr[-500:])
    assert "--result-file" in out.stdout, f"{job}: --help does not show the job frame's flags"


def test_a_bad_date_gets_one_line(tmp_path):
    job = REPO_ROOT / "jobs" / "ingest_events.py"
    out = subprocess.run(
        [sys.executable, str(job), "--date", "2026-02-30"],
        capture_output=True,
        text=True,
        check=False,
        env={"PITLAKE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "pitlake ingest_events: error: --date '2026-02-30' is not a date: use YYYY-MM-DD, e.g. 2026-01-15"
    )
    assert not Path(tmp_path, "runs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--view", "nope", "--date", "2026-01-01"], "unknown feature view 'nope'; known views: customer_activity"),
        (["--view", "customer_activity", "--start", "2026-01-05", "--end", "2026-01-01"], "is before --start"),
        (["--view", "customer_activity"], "give --date D, or --start D1 --end D2"),
    ],
)
def test_build_features_bad_arguments_get_one_line(tmp_path, args, message):
    _one_line_error(tmp_path, "build_features.py", args, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "nope"], "experiment 'nope' not found; known in conf/experiments: baseline, feature_ablation"),
        (["--config", "baseline"], "no training set of purchase_propensity in"),
    ],
)
def test_run_experiment_bad_arguments_get_one_line(tmp_path, args, message):
    _one_line_error(tmp_path, "run_experiment.py", args, message)


def _one_line_error(tmp_path, job: str, args: list[str], message: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PITLAKE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "jobs" / job), *args],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_the_recommender_trains_in_a_dag_of_its_own_on_its_five_feature_tables(dagbag):
    dag = dagbag.dags["train_product_recommendations"]
    assert set(dag.task_ids) == {"build_labels", "build_training_set", "train_and_register"}
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll"

    def names(cond) -> set[str]:
        return set().union(*(names(o) if hasattr(o, "objects") else {o.name} for o in cond.objects))

    assert names(condition) == {
        "features.customer_activity", "features.product_popularity", "features.product_catalog",
        "features.customer_category_affinity", "features.customer_product_interactions",
    }  # fmt: skip
    assert dag.params["use_case"] == "product_recommendations"
    assert dag.params.get_param("experiment").schema["enum"] == [""]
    labels = dag.get_task("build_labels")
    assert labels.application_args[:2] == ["--use-case", "{{ params.use_case }}"]
    assert [a.name for a in labels.outlets] == ["labels.product_recommendations"]
    outlets = [a.name for a in dag.get_task("build_training_set").outlets]
    assert outlets == ["training_sets.product_recommendations"]


def test_train_model_is_scheduled_on_the_feature_assets(dagbag):
    dag = dagbag.dags["train_model"]
    assert dag.doc_md and "lineage" in dag.doc_md
    assert set(dag.task_ids) == {"build_labels", "build_training_set", "train_and_register"}
    assert dag.get_task("build_labels").downstream_task_ids == {"build_training_set"}
    assert dag.get_task("build_training_set").downstream_task_ids == {"train_and_register"}
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll"  # both views must have been updated
    assets = {a.name for a in condition.objects}
    assert assets == {"features.customer_activity", "features.customer_profile"}
    assert dag.max_active_runs == 1 and dag.params["history_days"] == 90
    experiment = dag.params.get_param("experiment")
    assert experiment.value == "" and experiment.schema["enum"] == [
        "", "baseline", "feature_ablation", "hgb_search", "random_forest", "rf_reference"
    ]  # fmt: skip


def test_promote_model_is_manual_with_params_and_maintenance_is_weekly(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    promote = dagbag.dags["promote_model"]
    assert promote.schedule is None
    assert promote.doc_md and "rollback" in promote.doc_md.lower() and "previous" in promote.doc_md
    params = promote.params
    assert params["model_name"] == "purchase_propensity"
    assert params.get_param("version").schema["type"] == "integer"
    assert params.get_param("alias").schema["enum"] == ["champion", "challenger", "previous"]
    assert params["force"] is False and params.get_param("force").schema["type"] == "boolean"
    assert params.get_param("reason").schema["type"] == "string"
    assert params.get_param("reason").schema["minLength"] == 1
    assert promote.task_ids == ["promote"]
    for task in promote.tasks:
        assert task.owner == "pitlake" and task.on_failure_callback

    maintenance = dagbag.dags["maintenance"]
    assert isinstance(maintenance.timetable, CronDataIntervalTimetable)
    assert maintenance.max_active_runs == 1 and not maintenance.catchup
    assert maintenance.task_ids == ["optimize_and_vacuum"]
    vacuum = maintenance.get_task("optimize_and_vacuum")
    assert vacuum.application.endswith("jobs/maintenance.py")
    assert vacuum._conn_id == "spark_default" and vacuum.owner == "pitlake" and vacuum.on_failure_callback


def test_monitor_model_is_daily_and_retrains_before_failing_on_a_breach(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["monitor_model"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.max_active_runs == 1 and not dag.catchup
    assert dag.doc_md and "matured" in dag.doc_md
    assert {"pitlake", "monitoring"} <= set(dag.tags)
    assert set(dag.task_ids) == {"evaluate_model", "breached", "trigger_train_model", "fail_on_breach"}
    assert dag.get_task("evaluate_model").downstream_task_ids == {"breached"}
    assert dag.get_task("breached").downstream_task_ids == {"trigger_train_model"}
    assert dag.get_task("trigger_train_model").downstream_task_ids == {"fail_on_breach"}
    trigger = dag.get_task("trigger_train_model")
    assert type(trigger).__name__ == "TriggerDagRunOperator"
    assert trigger.trigger_dag_id == "train_model" and trigger.wait_for_completion is False
    assert "reason" in trigger.conf
    assert dag.get_task("fail_on_breach").retries == 0
    assert dag.params.get_param("use_case").schema["enum"] == ["purchase_propensity"]
    assert dag.params["eval_days"] == 7 and dag.params["psi_threshold"] == 0.2
    for task in dag.tasks:
        assert task.owner == "pitlake" and task.on_failure_callback
