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
    monkeypatch.setenv("PITLAKE_TASK_TIMEOUT_MINUTES", "15")
    s = settings.load()
    assert s.home == tmp_path
    assert s.spark_conf == {"spark.a": "1", "spark.b": "x=y"}
    assert s.demo_customers == 50
    assert s.task_timeout_minutes == 15


def test_a_task_try_is_bounded_unless_the_bound_is_zero(monkeypatch):
    from datetime import timedelta

    from pitlake.airflow.callbacks import default_args

    monkeypatch.delenv("PITLAKE_TASK_TIMEOUT_MINUTES", raising=False)
    bounded = default_args(retries=1, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=5))
    assert bounded["execution_timeout"] == timedelta(hours=2)
    monkeypatch.setenv("PITLAKE_TASK_TIMEOUT_MINUTES", "0")
    unbounded = default_args(retries=1, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=5))
    assert unbounded["execution_timeout"] is None


def test_bad_values_say_what_is_wrong(monkeypatch):
    monkeypatch.setenv("PITLAKE_SPARK_CONF", "nonsense")
    with pytest.raises(ConfigError, match="must be key=value"):
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


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "PITLAKE_MAX_EVENT_LATENESS_DAYS",
            "three",
            r"^PITLAKE_MAX_EVENT_LATENESS_DAYS='three' must be a whole number",
        ),
        ("PITLAKE_MAX_EVENT_LATENESS_DAYS", "-1", r"^PITLAKE_MAX_EVENT_LATENESS_DAYS='-1' must be at least 0"),
        ("PITLAKE_DEMO_CUSTOMERS", "0", r"^PITLAKE_DEMO_CUSTOMERS='0' must be at least 1"),
        ("PITLAKE_DEFECT_RATE", "nan", r"^PITLAKE_DEFECT_RATE='nan' must be a number from 0 to 1"),
        ("PITLAKE_DEFECT_RATE", "1.5", r"^PITLAKE_DEFECT_RATE='1.5' must be a number from 0 to 1"),
        ("PITLAKE_SPARK_CONF", "spark.a=1,oops", r"^PITLAKE_SPARK_CONF entry 'oops' must be key=value"),
        ("PITLAKE_ENGINE_PORT", "99999", r"^PITLAKE_ENGINE_PORT='99999' must be a TCP port number"),
        ("PITLAKE_TASK_TIMEOUT_MINUTES", "-5", r"^PITLAKE_TASK_TIMEOUT_MINUTES='-5' must be at least 0"),
    ],
)
def test_a_bad_environment_value_is_one_config_error_naming_it(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as err:
        settings.load()
    assert "\n" not in str(err.value)


def test_a_job_with_a_bad_environment_value_exits_with_one_line(tmp_path):
    import subprocess
    import sys

    env = {"PITLAKE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PITLAKE_MAX_EVENT_LATENESS_DAYS": "3d"}
    out = subprocess.run(
        [sys.executable, str(settings.REPO_ROOT / "jobs" / "ingest_events.py"), "--date", "2026-01-01"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        "pitlake ingest_events: error: PITLAKE_MAX_EVENT_LATENESS_DAYS='3d' must be a whole number (default 3): "
        "fix or unset it"
    )


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..", "a/b", ".hidden", "x'); drop", ""])
def test_names_from_the_command_line_cannot_leave_their_folder(tmp_path, bad):
    from pitlake.core.job import result_path
    from pitlake.core.names import check_name
    from pitlake.training_set.manifest import read_manifest

    home = settings.Settings(home=tmp_path, spark_master=None)
    with pytest.raises(ConfigError, match="is not a valid name"):
        check_name(bad, "model name")
    with pytest.raises(ConfigError, match=r"^training set id .* is not a valid name"):
        read_manifest(home, "purchase_propensity", bad)
    path = result_path(home, "reproduce", f"{bad}-v1")
    assert path.resolve().parent == (tmp_path / "runs" / "reproduce").resolve()


def test_safe_names_pass_unchanged():
    from pitlake.core.names import check_name

    assert check_name("purchase_propensity", "model name") == "purchase_propensity"
    assert check_name("3f9a0c1d2e4b5a67", "training set id") == "3f9a0c1d2e4b5a67"
