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

from pitlake.core.jvm import SHORT_LIVED_JAVA_OPTIONS
from pitlake.core.openlineage import airflow_transport
from pitlake.core.settings import REPO_ROOT, Settings, child_environ
from pitlake.core.settings import load as load_settings


def engine_conn(settings: Settings) -> str:
    """``spark_default`` locally: the warm Spark Connect engine of this home (see pitlake.core.engine), or
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
    # OpenLineage: every task's events to files under lineage/ (the jobs write theirs there too), unless
    # OPENLINEAGE_URL names a server, e.g. Marquez: then the provider and the jobs send them there.
    defaults["AIRFLOW__OPENLINEAGE__NAMESPACE"] = s.openlineage_namespace
    if not (s.openlineage_url or s.openlineage_config):
        defaults["AIRFLOW__OPENLINEAGE__TRANSPORT"] = airflow_transport(s)
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
        from pitlake.core import engine

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
