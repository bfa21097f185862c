"""End to end: `airflow dags test feature_pipeline` on a fresh AIRFLOW_HOME and PITLAKE_HOME."""

from __future__ import annotations

import json

import pytest

from tests.services import new_home, run_pitlake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory, repo_settings, engine_url):
    home = new_home(tmp_path_factory.mktemp("e2e"), repo_settings.jars_dir)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PITLAKE_HOME": str(home),
        "PITLAKE_DEMO_CUSTOMERS": "200",
        "PITLAKE_DEFECT_RATE": "0.05",
        "HOME": str(home),
        "PITLAKE_SPARK_REMOTE": engine_url,  # the run's shared engine
    }
    return home, env


def test_feature_pipeline_runs_one_day_end_to_end(fresh_home):
    from deltalake import DeltaTable

    home, env = fresh_home
    proc = run_pitlake(["run-day", "feature_pipeline", "2026-01-01"], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (home / "airflow" / "airflow.db").exists()
    results = {p.name.split(".")[0]: json.loads(p.read_text()) for p in (home / "runs" / "airflow").rglob("*.json")}
    assert set(results) == {"ingest_events", "ingest_customers", "build_customer_activity", "build_customer_profile"}
    events = results["ingest_events"]
    # The run for logical date 2026-01-02 covers exactly the day 2026-01-01.
    assert events["ingest_date"] == "2026-01-01"
    assert events["rows_read"] == events["accepted"] + events["quarantined"] + events["duplicates_dropped"]
    assert events["accepted"] > 0 and events["quarantined"] > 0
    bronze = DeltaTable(str(home / "lake" / "bronze" / "events"))
    assert bronze.version() == events["delta_version"]
    assert bronze.to_pyarrow_dataset().count_rows() == events["accepted"]
    customers = DeltaTable(str(home / "lake" / "bronze" / "customers"))
    assert customers.to_pyarrow_dataset().count_rows() == results["ingest_customers"]["accepted"]
    assert (home / "lake" / "quarantine" / "events" / "_delta_log").is_dir()
    assert (home / "landing" / "events" / "date=2026-01-01" / "part-0000.jsonl").exists()
    for view in ("customer_activity", "customer_profile"):
        built = results[f"build_{view}"]
        # D itself, and the earlier days D's late events landed in (at most 3 days back).
        assert built["dates_built"][-1] == "2026-01-01" and built["dates_built"][0] >= "2025-12-29"
        table = DeltaTable(str(home / "lake" / "features" / view))
        assert table.version() == built["delta_version"]
        assert table.to_pyarrow_dataset().count_rows() == sum(built["rows_by_date"].values())
        assert built["rows_by_date"]["2026-01-01"] > 0
    # Every customer whose first profile arrived on 2026-01-01 has a profile row as of 2026-01-02 00:00.
    assert results["build_customer_profile"]["rows_by_date"]["2026-01-01"] == results["ingest_customers"]["accepted"]


def test_a_missing_day_stops_feature_pipeline_at_the_bronze_gate(tmp_path_factory, repo_settings, engine_url):
    """Landing files for D that hold only late events: bronze has nothing for D, the freshness
    check of the bronze.events gate fails, and build_customer_activity never runs."""
    home = new_home(tmp_path_factory.mktemp("e2e-gate"), repo_settings.jars_dir)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PITLAKE_HOME": str(home), "PITLAKE_DEMO": "0", "HOME": str(home),
           "PITLAKE_SPARK_REMOTE": engine_url}  # fmt: skip
    day = home / "landing" / "events" / "date=2026-01-05"
    day.mkdir(parents=True)
    (day / "part-0000.jsonl").write_text(
        "".join(
            json.dumps({"event_id": f"e{i}", "event_type": "page_view", "customer_id": "c1",
                        "event_time": "2026-01-04T12:00:00Z", "category": "books"}) + "\n"
            for i in range(5)
        )
    )  # fmt: skip
    customers = home / "landing" / "customers" / "date=2026-01-05"
    customers.mkdir(parents=True)
    (customers / "part-0000.jsonl").write_text(
        json.dumps({"customer_id": "c1", "segment": "new", "country": "DE", "loyalty_tier": "bronze",
                    "signup_date": "2026-01-01", "updated_at": "2026-01-05T08:00:00Z"}) + "\n"
    )  # fmt: skip
    proc = run_pitlake(["run-day", "feature_pipeline", "2026-01-05"], env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "validation gate failed: suite bronze_events" in out, out[-4000:]
    results = {p.name.split(".")[0]: json.loads(p.read_text()) for p in (home / "runs" / "airflow").rglob("*.json")}
    assert "freshness" in results["ingest_events"]["error"] or "event_time" in results["ingest_events"]["error"]
    assert "build_customer_activity" not in results  # downstream of the failed gate: never ran
    assert "error" not in results["ingest_customers"]  # the other branch is independent
