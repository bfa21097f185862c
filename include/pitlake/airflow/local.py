"""The environment of the embedded Airflow (SQLite under PITLAKE_HOME, Spark in local mode).

Used by ``python -m pitlake airflow ...`` (and so by the Makefile) and by the tests, so that a
laptop run, ``make demo`` and CI all see the same configuration. Does not import Airflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from pitlake.dates import day_range
from pitlake.settings import REPO_ROOT, Settings, child_environ
from pitlake.settings import load as load_settings
from pitlake.spark import SHORT_LIVED_JAVA_OPTIONS

# Demo length: labels need their 7-day horizon observed, the time split holds out the newest 20%
# of label dates and purges 7 days before them, and the 28-day windows need time to fill, so a
# model sees enough history to reach the quality bar (docs/benchmarks.md has the wall time).
DEMO_DAYS = 42


def engine_conn(settings: Settings) -> str:
    """``spark_default`` locally: the warm Spark Connect engine of this home (see pitlake.engine), or
    the one ``PITLAKE_SPARK_REMOTE`` names."""
    host, port = "127.0.0.1", settings.engine_port
    if settings.spark_remote:
        netloc = settings.spark_remote.removeprefix("sc://").split("/")[0]
        host, _, raw_port = netloc.partition(":")
        port = int(raw_port or 15002)
    return json.dumps({"conn_type": "spark_connect", "host": host, "port": port})


def airflow_env(settings: Settings | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the local Airflow configuration.

    Values already set in ``base`` win, so ``AIRFLOW_CONN_SPARK_DEFAULT=...`` pointing at a cluster
    is the only change needed to run the same DAGs there.
    """
    s = settings or load_settings()
    env = child_environ() if base is None else dict(base)
    bindir = str(Path(sys.executable).parent)
    defaults = {
        "PITLAKE_HOME": str(s.home),
        "AIRFLOW_HOME": str(s.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # LocalExecutor whose workers fork with Great Expectations, pandas and Spark Connect imported.
        "AIRFLOW__CORE__EXECUTOR": "pitlake.airflow.executor.WarmLocalExecutor",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{s.airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(s.airflow_home / "logs"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "8080",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(s.airflow_home / "simple_auth_manager_passwords.json"),
        "AIRFLOW_CONN_SPARK_DEFAULT": engine_conn(s),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PITLAKE_DEMO": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # With spark_default pointing at a cluster, one short-lived spark-submit driver per task on
        # laptop-sized data: C1 JIT, serial GC (a third less CPU per task). Export
        # PITLAKE_DRIVER_JAVA_OPTIONS (even empty) to choose otherwise. The engine is not affected.
        "PITLAKE_DRIVER_JAVA_OPTIONS": SHORT_LIVED_JAVA_OPTIONS,
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"):
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", "pitlake.airflow.sqlite.CONNECT_ARGS")
    # Task runners report to the api-server's execution API: follow its port when that is changed.
    env.setdefault(
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}/execution/"
    )
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def run_airflow(args: Sequence[str], settings: Settings | None = None, check: bool = True) -> int:
    """Run the ``airflow`` CLI of this virtualenv with the local environment."""
    s = settings or load_settings()
    s.airflow_home.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.run([airflow, *args], env=airflow_env(s), check=False)
    if check and proc.returncode != 0:
        raise SystemExit(proc.returncode)
    return proc.returncode


def dags_test_logical_date(day: date) -> str:
    """The logical date to give ``airflow dags test`` so that the run covers day ``day``.

    A manual run of a ``CronDataIntervalTimetable`` DAG covers the last *complete* interval
    before its logical date, so ``[D, D+1)`` is the run at ``D+1 00:00``.
    """
    return (day + timedelta(days=1)).isoformat() + "T00:00:00+00:00"


def uses_engine(settings: Settings) -> bool:
    """Whether local Airflow tasks run on this home's engine (``spark_default`` not overridden)."""
    return airflow_env(settings).get("AIRFLOW_CONN_SPARK_DEFAULT") == engine_conn(settings)


def ensure_engine(settings: Settings) -> None:
    """Start this home's engine unless it runs, when the local Airflow's tasks need it."""
    if uses_engine(settings) and not settings.spark_remote:
        from pitlake import engine

        state = engine.ensure(settings)
        print(f"Spark engine: {state.url} (pid {state.pid})", flush=True)


def run_dag_for_day(dag_id: str, day: date, settings: Settings | None = None) -> int:
    ensure_engine(settings or load_settings())
    return run_airflow(["dags", "test", dag_id, dags_test_logical_date(day)], settings, check=False)


def ensure_db(settings: Settings) -> None:
    """``airflow db migrate`` once per AIRFLOW_HOME (a stamp, not the db file: any CLI call creates that)."""
    stamp = settings.airflow_home / ".pitlake-db-migrated"
    if not stamp.exists():
        run_airflow(["db", "migrate"], settings)
        stamp.touch()


def bootstrap_history(settings: Settings, start: date, end: date) -> None:
    """Demo history for ``[start, end]`` in one Spark session: the same library calls the jobs make.

    ``make demo`` needs a few weeks of history before labels have an observed 7-day horizon; one
    JVM for all of them takes minutes where one ``airflow dags test`` per day (five spark-submits
    each) would take an hour. The last days then run through Airflow.
    """
    import dataclasses

    from pitlake.demo_cli import generate_range
    from pitlake.features import VIEWS
    from pitlake.features.engine import build
    from pitlake.ingest import ingest_customers, ingest_events
    from pitlake.job import result_path, write_result
    from pitlake.spark import get_spark

    # A JVM of its own for the history: one long session of many small jobs, where the engine's
    # per-call overhead (each action's plan re-analysed on the server) measured 20-40 s a day against
    # 14.5 s here. The Airflow days after it run on the engine.
    spark = get_spark("pitlake-demo-history", dataclasses.replace(settings, engine="classic"))
    generate_range(settings, start, end)
    for day in day_range(start, end):
        events = ingest_events(spark, settings, day)
        customers = ingest_customers(spark, settings, day)
        print(f"  history {day}: {events.accepted} events, {customers.accepted} profile changes", flush=True)
    for view in VIEWS:
        result = build(spark, settings, view, start, end)
        # The same record build_features writes: lineage derives the bronze versions behind each day from it.
        write_result(
            result_path(settings, "build_features", f"{view.name}-{end.isoformat()}"),
            {"stage": "build_features", **result.to_dict()},
        )
        print(f"  history {view.table}: {sum(result.rows_by_date.values())} rows", flush=True)
    spark.stop()


def _run_airflow_on_engine(args: Sequence[str], settings: Settings, check: bool = True) -> int:
    ensure_engine(settings)
    return run_airflow(args, settings, check)


def run_demo(settings: Settings, start: date, days: int, airflow_days: int = 2) -> int:
    """``make demo``: history in-process, then ``airflow dags test`` for the last days and ``train_model``.

    Prints where the time went at the end, and writes it to ``runs/demo_timings.json``.
    """
    import time

    from pitlake.report import print_demo_summary

    phases: list[tuple[str, float]] = []

    engine_rss: list[tuple[str, float | None]] = []

    def timed(name: str, fn, *args):
        began = time.monotonic()
        try:
            return fn(*args)
        finally:
            phases.append((name, time.monotonic() - began))
            if uses_engine(settings) and not settings.spark_remote:
                from pitlake import engine

                engine_rss.append((name, engine.status(settings).get("rss_mb")))

    began = time.monotonic()
    timed("start the Spark engine", ensure_engine, settings)
    timed("airflow db migrate", ensure_db, settings)
    end = start + timedelta(days=days - 1)
    airflow_start = end - timedelta(days=max(1, min(airflow_days, days)) - 1)
    if airflow_start > start:
        history_end = airflow_start - timedelta(days=1)
        print(f"== history {start}..{history_end} (one Spark session) ==", flush=True)
        timed(f"history {start}..{history_end}, one Spark session", bootstrap_history, settings, start, history_end)
    for day in day_range(airflow_start, end):
        print(f"== airflow dags test feature_pipeline: interval [{day}, {day + timedelta(days=1)}) ==", flush=True)
        code = timed(f"feature_pipeline {day} (airflow dags test)", run_dag_for_day, "feature_pipeline", day, settings)
        if code != 0:
            print(f"feature_pipeline failed for {day}: see the task log above (exit {code})")
            return code
    print(f"== airflow dags test train_model (labels, training set, MLflow, registry) as of {end} ==", flush=True)
    logical = f"{end.isoformat()}T23:00:00+00:00"
    code = timed(
        "train_model (airflow dags test)",
        _run_airflow_on_engine,
        ["dags", "test", "train_model", logical],
        settings,
        False,
    )
    if code != 0:
        print(f"train_model failed: see the task log above (exit {code})")
        return code
    from pitlake.validation import build_docs_index

    timed("Data Docs index (the gates rebuild it at most every 5 min)", build_docs_index, settings)
    total = time.monotonic() - began
    print()
    print_demo_summary(settings)
    print("\nWhere the time went:")
    for name, seconds in phases:
        print(f"  {seconds:7.1f} s  {name}")
    print(f"  {total:7.1f} s  total")
    if engine_rss:
        print("Engine resident memory after each phase: " + ", ".join(f"{mb} MiB" for _, mb in engine_rss))
    timings = {
        "days": days,
        "airflow_days": airflow_days,
        "phases": phases,
        "total_s": total,
        "engine_rss_mb": engine_rss,
    }
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    (settings.runs_dir / "demo_timings.json").write_text(json.dumps(timings, indent=2))
    return 0
