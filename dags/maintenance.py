"""
### maintenance

Weekly (Sunday 03:00 UTC): `optimize_and_vacuum` (Spark, `jobs/maintenance.py`) compacts every Delta
table under the lake (OPTIMIZE), then VACUUMs files older than `retain_hours` (default 168).

VACUUM never removes a version a registered model still pins: every model version's lineage
manifest lists the Delta versions it was trained on, and for those tables the retention is widened
to the oldest pinned commit, and `delta.deletedFileRetentionDuration` / `delta.logRetentionDuration`
are raised so the pinned version stays time-travel readable (`make reproduce` needs it). If the
registry cannot be read the run fails before anything is vacuumed.

Trigger by hand with `{"dry_run": true}` to see what would be deleted without changing anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag
from pitlake.airflow.callbacks import default_args
from pitlake.airflow.operators import PitlakeSparkSubmitOperator

ARGS = [
    "--retain-hours", "{{ params.retain_hours }}",
    "--dry-run={{ params.dry_run | string | lower }}",
    "--allow-short-retention={{ params.allow_short_retention | string | lower }}",
]  # fmt: skip


@dag(
    dag_id="maintenance",
    schedule=CronDataIntervalTimetable("0 3 * * 0", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pitlake", "maintenance"],
    params={
        "retain_hours": Param(168, type="integer", minimum=0, description="VACUUM retention for unpinned files"),
        "dry_run": Param(False, type="boolean", description="report what would be vacuumed, change nothing"),
        "allow_short_retention": Param(
            False, type="boolean", description="allow retain_hours below 168: only when no pitlake job is running"
        ),
    },
    default_args=default_args(retries=1, retry_delay=timedelta(minutes=5), max_retry_delay=timedelta(minutes=30)),
)
def maintenance() -> None:
    PitlakeSparkSubmitOperator(
        task_id="optimize_and_vacuum",
        stage="maintenance",
        application_args=ARGS,
    )


maintenance()
