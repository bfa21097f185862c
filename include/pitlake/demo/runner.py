"""``make demo``: the demo's history in one Spark session, its last days through ``airflow dags test``,
then ``train_model``; prints and records where the time went (``runs/demo_timings.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta

from pitlake.airflow.local import ensure_db, ensure_engine, run_airflow, run_dag_for_day, uses_engine
from pitlake.core.dates import day_range
from pitlake.core.settings import Settings

# Demo length: labels need their 7-day horizon observed, the time split holds out the newest 20%
# of label dates and purges 7 days before them, and the 28-day windows need time to fill, so a
# model sees enough history to reach the quality bar (docs/benchmarks.md has the wall time).
DEMO_DAYS = 42


def bootstrap_history(settings: Settings, start: date, end: date) -> None:
    """Demo history for ``[start, end]`` in one Spark session: the same library calls the jobs make.

    ``make demo`` needs a few weeks of history before labels have an observed 7-day horizon; one
    JVM for all of them takes minutes where one ``airflow dags test`` per day (five spark-submits
    each) would take an hour. The last days then run through Airflow.
    """
    import dataclasses

    from pitlake.core.job import result_path, write_result
    from pitlake.core.spark import get_spark
    from pitlake.demo.landing import generate_range
    from pitlake.features import VIEWS
    from pitlake.features.engine import build
    from pitlake.ingest import ingest_customers, ingest_events, ingest_products

    # A JVM of its own for the history: one long session of many small jobs, where the engine's
    # per-call overhead (each action's plan re-analysed on the server) makes a day slower than in a
    # classic session (docs/benchmarks.md). The Airflow days after it run on the engine.
    spark = get_spark("pitlake-demo-history", dataclasses.replace(settings, engine="classic"))
    generate_range(settings, start, end)
    for day in day_range(start, end):
        events = ingest_events(spark, settings, day)
        customers = ingest_customers(spark, settings, day)
        products = ingest_products(spark, settings, day)  # from the catalog API, which run_demo serves
        print(f"  history {day}: {events.accepted} events, {customers.accepted} profile changes, "
              f"{products.accepted} catalog changes", flush=True)  # fmt: skip
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


def run_demo(
    settings: Settings, start: date, days: int, airflow_days: int = 2, experiment: str | None = "hgb_search"
) -> int:
    """``make demo``: history in-process, then ``airflow dags test`` for the last days, ``train_model`` and
    ``train_product_recommendations``, then ``experiment`` (a config in ``conf/experiments``, None to skip)
    on ``train_model``'s training set. The demo's catalog API serves the product changes throughout
    (on ``PITLAKE_CATALOG_API_URL``; one already answering there is used).

    Prints where the time went at the end, and writes it to ``runs/demo_timings.json``.
    """
    from pitlake.demo import catalog_api
    from pitlake.demo.landing import demo_config

    with catalog_api.running(demo_config(settings), settings.catalog_api_url):
        return _run_demo(settings, start, days, airflow_days, experiment)


def _run_demo(settings: Settings, start: date, days: int, airflow_days: int, experiment: str | None) -> int:
    import time

    from pitlake.summary import print_demo_summary

    phases: list[tuple[str, float]] = []

    engine_rss: list[tuple[str, float | None]] = []

    def timed(name: str, fn, *args):
        began = time.monotonic()
        try:
            return fn(*args)
        finally:
            phases.append((name, time.monotonic() - began))
            if uses_engine(settings) and not settings.spark_remote:
                from pitlake.core import engine

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
    logical = f"{end.isoformat()}T23:00:00+00:00"
    for dag_id, what in (("train_model", "labels, training set, MLflow, registry"),
                         ("train_product_recommendations", "the recommender")):  # fmt: skip
        print(f"== airflow dags test {dag_id} ({what}) as of {end} ==", flush=True)
        code = timed(f"{dag_id} (airflow dags test)", _run_airflow_on_engine, ["dags", "test", dag_id, logical],
                     settings, False)  # fmt: skip
        if code != 0:
            print(f"{dag_id} failed: see the task log above (exit {code})")
            return code
    if experiment:
        from pitlake.training.experiment_run import run_experiment, summary_line

        print(f"== experiment {experiment} on train_model's training set (jobs/run_experiment.py) ==", flush=True)
        result = timed(f"experiment {experiment} (search, report, registry gate)", run_experiment, settings,
                       experiment)  # fmt: skip
        print(summary_line(result), flush=True)
    from pitlake.validation import build_docs_index

    timed("Data Docs index (the gates rebuild it at most every 5 min)", build_docs_index, settings)
    from pitlake.core.dates import day_start
    from pitlake.demo.serving import check_served_equals_offline, replay_and_monitor

    at = day_start(end + timedelta(days=1))
    print(f"== serving: the champion online as of {at}, served vs offline ==", flush=True)
    skew = timed("served vs offline (online store, /features, /predict, PIT join)", check_served_equals_offline,
                 settings, at)  # fmt: skip
    print("== monitoring: a day of visits replayed through /predict, then monitor_model's check ==", flush=True)
    monitoring = timed("replay a day through /predict, monitor it", replay_and_monitor, settings, end)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    (settings.runs_dir / "demo_serving.json").write_text(
        json.dumps({"skew": skew, "monitoring": monitoring}, indent=2, default=str)
    )
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
    (settings.runs_dir / "demo_timings.json").write_text(json.dumps(timings, indent=2))
    if not skew["ok"]:
        print(f"served features differ from the offline rows: {skew['mismatches'][:3]}")
        return 1
    return 0
