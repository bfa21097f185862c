"""Failure behaviour (issue 7 item 6), on small hand-made landing files with exact counts.

1. A Spark job killed (SIGKILL) mid-write leaves the Delta table at its previous version with no
   partial rows visible, and a rerun commits exactly one new version with the expected rows:
   ``tests/spark/test_engine.py::test_engine_killed_mid_task_fails_the_task_clearly_and_the_retry_succeeds``
   kills the engine that runs the job's write once its first data files are in the table folder.
2. A task retried after a transient failure (here: killed between its bronze and quarantine
   commits, then failing after both committed) produces no duplicates and consistent tables: the
   rows equal a single run of each day (a range job, which also shows that
   ``--start/--end`` ingests each day in turn), and each successful attempt is one Delta version.
3. A validation failure stops downstream: covered end to end by
   ``tests/services/test_e2e_airflow.py::test_a_missing_day_stops_feature_pipeline_at_the_bronze_gate``
   (the gate fails, ``build_customer_activity`` never runs, the other branch is unaffected); the
   failure callback's one-line summary, which that test does not check, is tested here.

The jobs run as real ``jobs/ingest_events.py`` processes on the shared engine, the failing one
through a small wrapper whose hook (``fail-after-write``) raises a plain error where the job would
validate, i.e. after the commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pitlake.core.settings import REPO_ROOT, Settings

from tests.builders import D1, D2, bronze_rows, landing_d1, landing_d2, log_versions

HOOKED_JOB = """
import os, runpy, sys

hook = os.environ["PITLAKE_TEST_HOOK"]
if hook == "fail-after-write":
    import pitlake.validation

    def gate(*args, **kwargs):
        raise RuntimeError("simulated transient failure after the commit (lost connection)")

    pitlake.validation.gate = gate
elif hook == "kill-between-commits":
    import signal

    from pitlake.core import delta_io

    real_commit = delta_io.replace_where_commit

    def replace_where_commit(df, path, predicate, partition_by, **options):
        if "/quarantine/" in str(path):  # bronze has committed; die before the quarantine commit
            os.kill(os.getpid(), signal.SIGKILL)
        return real_commit(df, path, predicate, partition_by, **options)

    delta_io.replace_where_commit = replace_where_commit
else:
    raise SystemExit(f"unknown hook {hook}")
job = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(job, run_name="__main__")
"""


def prepare(lake: Settings, repo_settings: Settings) -> None:
    lake.home.mkdir(parents=True, exist_ok=True)
    (lake.home / "jars").symlink_to(repo_settings.jars_dir, target_is_directory=True)
    landing_d1(lake)
    landing_d2(lake)


def job_env(lake: Settings, engine_url: str, hook: str | None = None) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(lake.home),
        "PITLAKE_HOME": str(lake.home),
        "PITLAKE_SPARK_REMOTE": engine_url,
        "PYTHONPATH": str(REPO_ROOT),
        **({"PITLAKE_TEST_HOOK": hook} if hook else {}),
    }
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    return env


def start_job(
    lake: Settings, tmp_path: Path, hook: str, args: list[str], engine_url: str
) -> tuple[subprocess.Popen[bytes], Path]:
    wrapper = tmp_path / "hooked_job.py"
    wrapper.write_text(HOOKED_JOB)
    log = tmp_path / f"{hook}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(wrapper), str(REPO_ROOT / "jobs" / "ingest_events.py"), *args],
            env=job_env(lake, engine_url, hook),
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


def comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows without the landing folder (homes differ) and the write time."""
    out = []
    for row in rows:
        if "source_file" in row:
            row = {**row, "source_file": str(row["source_file"]).rsplit("/", 1)[-1]}
        row.pop("computed_at", None)
        out.append(tuple(sorted(row.items())))
    return sorted(out, key=repr)


