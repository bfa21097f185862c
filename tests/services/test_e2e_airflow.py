"""End to end: `airflow dags test feature_pipeline` on a fresh AIRFLOW_HOME and PITLAKE_HOME, for a
day whose landing files hold only late events.

A good day through `airflow dags test` (every task's result, Delta versions, counts conserved) is
checked by tests/services/test_spark_cluster.py, whose day runs the same command with only the Spark
connection changed; the scheduler's runs by tests/services/test_airflow_ui.py.
"""

from __future__ import annotations

import json

import pytest

from tests.services.processes import new_home, run_pitlake

pytestmark = pytest.mark.slow


def test_a_missing_day_stops_feature_pipeline_at_the_bronze_gate(tmp_path_factory, repo_settings, engine_url,
                                                                  catalog_api):  # fmt: skip
    """Landing files for D that hold only late events: bronze has nothing for D, the freshness
    check of the bronze.events gate fails, and build_customer_activity never runs."""
    home = new_home(tmp_path_factory.mktemp("e2e-gate"), repo_settings.jars_dir)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PITLAKE_HOME": str(home), "PITLAKE_DEMO": "0", "HOME": str(home),
           "PITLAKE_SPARK_REMOTE": engine_url, "PITLAKE_CATALOG_API_URL": catalog_api}  # fmt: skip
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
