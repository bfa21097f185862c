"""A 7-day backfill run by the Airflow scheduler equals the same days built by the library.

The test starts ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer) on
127.0.0.1 against a fresh AIRFLOW_HOME and PITLAKE_HOME, creates the backfill with the CLI the
README documents, waits for its seven runs with a bound, and compares the lake it built with the
same days built in this process by the library calls the jobs make: each day ingested in turn,
each feature view in one range build (which tests/test_features.py proves equal to day by day). The
scheduler's own cron runs are switched off (``use_job_schedule=False``): unpaused, the DAG would
otherwise also run today's interval. Every process it started is stopped through its process group.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest
from pitlake.dates import day_range

from tests.services import free_port, new_home, run_pitlake, start_pitlake, stop_group, teardown_on_sigterm

pytestmark = pytest.mark.slow

FIRST, LAST = date(2026, 1, 1), date(2026, 1, 7)
CUSTOMERS = "2000"  # the demo default: every day has profile changes (the bronze_customers gate needs some)
BOUND_S = 45 * 60  # seven days of four spark-submits each, on 2 shared cores
# Columns that record where or when a row was written, not what it says.
WRITE_METADATA = {"computed_at", "source_file"}


def runs(db: Path) -> list[tuple[str, str, str]]:
    """(run_id, run_type, state) of feature_pipeline's runs, read from the Airflow database."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        try:
            return con.execute(
                "SELECT run_id, run_type, state FROM dag_run WHERE dag_id = 'feature_pipeline' ORDER BY logical_date"
            ).fetchall()
        except sqlite3.OperationalError:  # tables not migrated yet
            return []


def wait_for(what: str, predicate, bound_s: float, log: Path, every_s: float = 5.0):
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    pytest.fail(f"timed out after {bound_s:.0f} s waiting for {what}; airflow standalone log tail:\n{tail}")


def table_rows(path: Path) -> list[tuple]:
    from deltalake import DeltaTable

    frame = DeltaTable(str(path)).to_pandas()
    frame = frame[sorted(c for c in frame.columns if c not in WRITE_METADATA)]

    # As text, nulls included, so that rows sort and compare whatever their types. Floats to 9 decimals:
    # a sum's last bits depend on the order Spark adds the partial sums in (1547.71 vs 1547.7100000000003).
    def text(v: object) -> str:
        return str(round(v, 9)) if isinstance(v, float) else str(v)

    return sorted(tuple(text(v) for v in row) for row in frame.astype(object).itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory, repo_settings, engine_url):
    home = new_home(tmp_path_factory.mktemp("backfill"), repo_settings.jars_dir)
    (home / "airflow").mkdir()
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PITLAKE_HOME": str(home),
        "PITLAKE_DEMO_CUSTOMERS": CUSTOMERS,
        "PITLAKE_SPARK_REMOTE": engine_url,  # the run's shared engine
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # REST calls below need no token
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    }
    # Create the backfill before the services start: SQLite takes one writer at a time, and the
    # CLI's transaction would otherwise race the scheduler's and the dag-processor's ("database is
    # locked"). With Postgres (docker-compose) the order does not matter.
    for args in (
        ["db", "migrate"],
        ["dags", "reserialize"],  # what the dag-processor does: feature_pipeline into the database (paused)
        # The command the README documents; depends_on_past orders each task by day.
        ["backfill", "create", "--dag-id", "feature_pipeline", "--from-date", FIRST.isoformat(),
         "--to-date", LAST.isoformat(), "--reprocess-behavior", "failed", "--max-active-runs", "2"],
    ):  # fmt: skip
        done = run_pitlake(["airflow", "--", *args], env, timeout=300)
        assert done.returncode == 0, f"airflow {' '.join(args)}: " + done.stdout[-2000:] + done.stderr[-2000:]
    db = home / "airflow" / "airflow.db"
    assert len(runs(db)) == 7, runs(db)
    log = home / "standalone.log"
    # A SIGTERM (CI cancelling, `timeout`) must still run the teardown, not orphan the services.
    with teardown_on_sigterm():
        proc = start_pitlake(["airflow", "--", "standalone"], env, log)
        try:
            # Unpause only once the api-server answers: task runners report to its execution API, and a
            # task the scheduler starts before that fails ("connection refused").
            base = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                if proc.poll() is not None:
                    pytest.fail(f"airflow standalone exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
                try:
                    with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5) as r:
                        return r.status == 200
                except OSError:
                    return False

            wait_for("the api-server to answer", healthy, 300, log, every_s=2)
            unpause = urllib.request.Request(
                f"{base}/api/v2/dags/feature_pipeline",
                data=json.dumps({"is_paused": False}).encode(),
                headers={"Content-Type": "application/json"},
                method="PATCH",
            )
            with urllib.request.urlopen(unpause, timeout=60) as r:
                assert json.loads(r.read())["is_paused"] is False

            def finished() -> list[tuple[str, str, str]] | None:
                if proc.poll() is not None:
                    pytest.fail(f"airflow standalone exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
                found = runs(db)
                failed = [r for r in found if r[2] == "failed"]
                assert not failed, f"backfill runs failed: {failed}; task logs under {home / 'airflow' / 'logs'}"
                done = [r for r in found if r[2] == "success"]
                return found if len(found) == 7 and len(done) == 7 else None

            started = time.monotonic()
            found = wait_for("the 7 backfill runs to succeed", finished, BOUND_S, log, every_s=10)
            print(f"backfill of 7 days took {time.monotonic() - started:.0f} s", file=sys.stderr)
            yield home, found
        finally:
            stop_group(proc, term_wait_s=60)


def test_backfill_runs_are_backfill_runs_of_each_day(backfilled):
    _, found = backfilled
    assert [r[1] for r in found] == ["backfill"] * 7
    assert all(r[2] == "success" for r in found)


def test_a_scheduler_backfill_equals_the_library_build(backfilled, spark, repo_settings, tmp_path):
    from pitlake.demo_cli import generate_range
    from pitlake.features import VIEWS
    from pitlake.features.engine import affected_start, build
    from pitlake.ingest import ingest_customers, ingest_events

    home, _ = backfilled
    reference = dataclasses.replace(repo_settings, home=tmp_path / "reference", demo_customers=int(CUSTOMERS))
    generate_range(reference, FIRST, LAST)
    days = list(day_range(FIRST, LAST))
    for day in days:
        ingest_events(spark, reference, day)
        ingest_customers(spark, reference, day)
    # Each view in one range build over every feature day the daily runs touched (late events reach
    # back up to 2 days, inside the 3-day lateness window, so the daily runs rebuilt each such day).
    # The range build equals a day-by-day build (tests/test_features.py checks that row for row on
    # hand-built data); here it costs a quarter of seven daily builds on the engine.
    for view in VIEWS:
        start = min(affected_start(spark, reference, view, day) for day in days)
        build(spark, reference, view, start, LAST)

    lake = home / "lake"
    from deltalake import DeltaTable

    ingest_dates = set(DeltaTable(str(lake / "bronze" / "events")).to_pandas(columns=["ingest_date"])["ingest_date"])
    assert ingest_dates == {FIRST + timedelta(days=i) for i in range(7)}
    for table in ("bronze/events", "bronze/customers", "features/customer_activity", "features/customer_profile"):
        ours, theirs = table_rows(lake / table), table_rows(reference.lake / table)
        assert len(ours) == len(theirs), f"{table}: {len(ours)} rows from the backfill, {len(theirs)} in the reference"
        assert ours == theirs, f"{table}: the backfill's rows differ from the reference build"
