"""Failure behaviour (issue 7 item 6), on small hand-made landing files with exact counts.

1. A Spark job killed (SIGKILL) mid-write leaves the Delta table at its previous version with no
   partial rows visible, and a rerun commits exactly one new version with the expected rows.
2. A task retried after a transient failure (here: after its write committed) produces no
   duplicates: the rows equal a single run's, and each successful attempt is one Delta version.
3. A validation failure stops downstream: covered end to end by
   ``tests/test_e2e_airflow.py::test_a_missing_day_stops_feature_pipeline_at_the_bronze_gate``
   (the gate fails, ``build_customer_activity`` never runs, the other branch is unaffected); the
   failure callback's one-line summary, which that test does not check, is tested here.

The jobs run as real ``jobs/ingest_events.py`` processes (their own JVM, ``local[1]``) through a
small wrapper that installs a test hook: ``stall-bronze-write`` splits the bronze write into two
tasks and stalls the second, after the first has written its Parquet files into the table folder
(data files on disk, no commit: the state a crash mid-write leaves),
``fail-after-write`` raises a plain error where the job would validate, i.e. after the commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pitlake.settings import REPO_ROOT, Settings
from pitlake.spark import SHORT_LIVED_JAVA_OPTIONS

from tests.conftest import write_landing

D1, D2 = "2026-01-01", "2026-01-02"

HOOKED_JOB = """
import os, runpy, sys, time

hook = os.environ["PITLAKE_TEST_HOOK"]
if hook == "stall-bronze-write":
    from pitlake import delta_io

    real_replace_where = delta_io.replace_where

    def stall(batches):
        from pyspark import TaskContext

        for batch in batches:
            yield batch
        if TaskContext.get().partitionId() > 0:
            time.sleep(900)  # task 0 wrote and closed its files; this task never finishes: killed here

    def replace_where(df, path, predicate, partition_by):
        if path.rstrip("/").endswith("bronze/events"):
            # Two write tasks (local[1] runs them in turn): the first completes, the second stalls.
            df = df.repartition(2).mapInArrow(stall, df.schema)
        return real_replace_where(df, path, predicate, partition_by)

    delta_io.replace_where = replace_where
elif hook == "fail-after-write":
    import pitlake.validation

    def gate(*args, **kwargs):
        raise RuntimeError("simulated transient failure after the commit (lost connection)")

    pitlake.validation.gate = gate
else:
    raise SystemExit(f"unknown hook {hook}")
job = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(job, run_name="__main__")
"""


def event(event_id: str, time_: str, event_type: str = "page_view", amount: float | None = None) -> str:
    record: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "customer_id": f"c{int(event_id[1:]) % 2 + 1}",
        "event_time": time_,
        "category": "books",
        "session_id": f"s-{event_id}",
    }
    if amount is not None:
        record["amount"] = amount
    return json.dumps(record)


def landing_d1(settings: Settings) -> None:
    """D1: 3 valid events, 1 malformed line (quarantined)."""
    write_landing(
        settings,
        "events",
        D1,
        [
            event("e1", "2026-01-01T08:00:00Z"),
            event("e2", "2026-01-01T09:00:00Z", "add_to_cart"),
            event("e3", "2026-01-01T10:00:00Z", "purchase", 20.0),
            "{not json",
        ],
    )


def landing_d2(settings: Settings) -> None:
    """D2: 4 valid events (one late, into event_date D1), 1 resent line (duplicate), 1 negative amount."""
    write_landing(
        settings,
        "events",
        D2,
        [
            event("e4", "2026-01-02T08:00:00Z"),
            event("e5", "2026-01-02T09:00:00Z", "purchase", 5.5),
            event("e6", "2026-01-02T10:00:00Z", "add_to_cart"),
            event("e7", "2026-01-01T23:30:00Z"),  # late: lands in event_date 2026-01-01
            event("e4", "2026-01-02T08:00:00Z"),  # resent in the same drop: a duplicate
            event("e8", "2026-01-02T11:00:00Z", "purchase", -1.0),  # quarantined: negative_amount
        ],
    )


def prepare(lake: Settings, repo_settings: Settings) -> None:
    lake.home.mkdir(parents=True, exist_ok=True)
    (lake.home / "jars").symlink_to(repo_settings.jars_dir, target_is_directory=True)
    landing_d1(lake)
    landing_d2(lake)


def job_env(lake: Settings, hook: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(lake.home),
        "PITLAKE_HOME": str(lake.home),
        "PITLAKE_SPARK_MASTER": "local[1]",
        "PITLAKE_SPARK_CONF": "spark.sql.shuffle.partitions=1",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO_ROOT),
        "PITLAKE_TEST_HOOK": hook,
        # Its own JVM, killed with the job: the crash mid-write of a classic driver (the engine's
        # faults are in tests/test_engine.py).
        "PITLAKE_ENGINE": "classic",
        "PITLAKE_DRIVER_JAVA_OPTIONS": SHORT_LIVED_JAVA_OPTIONS,
    }
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    return env


def start_job(lake: Settings, tmp_path: Path, hook: str, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    wrapper = tmp_path / "hooked_job.py"
    wrapper.write_text(HOOKED_JOB)
    log = tmp_path / f"{hook}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(wrapper), str(REPO_ROOT / "jobs" / "ingest_events.py"), *args],
            env=job_env(lake, hook),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # python, its spark-submit JVM and Python workers: one process group
            cwd=tmp_path,
        )
    return proc, log


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def parquet_files(table: Path) -> set[Path]:
    return set(table.rglob("*.parquet"))


def log_versions(table: Path) -> list[int]:
    return sorted(int(p.stem) for p in (table / "_delta_log").glob("*.json"))


def bronze_rows(table: Path) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    return sorted(DeltaTable(str(table)).to_pyarrow_table().to_pylist(), key=lambda r: r["event_id"])


def comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows without the landing folder (homes differ) and the write time."""
    out = []
    for row in rows:
        if "source_file" in row:
            row = {**row, "source_file": str(row["source_file"]).rsplit("/", 1)[-1]}
        row.pop("computed_at", None)
        out.append(tuple(sorted(row.items())))
    return sorted(out, key=repr)


