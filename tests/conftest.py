"""Shared fixtures: one Delta-enabled SparkSession for the whole run, and a scratch PITLAKE_HOME."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pitlake.core import settings as settings_mod

# Airflow imported in this process (DAG integrity tests) must not touch ~/airflow.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="pitlake-test-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(settings_mod.REPO_ROOT / "dags")
# MLflow in this process (training, registry, serving, monitoring tests) sends no usage telemetry.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


@pytest.fixture(scope="session")
def repo_settings() -> settings_mod.Settings:
    """The repository's settings: where ``make install`` put the Delta jars."""
    return settings_mod.load()


@pytest.fixture(scope="session")
def engine_url(repo_settings: settings_mod.Settings) -> Iterator[str]:
    """The warm Spark engine every test shares (the repository home's, started unless it runs).

    Service tests hand it to their subprocesses as ``PITLAKE_SPARK_REMOTE``, so one engine serves
    the whole run. Stopped at the end only if this run started it.
    """
    from pitlake.core import engine
    from pitlake.core.jars import ensure_delta_jars

    ensure_delta_jars(repo_settings)
    was_running = engine.status(repo_settings)["running"]
    state = engine.ensure(repo_settings)
    yield state.url
    if not was_running:
        engine.stop(repo_settings)


@pytest.fixture(scope="session")
def spark(repo_settings: settings_mod.Settings, request: pytest.FixtureRequest) -> Iterator[object]:
    """One session for the whole run: a Connect session on the shared engine (``PITLAKE_ENGINE=classic``:
    a local[2] JVM in this process instead)."""
    from pitlake.core.jars import ensure_delta_jars
    from pitlake.core.spark import get_spark

    ensure_delta_jars(repo_settings)
    local = dataclasses.replace(
        repo_settings,
        spark_master="local[2]",
        spark_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    if local.engine == "connect":
        local = dataclasses.replace(local, spark_remote=request.getfixturevalue("engine_url"))
    session = get_spark("pitlake-tests", local)
    yield session
    session.stop()


@pytest.fixture()
def lake(tmp_path: Path, repo_settings: settings_mod.Settings) -> settings_mod.Settings:
    """Settings whose PITLAKE_HOME is a fresh temporary folder (landing, lake, runs...)."""
    return dataclasses.replace(repo_settings, home=tmp_path / "home")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow SQLite store, copied per test (creating one takes seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture()
def mlflow_home(lake: settings_mod.Settings, mlflow_template: Path) -> settings_mod.Settings:
    """``lake`` with an MLflow SQLite store of its own under its home."""
    import shutil

    db = lake.mlflow_dir / "mlflow.db"
    db.parent.mkdir(parents=True)
    shutil.copy(mlflow_template, db)
    return dataclasses.replace(lake, mlflow_tracking_uri=f"sqlite:///{db}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's, installed by .ci/run) on 127.0.0.1 and a free port, stopped by its pid."""
    import shutil
    import signal
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`apt-get install redis-server`; .ci/run installs it as root)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"redis-server did not listen on 127.0.0.1:{port} within 10 s")
    yield f"redis://127.0.0.1:{port}/0"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def catalog_api(repo_settings: settings_mod.Settings) -> Iterator[str]:
    """The demo's product catalog API on 127.0.0.1 and a free port (a thread of this process), for jobs
    and Airflow runs that pull the catalog: pass it as ``PITLAKE_CATALOG_API_URL``."""
    from pitlake.core.processes import free_port
    from pitlake.demo.catalog_api import running
    from pitlake.demo.landing import demo_config

    with running(demo_config(repo_settings), f"http://127.0.0.1:{free_port()}") as url:
        yield url
