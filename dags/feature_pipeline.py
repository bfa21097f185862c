"""
### feature_pipeline

Daily: one run covers the data interval `[D 00:00, D+1 00:00)` UTC.

1. `generate_demo_data`: in demo mode (`PITLAKE_DEMO=1`) writes the synthetic shop's landing
   files for D; skipped otherwise (real feeds drop the files themselves).
2. `ingest_events`, `ingest_customers`: Spark jobs (`jobs/ingest_*.py`, submitted on the
   `spark_default` connection) load D's landing files into `bronze.events` and the SCD2
   `bronze.customers`; bad lines go to `quarantine.*` with a reason. `ingest_products` pulls D's
   catalog changes from the catalog API (`PITLAKE_CATALOG_API_URL`; paged, retried, its cursor
   stored per day) into landing, then into the SCD2 `bronze.products`. Each emits its table's
   Asset event with the committed Delta version.
3. `build_<view>`: one Spark job per feature view (customer activity and profile; product
   popularity and catalog; customer × category affinity; customer × product interactions)
   (`jobs/build_features.py --view V --date D`) rolls D's bronze into `features.<view>_daily`
   and writes D's point-in-time rows (`feature_time = D+1 00:00`) to `features.<view>`; days
   that D's late events changed are rebuilt too. Each feature table is an Asset: `train_model`
   is scheduled on them, and every event carries the Delta version it committed.
4. `materialize_<view>` (no JVM): after the view's
   build and its validation gate, the rows that changed (D's, and days rebuilt by late data) at
   the Delta version the build committed go to the online store (`PITLAKE_ONLINE_STORE`: SQLite
   under `PITLAKE_HOME/online/` or Redis), as of D+1 00:00; the serving app reads them.

A rerun of D replaces exactly D's rows (and rewrites no online row that did not change).

**Concurrency.** Days build on each other: ingestion deduplicates against the days already
ingested inside the lateness window and chains the SCD2 customer history, and a feature build
reads the previous days' rollups and state. So every task has `depends_on_past=True`: `ingest_events`
for D+1 starts only once `ingest_events` for D succeeded, and so on per task. That orders each
table's writes by day even in a backfill, whose `--max-active-runs` Airflow applies independently
of this DAG's `max_active_runs=1`. What may overlap are different tasks of neighbouring days
(`ingest_events` of D+1 while `build_customer_activity` of D runs): they commit to different
Delta tables, and the shared `ops.validation_results` only receives blind appends, which Delta
never reports as conflicts. A failed day holds the days after it until it is fixed and cleared.

Backfill (runs in the scheduler):

    airflow backfill create --dag-id feature_pipeline --from-date 2026-01-01 --to-date 2026-01-07 \
        --reprocess-behavior failed --max-active-runs 2

(Airflow requires a reprocess behaviour for a DAG with `depends_on_past`: `failed` re-runs the
failed days in the range, `completed` every day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task
from pitlake.airflow.assets import BRONZE_CUSTOMERS, BRONZE_EVENTS, BRONZE_PRODUCTS, table_asset
from pitlake.airflow.callbacks import default_args
from pitlake.airflow.operators import PitlakeSparkSubmitOperator
from pitlake.features import VIEWS

DAY = "{{ data_interval_start.strftime('%Y-%m-%d') }}"


@dag(
    dag_id="feature_pipeline",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pitlake", "features"],
    default_args=default_args(
        retries=2, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=10), depends_on_past=True
    ),
)
def feature_pipeline() -> None:
    @task(retries=0)
    def generate_demo_data(data_interval_start: datetime | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException
        from pitlake.core import settings
        from pitlake.demo.landing import generate_range

        if not settings.demo_mode():
            raise AirflowSkipException("not in demo mode (PITLAKE_DEMO unset): landing files come from upstream")
        assert data_interval_start is not None
        day = data_interval_start.date()
        return generate_range(settings.load(), day, day)

    ingest_events = PitlakeSparkSubmitOperator(
        task_id="ingest_events",
        stage="ingest_events",
        application_args=["--date", DAY],
        outlets=[BRONZE_EVENTS],
        trigger_rule="none_failed",
    )
    ingest_customers = PitlakeSparkSubmitOperator(
        task_id="ingest_customers",
        stage="ingest_customers",
        application_args=["--date", DAY],
        outlets=[BRONZE_CUSTOMERS],
        trigger_rule="none_failed",
    )
    ingest_products = PitlakeSparkSubmitOperator(
        task_id="ingest_products",
        stage="ingest_products",
        application_args=["--date", DAY],
        outlets=[BRONZE_PRODUCTS],
    )

    @task(retries=2)
    def materialize(view: str, build_task: str, data_interval_end: datetime | None = None, ti=None) -> dict:
        from pitlake.airflow.lineage import parent_ids
        from pitlake.core import settings
        from pitlake.core.openlineage import RunRef, job_run
        from pitlake.features import get_view
        from pitlake.serving.materialize import materialize as to_online_store
        from pitlake.serving.materialize import result_lineage

        assert data_interval_end is not None and ti is not None
        built = ti.xcom_pull(task_ids=build_task) or {}
        as_of = data_interval_end.astimezone(UTC).replace(tzinfo=None)
        config = settings.load()
        parent, root = (RunRef.parse(i) for i in parent_ids(ti))
        with job_run(config, f"materialize.{view.split(':')[0]}", parent=parent, root=root) as run:
            result = to_online_store(config, get_view(view), as_of=as_of, version=built.get("delta_version"))
            run.io = result_lineage(result)
        print(f"{result.view}: {result.keys_written} keys written of {result.keys_in_batch} "
              f"({result.mode}, {result.table} v{result.delta_version}, as of {result.as_of})")  # fmt: skip
        return result.to_dict() | {"openlineage": {"run_id": run.run_id, "job": run.name}}

    generate_demo_data() >> [ingest_events, ingest_customers]
    ingest_by_source = {
        "bronze.events": ingest_events,
        "bronze.customers": ingest_customers,
        "bronze.products": ingest_products,
    }
    for view in VIEWS:
        suffix = view.name if view.version == 1 else f"{view.name}_v{view.version}"
        build = PitlakeSparkSubmitOperator(
            task_id=f"build_{suffix}",
            stage="build_features",
            application_args=["--view", f"{view.name}:v{view.version}", "--date", DAY],
            outlets=[table_asset(view.table)],
            doc_md=view.description,
        )
        ingest_by_source[view.source] >> build
        build >> materialize.override(task_id=f"materialize_{suffix}")(
            view=f"{view.name}:v{view.version}", build_task=f"build_{suffix}"
        )


feature_pipeline()
