"""The end of ``make demo``: the champion serving online, checked against the offline rows, and a monitoring loop.

1. *No skew*: the app (the online store the feature_pipeline days materialized, the champion)
   answers ``/features`` and ``/predict`` for a sample of customers as of the last materialization,
   and :func:`~pitlake.serving.skew.check_no_skew` compares each vector and score with the
   training-set assembly at that instant (Spark, on the engine).
2. *A day of traffic, replayed*: the demo's data are history, so production is replayed: the online
   store as of an earlier day ``R`` (the newest whose 7-day outcomes the demo has observed) is
   materialized into its own SQLite file, and every customer who visited on ``R`` asks ``/predict``
   at the time of their first visit (the app's clock reads that time). The answers go to
   ``monitoring.predictions`` like live ones.
3. *Monitoring*: :func:`pitlake.monitoring.monitor.monitor` for ``R``: realized ROC AUC and
   calibration from the outcomes observed since, drift of the served vectors against the
   champion's training set, the HTML report under ``PITLAKE_HOME/monitoring``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pitlake.core.settings import Settings

SKEW_SAMPLE = 200


def _visits(settings: Settings, day: date) -> list[tuple[str, datetime]]:
    """(customer, first event time) of every customer who visited on ``day``: the label spine of that day."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from pitlake.labels.build import LABELS_TABLE

    dataset = DeltaTable(settings.table_path(LABELS_TABLE)).to_pyarrow_dataset()
    rows = dataset.to_table(
        columns=["customer_id", "label_time"], filter=pc.field("label_date") == pa.scalar(day), use_threads=False
    )
    times = rows["label_time"].cast(pa.timestamp("us")).to_pylist()
    return sorted(zip(rows["customer_id"].to_pylist(), times, strict=True), key=lambda r: (r[1], r[0]))


def check_served_equals_offline(settings: Settings, at: datetime, seed: int = 7) -> dict[str, Any]:
    import random

    from deltalake import DeltaTable
    from fastapi.testclient import TestClient

    from pitlake.core.spark import get_spark
    from pitlake.serving.app import create_app
    from pitlake.serving.skew import check_no_skew
    from pitlake.serving.store import open_store
    from pitlake.training_set.build import get_use_case

    use_case = get_use_case("purchase_propensity")
    store = open_store(settings)
    customers = DeltaTable(settings.table_path("bronze.customers")).to_pyarrow_table(columns=["customer_id"])
    known = sorted(set(customers["customer_id"].to_pylist()))
    sample = [*random.Random(seed).sample(known, min(SKEW_SAMPLE, len(known))), "never-seen-customer"]
    app = create_app(settings, store=store, clock=lambda: at, log_predictions=False)
    spark = get_spark("pitlake-demo-skew-check")
    with TestClient(app) as client:
        report = check_no_skew(spark, settings, client, store, use_case, [(k,) for k in sample], at)
    print("  " + report.line(), flush=True)
    return report.to_dict()


def replay_and_monitor(settings: Settings, end: date) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from pitlake.monitoring.monitor import monitor
    from pitlake.serving.app import create_app
    from pitlake.serving.materialize import materialize
    from pitlake.serving.store import SQLiteStore
    from pitlake.training_set.build import get_use_case

    use_case = get_use_case("purchase_propensity")
    # The newest day whose visits' 7-day outcomes are observed by the end of the demo (lateness included).
    day = end - timedelta(days=7 + settings.max_event_lateness_days)
    as_of = datetime.combine(day, datetime.min.time())
    store = SQLiteStore(settings.online_dir / f"replay-{day.isoformat()}.sqlite")
    for view in use_case.feature_views():
        materialize(settings, view, as_of=as_of, store=store, full=True)
    visits = _visits(settings, day)
    clock = {"now": as_of}
    app = create_app(settings, store=store, clock=lambda: clock["now"], flush_seconds=3600)
    with TestClient(app) as client:
        for customer, at in visits:
            clock["now"] = at
            response = client.post("/predict", json={"entities": [{"customer_id": customer}]})
            response.raise_for_status()
    print(f"  replayed {len(visits)} visits of {day} through /predict (logged to monitoring.predictions)", flush=True)
    result = monitor(settings, use_case.name, day)
    out = result.to_dict()
    print(f"  monitoring: {out.get('message')}", flush=True)
    if out.get("breached"):
        print("  (the monitor_model DAG fails on this and triggers train_model; the demo only reports it)", flush=True)
    if out.get("report_html"):
        print(f"  report: {out['report_html']}", flush=True)
    return {"replay_day": day.isoformat(), "requests": len(visits), "monitoring": out}
