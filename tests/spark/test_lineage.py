"""OpenLineage events of a one-day run, read back from the file transport: the graph landing ->
bronze -> features -> training set -> model, every edge with the Delta version the writer committed
and the reader read, each job's run a child of the Airflow task run it was given, and the lineage
manifest joining the graph to MLflow (run ids, ``model_id``).

The history the training needs (20 label days and their feature rows) is written by hand; the day
2026-01-22 goes through the jobs (``jobs/<stage>.py`` ``main()``, in this process, on the session's
engine, as the Airflow operator runs them): the events' ingestion, the activity view, the training set
over the labelled days (the profile view as written by hand), then training and registration.
"""

from __future__ import annotations

import json
import runpy
import uuid
from typing import Any

import pytest
from pitlake.core.settings import REPO_ROOT

from tests.builders import labelled_history, write_landing

DAY = "2026-01-22"
CUSTOMERS = [f"k{i:02d}" for i in range(30)]
TASK_RUN = {stage: str(uuid.UUID(int=i + 1, version=4)) for i, stage in enumerate(
    ["ingest_events", "build_customer_activity", "build_training_set", "train_and_register"])}  # fmt: skip
DAG_RUN = str(uuid.UUID(int=99, version=4))


def landing(home) -> None:
    """The day's events: a page view, a cart and a purchase of every customer."""
    events, n = [], 0
    for i, cust in enumerate(CUSTOMERS):
        for kind, amount in (("page_view", None), ("add_to_cart", None), ("purchase", 10.0 + i)):
            n += 1
            record = {"event_id": f"e{n}", "event_type": kind, "customer_id": cust, "category": "books",
                      "event_time": f"{DAY}T{8 + i % 12:02d}:{n % 60:02d}:00Z", "session_id": f"s{i}"}  # fmt: skip
            events.append(json.dumps(record | ({"amount": amount} if amount else {})))
    write_landing(home, "events", DAY, events)


def run_job(stage: str, task: str, *args: str) -> dict[str, Any]:
    """``jobs/<stage>.py`` in this process, as the child of Airflow task run ``TASK_RUN[task]``; its result."""
    main = runpy.run_path(str(REPO_ROOT / "jobs" / f"{stage}.py"), run_name=f"pitlake_job_{stage}")["main"]
    parent = f"pitlake/dag.{task}/{TASK_RUN[task]}"
    result_file = f"{run_job.home}/runs/test/{task}.json"  # type: ignore[attr-defined]
    code = main([*args, "--result-file", result_file, "--lineage-parent", parent,
                 "--lineage-root", f"pitlake/dag/{DAG_RUN}"])  # fmt: skip
    assert code == 0, f"{stage} exited {code}"
    with open(result_file) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def one_day(spark, repo_settings, engine_url, mlflow_template, tmp_path_factory):
    import dataclasses
    import shutil

    from pitlake.core import spark as spark_mod

    home = dataclasses.replace(repo_settings, home=tmp_path_factory.mktemp("lineage") / "home")
    (home.mlflow_dir).mkdir(parents=True)
    shutil.copy(mlflow_template, home.mlflow_dir / "mlflow.db")
    uri = f"sqlite:///{home.mlflow_dir / 'mlflow.db'}"
    home = dataclasses.replace(home, mlflow_tracking_uri=uri)
    labelled_history(spark, home)  # 20 label days and the feature rows they join to, written by hand (v0)
    landing(home)
    run_job.home = home.home  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"PITLAKE_HOME": str(home.home), "PITLAKE_SPARK_REMOTE": engine_url,
                           "MLFLOW_TRACKING_URI": uri, "PITLAKE_DEMO": "0"}.items():  # fmt: skip
            mp.setenv(key, value)
        mp.delenv("OPENLINEAGE_URL", raising=False)
        mp.delenv("OPENLINEAGE_DISABLED", raising=False)
        mp.setattr(spark_mod, "release", lambda: None)  # the jobs share the session's Connect session
        results = {
            "ingest_events": run_job("ingest_events", "ingest_events", "--date", DAY),
            "activity": run_job("build_features", "build_customer_activity", "--view", "customer_activity",
                                "--date", DAY),
        }  # fmt: skip
        results["training_set"] = run_job(
            "build_training_set", "build_training_set", "--use-case", "purchase_propensity",
            "--start", "2026-01-01", "--end", "2026-01-20",
        )  # fmt: skip
        results["train"] = run_job(
            "train_model", "train_and_register", "--training-set-id", results["training_set"]["training_set_id"],
            "--training-set-run-id", results["training_set"]["openlineage"]["run_id"],
        )  # fmt: skip
    return home, results


