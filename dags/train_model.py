"""
### train_model

Scheduled on the feature tables' Assets: runs when both `features.customer_activity` and
`features.customer_profile` have new versions (a `feature_pipeline` day finished), or by hand.

1. `build_labels` (Spark): the purchase-propensity spine for the last `history_days` days up to
   the run's day; days whose 7-day horizon is not fully observed are skipped. Validated.
2. `build_training_set` (Spark): spine + both feature views, point-in-time, every input read at
   a pinned Delta version; leakage audit; validated. The pins and a content hash are recorded.
3. `train_and_register` (no JVM): reads the training set at its version with delta-rs, trains the
   baseline and the stronger model with a time split, logs everything to MLflow with
   `lineage/manifest.json`, registers the model as `challenger` and runs the champion gate.
   With the `experiment` Param (a config in `conf/experiments/`, e.g. `hgb_search`), it runs that
   experiment instead: its trials on time-series folds, one nested MLflow run each, a comparison
   report, and its best trial registered as `challenger` and gated the same way.

A failed gate (validation or champion) stops the run with a one-line cause in the task log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Param, dag, task
from pitlake.airflow.assets import CUSTOMER_ACTIVITY, CUSTOMER_PROFILE, table_asset
from pitlake.airflow.callbacks import default_args
from pitlake.airflow.operators import PitlakeSparkSubmitOperator

# A manual or `dags test` run has a logical date; an Asset-triggered run has only run_after.
AS_OF = "(dag_run.logical_date or dag_run.run_after)"
END = "{{ " + AS_OF + ".strftime('%Y-%m-%d') }}"
START = "{{ (" + AS_OF + " - macros.timedelta(days=params.history_days)).strftime('%Y-%m-%d') }}"
# The experiment configs shipped in conf/experiments (a file listing: no YAML parsed here).
EXPERIMENTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "experiments").glob("*.yaml"))


@dag(
    dag_id="train_model",
    schedule=(CUSTOMER_ACTIVITY & CUSTOMER_PROFILE),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pitlake", "training"],
    params={
        "history_days": Param(90, type="integer", minimum=8, description="label days to train on"),
        "use_case": Param("purchase_propensity", type="string", enum=["purchase_propensity"]),
        "experiment": Param(
            "",
            type="string",
            enum=["", *EXPERIMENTS],
            description="run this experiment config (conf/experiments) instead of the built-in candidates",
        ),
    },
    default_args=default_args(retries=1, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=10)),
)
def train_model() -> None:
    labels = PitlakeSparkSubmitOperator(
        task_id="build_labels",
        stage="build_labels",
        application_args=["--start", START, "--end", END],
        outlets=[table_asset("labels.purchase_propensity")],
    )
    training_set = PitlakeSparkSubmitOperator(
        task_id="build_training_set",
        stage="build_training_set",
        application_args=["--use-case", "{{ params.use_case }}", "--start", START, "--end", END],
        outlets=[table_asset("training_sets.purchase_propensity")],
    )

    @task(retries=0)
    def train_and_register(params: dict | None = None, ti=None, dag_run=None) -> dict:
        import json

        from pitlake.airflow.lineage import parent_ids
        from pitlake.core import settings
        from pitlake.training.experiment_run import run_experiment, summary_line
        from pitlake.training.train import train

        assert ti is not None and dag_run is not None and params is not None
        built = ti.xcom_pull(task_ids="build_training_set")
        labelled = ti.xcom_pull(task_ids="build_labels")
        validations = list(labelled.get("validation", [])) + list(built.get("validation", []))
        parent, root = parent_ids(ti)  # the training's OpenLineage run is a child of this task's
        common = {
            "training_set_id": built["training_set_id"],
            "airflow": {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "run_after": str(dag_run.run_after)},
            "validation_results": validations,
            "upstream_versions": {"bronze.events": labelled.get("source_version")},
            "lineage_parent": parent,
            "lineage_root": root,
            "training_set_run_id": (built.get("openlineage") or {}).get("run_id"),
        }
        if params.get("experiment"):
            result = run_experiment(settings.load(), params["experiment"], use_case=params["use_case"], **common)
            print(summary_line(result))
        else:
            result = train(settings.load(), use_case=params["use_case"], **common)
        out = result.to_dict() | {"gate_passed": result.gate_passed}
        print(json.dumps({k: out[k] for k in ("model_name", "model_version", "aliases", "gate_passed")}))
        return out

    labels >> training_set >> train_and_register()


train_model()
