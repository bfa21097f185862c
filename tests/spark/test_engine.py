"""The warm Spark engine: lifecycle, per-task isolation, and what a task sees when the engine dies.

The lifecycle and fault tests start a second engine of their own (a fresh home, a free port,
``local[1]``), since they stop and kill it; isolation runs on the shared engine of the test run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pitlake.core import engine
from pitlake.core.settings import REPO_ROOT, Settings

from tests.builders import (
    D1,
    D2,
    bronze_rows,
    landing_d1,
    landing_d2,
    log_versions,
    parquet_files,
    referenced_files,
)
from tests.services.processes import free_port, new_home

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def own_engine(tmp_path_factory: pytest.TempPathFactory, repo_settings: Settings) -> Iterator[Settings]:
    """Settings of a home with an engine of its own on a free port (stopped at the end)."""
    home = new_home(tmp_path_factory.mktemp("engine"), repo_settings.jars_dir)
    settings = dataclasses.replace(
        repo_settings, home=home, engine_port=free_port(), engine_master="local[1]", engine_memory="1g",
        spark_remote=None, spark_conf={"spark.sql.shuffle.partitions": "1"},
    )  # fmt: skip
    try:
        yield settings
    finally:
        engine.stop(settings)


def test_start_is_idempotent_and_status_reports_the_engine(own_engine: Settings) -> None:
    first = engine.ensure(own_engine)
    again = engine.ensure(own_engine)
    assert again.pid == first.pid and again.port == own_engine.engine_port
    info = engine.status(own_engine)
    assert info["running"] is True and info["pid"] == first.pid
    assert info["url"] == f"sc://127.0.0.1:{own_engine.engine_port}"
    assert info["rss_mb"] > 50
    assert Path(info["log"]).is_file()
    # It listens on the loopback address only.
    with socket.socket() as sock:
        sock.settimeout(1)
        outside = [a for a in _own_addresses() if not a.startswith("127.")]
        for address in outside:
            assert sock.connect_ex((address, own_engine.engine_port)) != 0, f"engine reachable on {address}"


def _own_addresses() -> list[str]:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False, timeout=5).stdout
    except OSError:
        return []
    return [a for a in out.split() if ":" not in a]


def test_a_session_on_another_homes_engine_is_refused_with_the_fix(own_engine: Settings, tmp_path: Path) -> None:
    engine.ensure(own_engine)
    from pitlake.core.spark import get_spark

    other = dataclasses.replace(own_engine, home=tmp_path / "other-home")
    with pytest.raises(engine.EngineError) as err:
        get_spark("wrong-home", other)
    message = str(err.value)
    assert "\n" not in message
    assert f"belongs to PITLAKE_HOME={own_engine.home}" in message and "PITLAKE_ENGINE_PORT" in message
    # And starting an engine for the other home on that port says the same, without starting anything.
    with pytest.raises(engine.EngineError, match=f"an engine of PITLAKE_HOME={own_engine.home} already listens"):
        engine.ensure(other)
    assert not (other.home / "engine" / "engine.json").exists()


def test_port_taken_by_something_else_gets_one_line(repo_settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        settings = dataclasses.replace(repo_settings, home=tmp_path / "home", engine_port=port, spark_remote=None)
        started = time.monotonic()
        with pytest.raises(engine.EngineError) as err:
            engine.ensure(settings)
        assert time.monotonic() - started < 60, "a taken port must not hang"
    message = str(err.value)
    assert "\n" not in message
    assert f"port {port} on 127.0.0.1 is taken by another process" in message and "PITLAKE_ENGINE_PORT" in message


def test_engine_down_gets_one_line_naming_the_fix(repo_settings: Settings, tmp_path: Path) -> None:
    from pitlake.core.spark import get_spark

    settings = dataclasses.replace(repo_settings, home=tmp_path / "home", engine_port=free_port(), spark_remote=None)
    started = time.monotonic()
    with pytest.raises(engine.EngineError) as err:
        get_spark("nobody-home", settings)
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "\n" not in message
    assert f"no Spark engine answers at sc://127.0.0.1:{settings.engine_port}" in message
    assert "python -m pitlake engine start" in message


def test_a_stale_pid_file_is_reported_and_replaced(repo_settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(repo_settings, home=tmp_path / "home", engine_port=free_port(), spark_remote=None)
    settings.engine_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "port": settings.engine_port, "home": str(settings.home), "master": "local[1]",
             "started_at": time.time()}  # fmt: skip
    engine.state_file(settings).write_text(json.dumps(stale))
    info = engine.status(settings)
    assert info["running"] is False and info["reason"] == f"stale pid file: process {dead.pid} is gone"
    assert engine.stop(settings) == f"removed a stale pid file (process {dead.pid} was gone)"
    assert not engine.state_file(settings).exists()


def test_two_sessions_on_one_engine_do_not_see_each_others_views_confs_or_cache(spark: Any, engine_url: str) -> None:
    from pyspark.sql import SparkSession

    other = SparkSession.builder.remote(engine_url).create()
    try:
        spark.range(3).createOrReplaceTempView("pitlake_isolation_probe")
        spark.conf.set("spark.sql.shuffle.partitions", "3")
        other.conf.set("spark.sql.shuffle.partitions", "5")
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert other.conf.get("spark.sql.shuffle.partitions") == "5"
        assert [r.name for r in other.catalog.listTables() if r.name == "pitlake_isolation_probe"] == []
        assert spark.table("pitlake_isolation_probe").count() == 3
        with pytest.raises(Exception, match="TABLE_OR_VIEW_NOT_FOUND"):
            other.table("pitlake_isolation_probe").count()
    finally:
        spark.catalog.dropTempView("pitlake_isolation_probe")
        spark.conf.set("spark.sql.shuffle.partitions", "2")
        other.stop()


KILLING_JOB = """
import json, os, runpy, signal, sys, threading, time