def test_the_graph_of_a_one_day_run_carries_every_delta_version(one_day):
    from pitlake.core.openlineage import completed_runs, read_events

    home, results = one_day
    runs = {r["job"]: r for r in completed_runs(read_events(home.lineage_dir))}
    assert sorted(runs) == [
        "build_features.customer_activity", "build_training_set.purchase_propensity", "ingest_events",
        "train_model.purchase_propensity",
    ]  # fmt: skip
    landing_events = str(home.landing / "events" / f"date={DAY}")
    # Versions: history tables were written once (v0); the jobs' first commits are v0 for new
    # tables (bronze, quarantine, rollups, training set) and v1 for the hand-written feature tables.
    assert runs["ingest_events"]["inputs"] == [(landing_events, None)]
    assert runs["ingest_events"]["outputs"] == [("bronze.events", "0"), ("quarantine.events", "0")]
    assert runs["build_features.customer_activity"]["inputs"] == [("bronze.events", "0")]
    assert runs["build_features.customer_activity"]["outputs"] == [
        ("features.customer_activity_daily", "0"), ("features.customer_activity", "1")]  # fmt: skip
    assert runs["build_training_set.purchase_propensity"]["inputs"] == [
        ("features.customer_activity", "1"),
        ("features.customer_profile", "0"),  # as written by hand
        ("labels.purchase_propensity", "0"),
    ]
    assert runs["build_training_set.purchase_propensity"]["outputs"] == [("training_sets.purchase_propensity", "0")]
    assert runs["train_model.purchase_propensity"]["inputs"] == [("training_sets.purchase_propensity", "0")]
    assert runs["train_model.purchase_propensity"]["outputs"] == [("models:/purchase_propensity/1", None)]

    # Walk back from the model: every step lands on a dataset version another job wrote.
    writers = {out: job for job, r in runs.items() for out in r["outputs"]}
    path, node = [], ("models:/purchase_propensity/1", None)
    while node in writers:
        job = writers[node]
        path.append(job)
        node = next((i for i in runs[job]["inputs"] if i in writers or i[0] == landing_events), None)
        if node is None or node[0] == landing_events:
            break
    assert path == ["train_model.purchase_propensity", "build_training_set.purchase_propensity",
                    "build_features.customer_activity", "ingest_events"]  # fmt: skip
    assert node == (landing_events, None)

    # Each job's run is the child of the Airflow task run it was handed, under the DAG run.
    tasks = {"ingest_events": "ingest_events", "build_features.customer_activity": "build_customer_activity",
             "build_training_set.purchase_propensity": "build_training_set",
             "train_model.purchase_propensity": "train_and_register"}  # fmt: skip
    for job, task in tasks.items():
        assert runs[job]["parent"] == f"pitlake/dag.{task}/{TASK_RUN[task]}", job
        assert runs[job]["facets"]["parent"]["root"]["run"]["runId"] == DAG_RUN
    assert results["train"]["openlineage"]["run_id"] == runs["train_model.purchase_propensity"]["run_id"]


def test_every_output_carries_its_schema_and_a_start_event_precedes_each_completion(one_day):
    from pitlake.core.openlineage import read_events

    home, _ = one_day
    events = read_events(home.lineage_dir)
    by_run: dict[str, list[str]] = {}
    for e in events:
        by_run.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert sorted(set(map(tuple, by_run.values()))) == [("START", "COMPLETE")]
    bronze = next(o for e in events if e["eventType"] == "COMPLETE" for o in e["outputs"]
                  if o["facets"]["symlinks"]["identifiers"][0]["name"] == "bronze.events")  # fmt: skip
    assert bronze["namespace"] == "delta" and bronze["name"] == home.table_path("bronze.events")
    fields = {f["name"]: f["type"] for f in bronze["facets"]["schema"]["fields"]}
    assert fields["event_id"] == "string" and fields["event_time"] == "timestamp" and fields["amount"] == "double"


def test_the_manifest_joins_the_lineage_graph_to_mlflow(one_day):
    from mlflow import MlflowClient
    from pitlake.registry.promote import model_manifest

    home, results = one_day
    client = MlflowClient(tracking_uri=home.mlflow_tracking_uri, registry_uri=home.mlflow_tracking_uri)
    manifest = model_manifest(client, "purchase_propensity", 1)
    assert manifest.openlineage is not None
    assert manifest.openlineage.run_id == results["train"]["openlineage"]["run_id"]
    assert manifest.openlineage.job == "train_model.purchase_propensity"
    assert manifest.openlineage.parent == f"pitlake/dag.train_and_register/{TASK_RUN['train_and_register']}"
    assert manifest.openlineage.training_set_run_id == results["training_set"]["openlineage"]["run_id"]
    version = client.get_model_version("purchase_propensity", "1")
    assert manifest.model.model_id is not None and manifest.model.model_uri == f"models:/{manifest.model.model_id}"
    assert (
        client.get_logged_model(manifest.model.model_id).source_run_id == version.run_id == results["train"]["run_id"]
    )
    assert client.get_run(version.run_id).data.tags["openlineage.run_id"] == manifest.openlineage.run_id