def test_a_job_killed_mid_write_leaves_the_previous_version_and_a_rerun_completes(
    spark: Any, lake: Settings, repo_settings: Settings, tmp_path: Path
) -> None:
    from deltalake import DeltaTable
    from pitlake.ingest import ingest_events

    prepare(lake, repo_settings)
    first = ingest_events(spark, lake, date.fromisoformat(D1))
    assert (first.rows_read, first.accepted, first.quarantined, first.delta_version) == (4, 3, 1, 0)
    table = Path(lake.table_path("bronze.events"))
    before_files = parquet_files(table)
    before_rows = bronze_rows(table)
    assert [r["event_id"] for r in before_rows] == ["e1", "e2", "e3"]

    proc, log = start_job(lake, tmp_path, "stall-bronze-write", ["--date", D2])
    try:
        # The kill point: D2's data files are in the table folder but no new _delta_log entry exists.
        deadline = time.monotonic() + 150
        new_files: set[Path] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            new_files = parquet_files(table) - before_files
            if new_files:
                break
            time.sleep(0.1)
        assert new_files, f"no data file appeared (exit {proc.returncode}):\n{log.read_text()[-4000:]}"
        assert log_versions(table) == [0], "the write committed before the kill point"
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        kill_group(proc)

    # The table is still at version 0 with D1's rows only; the orphaned files are not part of it.
    assert log_versions(table) == [0]
    delta = DeltaTable(str(table))
    assert delta.version() == 0
    assert bronze_rows(table) == before_rows
    referenced = {Path(uri.removeprefix("file://")).resolve() for uri in delta.file_uris()}
    orphans = {p.resolve() for p in parquet_files(table) - before_files}
    assert orphans and not (orphans & referenced)
    assert Path(lake.table_path("quarantine.events"), "_delta_log", "00000000000000000001.json").exists() is False

    # The rerun (what Airflow's retry does) commits D2 exactly once: version 1, 3 + 4 rows.
    rerun = ingest_events(spark, lake, date.fromisoformat(D2))
    assert (rerun.rows_read, rerun.accepted, rerun.quarantined, rerun.duplicates_dropped) == (6, 4, 1, 1)
    assert rerun.quarantined_by_reason == {"negative_amount": 1}
    assert rerun.late_event_dates == {D1: 1}
    assert rerun.delta_version == 1 and log_versions(table) == [0, 1]
    rows = bronze_rows(table)
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]
    assert sum(1 for r in rows if str(r["ingest_date"]) == D2) == 4
    assert sum(1 for r in rows if str(r["event_date"]) == D1) == 4  # e1-e3 and the late e7
    final = DeltaTable(str(table))
    assert not ({Path(u.removeprefix("file://")).resolve() for u in final.file_uris()} & orphans)