from pitlake.core import delta_io

real_commit = delta_io.replace_where_commit
state = json.loads(open(os.environ["PITLAKE_ENGINE_STATE"]).read())


def stall(batches):
    from pyspark import TaskContext

    for batch in batches:
        yield batch
    if TaskContext.get().partitionId() > 0:
        time.sleep(900)  # task 0 wrote its files; this one never finishes: the engine dies here


def replace_where_commit(df, path, predicate, partition_by, **options):
    if path.rstrip("/").endswith("bronze/events"):
        df = df.repartition(2).mapInArrow(stall, df.schema)
        table = path.rstrip("/")
        before = {p for p in _files(table) if p.endswith(".parquet")}

        def kill_when_files_appear():
            while not any(p.endswith(".parquet") and p not in before for p in _files(table)):
                time.sleep(0.1)
            os.killpg(state["pid"], signal.SIGKILL)  # the engine, mid-write

        threading.Thread(target=kill_when_files_appear, daemon=True).start()
    return real_commit(df, path, predicate, partition_by, **options)


def _files(root):
    for folder, _, names in os.walk(root):
        for name in names:
            yield os.path.join(folder, name)


delta_io.replace_where_commit = replace_where_commit
job = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(job, run_name="__main__")
"""


def test_engine_killed_mid_task_fails_the_task_clearly_and_the_retry_succeeds(
    own_engine: Settings, tmp_path: Path
) -> None:
    settings = own_engine
    state = engine.ensure(settings)
    landing_d1(settings)
    landing_d2(settings)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(settings.home),
        "PITLAKE_HOME": str(settings.home),
        "PITLAKE_ENGINE_PORT": str(settings.engine_port),
        "PITLAKE_ENGINE_STATE": str(engine.state_file(settings)),
        "PYTHONPATH": str(REPO_ROOT),
    }
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]

    def job(args: list[str], wrapper: Path | None = None) -> subprocess.CompletedProcess[str]:
        entry = [str(wrapper)] if wrapper else []
        return subprocess.run(
            [sys.executable, *entry, str(REPO_ROOT / "jobs" / "ingest_events.py"), *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    first = job(["--date", D1, "--result-file", str(tmp_path / "d1.json")])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    table = Path(settings.table_path("bronze.events"))
    assert log_versions(table) == [0]
    before = bronze_rows(table)
    before_files = parquet_files(table)

    wrapper = tmp_path / "killing_job.py"
    wrapper.write_text(KILLING_JOB)
    result_file = tmp_path / "d2.json"
    killed = job(["--date", D2, "--result-file", str(result_file)], wrapper)
    assert killed.returncode == 3, killed.stdout[-3000:] + killed.stderr[-3000:]
    error_lines = [line for line in killed.stderr.splitlines() if line.startswith("pitlake ingest_events: error:")]
    assert len(error_lines) == 1, killed.stderr[-3000:]
    assert "went away during the job" in error_lines[0] and "python -m pitlake engine start" in error_lines[0]
    failure = json.loads(result_file.read_text())
    assert failure["retryable"] is True and failure["kind"] == "EngineLost"
    # The table keeps its previous version: D2's orphaned files are not part of it, and the
    # quarantine table (written after bronze) has no new version either.
    assert log_versions(table) == [0]
    assert bronze_rows(table) == before
    orphans = {p.resolve() for p in parquet_files(table) - before_files}
    assert orphans and not (orphans & referenced_files(table))
    assert log_versions(Path(settings.table_path("quarantine.events"))) == [0]
    # A task now finds no engine: one line, retryable.
    down = job(["--date", D2, "--result-file", str(result_file)])
    assert down.returncode == 2
    assert "no Spark engine answers at" in down.stderr and json.loads(result_file.read_text())["retryable"] is True

    # The engine is back (a new process): the retry commits D2 exactly once.
    restarted = engine.ensure(settings)
    assert restarted.pid != state.pid
    retry = job(["--date", D2, "--result-file", str(result_file)])
    assert retry.returncode == 0, retry.stdout[-3000:] + retry.stderr[-3000:]
    done = json.loads(result_file.read_text())
    assert (done["rows_read"], done["accepted"], done["quarantined"], done["duplicates_dropped"]) == (6, 4, 1, 1)
    assert done["delta_version"] == 1 and log_versions(table) == [0, 1]
    rows = bronze_rows(table)
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]
    assert sum(1 for r in rows if str(r["ingest_date"]) == D2) == 4
    assert sum(1 for r in rows if str(r["event_date"]) == D1) == 4  # e1-e3 and the late e7
    assert not (referenced_files(table) & orphans)


def test_an_interval_given_twice_is_one_line_before_spark_starts(lake: Settings, tmp_path: Path) -> None:
    """A range ingest's rows and gate are checked in tests/spark/test_failure_behaviour.py (the retry test)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PITLAKE_HOME": str(lake.home),
           "PYTHONPATH": str(REPO_ROOT)}  # fmt: skip
    both = subprocess.run(
        [sys.executable, str(REPO_ROOT / "jobs" / "ingest_events.py"), "--date", D1, "--start", D1, "--end", D2],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert both.returncode == 2
    assert both.stderr.strip().splitlines()[-1] == (
        "pitlake ingest_events: error: give either --date or --start/--end, not both"
    )