def test_a_retry_after_a_transient_failure_produces_no_duplicates(
    spark: Any, engine_url: str, lake: Settings, repo_settings: Settings, tmp_path: Path
) -> None:
    import dataclasses

    from deltalake import DeltaTable
    from pitlake.features import get_view
    from pitlake.features.engine import build
    from pitlake.ingest import ingest_events

    prepare(lake, repo_settings)
    ingest_events(spark, lake, date.fromisoformat(D1))  # version 0
    table = Path(lake.table_path("bronze.events"))
    quarantine_table = Path(lake.table_path("quarantine.events"))

    # Attempt 0 is killed (SIGKILL) between its bronze commit and its quarantine commit: bronze holds
    # D2 (version 1), the quarantine does not yet; the task failed, so nothing downstream ran.
    killed, killed_log = start_job(lake, tmp_path, "kill-between-commits", ["--date", D2], engine_url)
    try:
        assert killed.wait(timeout=300) == -signal.SIGKILL, killed_log.read_text()[-4000:]
    finally:
        kill_group(killed)
    assert log_versions(table) == [0, 1] and log_versions(quarantine_table) == [0]

    # Attempt 1 (a job process on the shared engine) commits D2, then fails with a transient
    # (non-pitlake) error before reporting.
    result_file = tmp_path / "ingest_events.1.json"
    args = ["--date", D2, "--result-file", str(result_file)]
    proc, log = start_job(lake, tmp_path, "fail-after-write", args, engine_url)
    try:
        code = proc.wait(timeout=300)
    finally:
        kill_group(proc)
    output = log.read_text()
    assert code == 1, output[-4000:]
    assert "simulated transient failure after the commit" in output
    # No error record: PitlakeSparkSubmitOperator re-raises instead of AirflowFailException, so Airflow retries.
    assert not result_file.exists()
    assert log_versions(table) == [0, 1, 2] and log_versions(quarantine_table) == [0, 1]
    assert len(bronze_rows(table)) == 7

    # Attempt 2 (the retry) replaces exactly D2's rows in both tables: one more version each, no
    # duplicates, and its conservation check (landing records = committed rows + duplicates) holds.
    retry = ingest_events(spark, lake, date.fromisoformat(D2))
    assert (retry.accepted, retry.quarantined, retry.duplicates_dropped, retry.delta_version) == (4, 1, 1, 3)
    assert (retry.records_in_landing, retry.quarantine_version) == (6, 2)
    assert log_versions(table) == [0, 1, 2, 3]
    history = DeltaTable(str(table)).history()
    assert sorted(h["version"] for h in history) == [0, 1, 2, 3]  # exactly one version per commit
    rows = bronze_rows(table)
    assert len(rows) == 7 and len({r["event_id"] for r in rows}) == 7
    quarantine = DeltaTable(str(quarantine_table)).to_pyarrow_table().to_pylist()
    # D1's malformed line, D2's negative amount: once each.
    assert sorted((str(r["ingest_date"]), r["reason"]) for r in quarantine) == [
        (D1, "malformed_record"),
        (D2, "negative_amount"),
    ]

    # Equal to a single run of each day in a fresh home: one range job, each day in turn, one
    # Delta version per day, one gate over both days.
    single = dataclasses.replace(lake, home=tmp_path / "single")
    landing_d1(single)
    landing_d2(single)
    range_file = tmp_path / "range.json"
    ranged = subprocess.run(
        [sys.executable, str(REPO_ROOT / "jobs" / "ingest_events.py"), "--start", D1, "--end", D2,
         "--result-file", str(range_file)],
        env=job_env(single, engine_url), cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert ranged.returncode == 0, ranged.stdout[-3000:] + ranged.stderr[-3000:]
    result = json.loads(range_file.read_text())
    days = [(d["ingest_date"], d["rows_read"], d["accepted"], d["quarantined"], d["duplicates_dropped"],
             d["delta_version"]) for d in result["days"]]  # fmt: skip
    assert days == [(D1, 4, 3, 1, 0, 0), (D2, 6, 4, 1, 1, 1)]
    assert result["delta_version"] == 1
    [gate] = result["validation"]
    assert gate["success"] is True and gate["delta_version"] == 1
    report = json.loads(Path(gate["json_path"]).read_text())
    assert report["interval"] == [D1, D2] and report["rows"] == 7
    single_table = Path(single.table_path("bronze.events"))
    assert log_versions(single_table) == [0, 1]
    assert comparable(rows) == comparable(bronze_rows(single_table))

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


def test_a_commit_that_loses_to_a_concurrent_writer_reruns_the_job_then_names_the_writer(
    spark: Any, lake: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real ConcurrentAppendException: while the job's write runs (a Python UDF holds it for 3 s),
    another writer (delta-rs) appends to the partition the job replaces."""
    import argparse
    import threading
    import time

    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake
    from pitlake.core import delta_io, job
    from pyspark.sql import functions as F

    monkeypatch.setattr(job, "CONFLICT_ATTEMPTS", 2)
    monkeypatch.setattr(job, "CONFLICT_BACKOFF_S", 0.1)
    path = str(tmp_path / "table")
    delta_io.replace_where(spark.createDataFrame([("d1", 1)], "day string, n int"), path, "day = 'd1'", ["day"])
    attempts: list[int] = []

    def body(conflicts: int) -> Any:
        def run(args: argparse.Namespace, settings: Settings) -> tuple[str, dict[str, Any]]:
            attempts.append(1)
            flag = tmp_path / f"conflicts-{conflicts}-attempt-{len(attempts)}"
            df = spark.createDataFrame([("d1", 2)], "day string, n int")
            if len(attempts) <= conflicts:

                def held(n, flag=str(flag)):  # no type hints: a plain (not pandas) UDF
                    import pathlib
                    import time

                    pathlib.Path(flag).touch()
                    time.sleep(3)
                    return n

                def other() -> None:
                    while not flag.exists():
                        time.sleep(0.05)
                    rows = pa.table({"day": ["d1"], "n": pa.array([99], pa.int32())})
                    write_deltalake(path, rows, mode="append", partition_by=["day"])

                threading.Thread(target=other, daemon=True).start()
                df = df.withColumn("n", F.udf(held, "int")("n"))
            return "k", {"delta_version": delta_io.replace_where(df, path, "day = 'd1'", ["day"])}

        return run

    args = argparse.Namespace(run_id="manual__x")
    # Conflict on the first attempt only: the rerun replaces the day, the other writer's row included.
    _key, result = job.run_with_conflict_retry("demo_stage", args, lake, body(conflicts=1))
    assert (len(attempts), result) == (2, {"delta_version": 2, "conflict_retries": 1})
    assert DeltaTable(path).to_pyarrow_table().to_pylist() == [{"day": "d1", "n": 2}]
    history = {h["version"]: h for h in DeltaTable(path).history()}
    assert history[2]["userMetadata"].startswith("pitlake demo_stage run manual__x write ")

    # Conflicts on every attempt: one line naming the table and the other writer, retryable.
    attempts.clear()
    with pytest.raises(delta_io.WriteConflict) as raised:
        job.run_with_conflict_retry("demo_stage", args, lake, body(conflicts=2))
    message = str(raised.value)
    assert len(attempts) == 2 and "\n" not in message
    assert message.startswith(f"{path}: a commit by delta-rs:py-")
    assert "(WRITE, version 4 at " in message and "on each of 2 attempts" in message
    assert "(ConcurrentAppendException); make one job at a time write" in message
    assert raised.value.retryable is True
