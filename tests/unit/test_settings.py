from __future__ import annotations

import pytest
from pitlake.core import settings
from pitlake.core.dates import day_range, parse_date
from pitlake.core.errors import ConfigError


def test_defaults_live_under_the_repository(monkeypatch):
    monkeypatch.delenv("PITLAKE_HOME", raising=False)
    s = settings.load()
    assert s.home == settings.REPO_ROOT / ".pitlake"
    assert s.table_path("bronze.events") == str(settings.REPO_ROOT / ".pitlake" / "lake" / "bronze" / "events")
    assert [p.name for p in (s.landing, s.lake, s.airflow_home, s.mlflow_dir, s.gx_dir, s.jars_dir)] == [
        "landing",
        "lake",
        "airflow",
        "mlflow",
        "gx",
        "jars",
    ]


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("PITLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("PITLAKE_SPARK_CONF", "spark.a=1, spark.b=x=y")
    monkeypatch.setenv("PITLAKE_DEMO_CUSTOMERS", "50")
    s = settings.load()
    assert s.home == tmp_path
    assert s.spark_conf == {"spark.a": "1", "spark.b": "x=y"}
    assert s.demo_customers == 50


def test_bad_values_say_what_is_wrong(monkeypatch):
    monkeypatch.setenv("PITLAKE_SPARK_CONF", "nonsense")
    with pytest.raises(ValueError, match="must be key=value"):
        settings.load()
    with pytest.raises(ValueError, match=r"layer\.table"):
        settings.Settings(home=settings.REPO_ROOT, spark_master=None).table_path("events")


def test_dates():
    assert parse_date("2026-02-03").isoformat() == "2026-02-03"
    with pytest.raises(ConfigError, match=r"^--date '03/02/2026' is not a date: use YYYY-MM-DD"):
        parse_date("03/02/2026", what="--date")
    assert [d.day for d in day_range(parse_date("2026-01-30"), parse_date("2026-02-01"))] == [30, 31, 1]
    with pytest.raises(ConfigError, match="before start date"):
        list(day_range(parse_date("2026-01-02"), parse_date("2026-01-01")))


def test_the_local_airflow_waits_for_sqlite_locks_and_leaves_other_databases_alone(tmp_path):
    import importlib
    import sqlite3

    from pitlake.airflow import sqlite as airflow_sqlite
    from pitlake.airflow.local import airflow_env

    s = settings.Settings(home=tmp_path, spark_master=None)
    env = airflow_env(s, {})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"
    # The dotted path Airflow imports (conf.getimport) resolves to arguments pysqlite accepts, with a
    # lock timeout above its 5 s default.
    module, _, name = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"].rpartition(".")
    connect_args = getattr(importlib.import_module(module), name)
    assert connect_args is airflow_sqlite.CONNECT_ARGS and connect_args["timeout"] > 5
    sqlite3.connect(":memory:", **connect_args).close()
    postgres = airflow_env(s, {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://a@db/airflow"})
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in postgres
