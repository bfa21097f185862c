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
