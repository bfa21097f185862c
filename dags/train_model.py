"""
### train_model, train_product_recommendations

One DAG per use case, the same three steps. `train_model` (purchase propensity) is scheduled on
the customer feature tables' Assets: it runs when both `features.customer_activity` and
`features.customer_profile` have new versions (a `feature_pipeline` day finished), or by hand.
`train_product_recommendations` (the recommender) runs when all five of its feature tables have.

1. `build_labels` (Spark): the use case's labels for the last `history_days` days up to the run's
   day (the propensity spine, or the recommender's labelled candidates); days whose 7-day horizon
   is not fully observed are skipped. Validated.
2. `build_training_set` (Spark): spine + the use case's feature views, point-in-time, every input
   read at a pinned Delta version; leakage audit; validated. The pins and a content hash are recorded.
3. `train_and_register` (no JVM): reads the training set at its version with delta-rs, trains the
   baseline and the stronger model with a time split, logs everything to MLflow with
   `lineage/manifest.json`, registers the model as `challenger` and runs the champion gate
   (ROC AUC for propensity; NDCG@10 against the popularity baseline for the recommender).
   With the `experiment` Param (a config in `conf/experiments/`, e.g. `hgb_search`), it runs that
   experiment instead: its trials on time-series folds, one nested MLflow run each, a comparison
   report, and its best trial registered as `challenger` and gated the same way.

A failed gate (validation or champion) stops the run with a one-line cause in the task log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Param, dag, task
from pitlake.airflow.assets import table_asset
from pitlake.airflow.callbacks import default_args
from pitlake.airflow.operators import PitlakeSparkSubmitOperator

# A manual or `dags test` run has a logical date; an Asset-triggered run has only run_after.
AS_OF = "(dag_run.logical_date or dag_run.run_after)"
END = "{{ " + AS_OF + ".strftime('%Y-%m-%d') }}"
START = "{{ (" + AS_OF + " - macros.timedelta(days=params.history_days)).strftime('%Y-%m-%d') }}"
# The experiment configs shipped in conf/experiments (a file listing: no YAML parsed here).
EXPERIMENTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "experiments").glob("*.yaml"))


# The feature tables each use case reads (its views' tables; no pitlake module imported to list them).
FEATURE_TABLES = {
    "purchase_propensity": ("features.customer_activity", "features.customer_profile"),
    "product_recommendations": (
        "features.customer_activity",
        "features.product_popularity",
        "features.product_catalog",
        "features.customer_category_affinity",
        "features.customer_product_interactions",
    ),
}
LABEL_TABLES = {
    "purchase_propensity": "labels.purchase_propensity",
    "product_recommendations": "labels.product_recommendations",
}
# Experiment configs are written for purchase propensity (each names its use case; a mismatch is refused).
USE_CASE_EXPERIMENTS = {"purchase_propensity": EXPERIMENTS, "product_recommendations": []}


def training_dag(dag_id: str, use_case: str):
    from functools import reduce
    from operator import and_

    # Every feature table must have a new version (an AssetAll), as a `feature_pipeline` day gives them.
    schedule = reduce(and_, [table_asset(t) for t in FEATURE_TABLES[use_case]])

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["pitlake", "training"],
        params={
            "history_days": Param(90, type="integer", minimum=8, description="label days to train on"),
            "use_case": Param(use_case, type="string", enum=[use_case]),
            "experiment": Param(
                "",
                type="string",
                enum=["", *USE_CASE_EXPERIMENTS[use_case]],
                description="run this experiment config (conf/experiments) instead of the built-in candidates",
            ),
        },
        default_args=default_args(retries=1, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=10)),
    )
    def train() -> None:
        labels = PitlakeSparkSubmitOperator(
            task_id="build_labels",
            stage="build_labels",
            application_args=["--use-case", "{{ params.use_case }}", "--start", START, "--end", END],
            outlets=[table_asset(LABEL_TABLES[use_case])],
        )
        training_set = PitlakeSparkSubmitOperator(
            task_id="build_training_set",
            stage="build_training_set",
            application_args=["--use-case", "{{ params.use_case }}", "--start", START, "--end", END],
            outlets=[table_asset(f"training_sets.{use_case}")],
        )

        @task(retries=0)
        def train_and_register(params: dict | None = None, ti=None, dag_run=None) -> dict:
            import json

            from pitlake.airflow.lineage import parent_ids
            from pitlake.core import settings
            from pitlake.training.experiment_run import run_experiment, summary_line
            from pitlake.training.recommend import train_use_case

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
                result = train_use_case(settings.load(), use_case=params["use_case"], **common)
            out = result.to_dict() | {"gate_passed": result.gate_passed}
            print(json.dumps({k: out[k] for k in ("model_name", "model_version", "aliases", "gate_passed")}))
            return out

        labels >> training_set >> train_and_register()

    return train()


training_dag("train_model", "purchase_propensity")
training_dag("train_product_recommendations", "product_recommendations")