def test_a_retry_after_a_transient_failure_produces_no_duplicates(
    spark: Any, lake: Settings, repo_settings: Settings, tmp_path: Path
) -> None:
    import dataclasses

    from deltalake import DeltaTable
    from pitlake.features import get_view
    from pitlake.features.engine import build
    from pitlake.ingest import ingest_events

    prepare(lake, repo_settings)
    ingest_events(spark, lake, date.fromisoformat(D1))  # version 0
    table = Path(lake.table_path("bronze.events"))

    # Attempt 1 commits D2, then fails with a transient (non-pitlake) error before reporting.
    result_file = tmp_path / "ingest_events.1.json"
    proc, log = start_job(lake, tmp_path, "fail-after-write", ["--date", D2, "--result-file", str(result_file)])
    try:
        code = proc.wait(timeout=300)
    finally:
        kill_group(proc)
    output = log.read_text()
    assert code == 1, output[-4000:]
    assert "simulated transient failure after the commit" in output
    # No error record: PitlakeSparkSubmitOperator re-raises instead of AirflowFailException, so Airflow retries.
    assert not result_file.exists()
    assert log_versions(table) == [0, 1]
    assert len(bronze_rows(table)) == 7

    # Attempt 2 (the retry) replaces exactly D2's rows: one more version, no duplicates.
    retry = ingest_events(spark, lake, date.fromisoformat(D2))
    assert (retry.accepted, retry.quarantined, retry.duplicates_dropped, retry.delta_version) == (4, 1, 1, 2)
    assert log_versions(table) == [0, 1, 2]
    history = DeltaTable(str(table)).history()
    assert sorted(h["version"] for h in history) == [0, 1, 2]  # exactly one version per successful commit
    rows = bronze_rows(table)
    assert len(rows) == 7 and len({r["event_id"] for r in rows}) == 7
    quarantine = DeltaTable(lake.table_path("quarantine.events")).to_pyarrow_table()
    assert quarantine.num_rows == 2  # D1's malformed line, D2's negative amount: once each

    # Equal to a single run of each day in a fresh home.
    single = dataclasses.replace(lake, home=tmp_path / "single")
    landing_d1(single)
    landing_d2(single)
    ingest_events(spark, single, date.fromisoformat(D1))
    once = ingest_events(spark, single, date.fromisoformat(D2))
    assert once.delta_version == 1
    assert comparable(rows) == comparable(bronze_rows(Path(single.table_path("bronze.events"))))

    # The same for a feature build retried for D2: its partitions are replaced, not appended to.
    view = get_view("customer_activity")
    features = Path(lake.table_path(view.table))
    first = build(spark, lake, view, date.fromisoformat(D1), date.fromisoformat(D2))
    first_rows = comparable(DeltaTable(str(features)).to_pyarrow_table().to_pylist())
    again = build(spark, lake, view, date.fromisoformat(D2), date.fromisoformat(D2))
    assert again.delta_version == first.delta_version + 1
    assert comparable(DeltaTable(str(features)).to_pyarrow_table().to_pylist()) == first_rows
    assert first.rows_by_date == {D1: 2, D2: 2} and again.rows_by_date == {D2: 2}


def test_the_failure_callback_logs_one_line_with_task_interval_and_cause(caplog: pytest.LogCaptureFixture) -> None:
    from pitlake.airflow.callbacks import log_failure

    ti = SimpleNamespace(dag_id="feature_pipeline", task_id="ingest_events", try_number=1)
    cause = RuntimeError(
        "ingest_events: validation gate failed: suite bronze_events (freshness: no rows for 2026-01-05)\n"
        "Traceback details that must not reach the summary"
    )
    context = {
        "ti": ti,
        "exception": cause,
        "data_interval_start": datetime(2026, 1, 5, tzinfo=UTC),
        "data_interval_end": datetime(2026, 1, 6, tzinfo=UTC),
    }
    with caplog.at_level(logging.ERROR, logger="pitlake.failures"):
        log_failure(context)
        log_failure({"task_instance": ti})  # no exception, no interval: still one line
    assert [r.getMessage() for r in caplog.records] == [
        "pitlake task failed: dag=feature_pipeline task=ingest_events "
        "interval=[2026-01-05 00:00:00+00:00, 2026-01-06 00:00:00+00:00) try=1 "
        "cause=ingest_events: validation gate failed: suite bronze_events (freshness: no rows for 2026-01-05)",
        "pitlake task failed: dag=feature_pipeline task=ingest_events interval=[None, None) try=1 "
        "cause=unknown cause (see the task log)",
    ]
    assert all(r.levelno == logging.ERROR and "\n" not in r.getMessage() for r in caplog.records)
