"""Ingestion of one large landing day, and the DAG files' parse times.

Baseline (same run, same session): ``spark.read.json`` of the same files straight into a Delta
table, with no validation, quarantine, dedupe or line numbers: the ratio is the price of the
bad-input guarantees.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pitlake.demo.generator import DemoConfig, write_day

from benchmarks.run import Section, best_of, table

if TYPE_CHECKING:
    from benchmarks.run import Context

DAY = date(2026, 3, 4)  # a Wednesday: an ordinary weekday in the generator's seasonality
EVENTS_PER_CUSTOMER_DAY = 2.07  # measured on the demo generator, used only to size the input


def _ingest_rows(ctx: Context, target_events: int) -> list[list[object]]:
    from pitlake.ingest import ingest_events

    customers = max(100, int(target_events / EVENTS_PER_CUSTOMER_DAY))
    settings = dataclasses.replace(ctx.settings, home=ctx.scratch("ingest"))
    for sub in ("landing", "lake"):
        shutil.rmtree(settings.home / sub, ignore_errors=True)
    cfg = DemoConfig(seed=11, customers=customers, epoch=date(2026, 1, 1), defect_rate=0.01)
    start = time.perf_counter()
    report = write_day(cfg, settings.landing, DAY)
    gen_seconds = time.perf_counter() - start
    spark = ctx.spark()
    folder = settings.landing / "events" / f"date={DAY.isoformat()}"

    baseline_path = str(settings.home / "baseline")
    # Best of two: the first also pays the JVM's warm-up, which would flatter the ratio.
    baseline = best_of(
        2, lambda: spark.read.json(str(folder)).write.format("delta").mode("overwrite").save(baseline_path)
    )

    start = time.perf_counter()
    first = ingest_events(spark, settings, DAY)
    first_seconds = time.perf_counter() - start
    start = time.perf_counter()
    again = ingest_events(spark, settings, DAY)
    rerun_seconds = time.perf_counter() - start
    assert again.accepted == first.accepted, "rerun changed the accepted count"
    return [
        ["landing lines", f"{report.event_lines:,}"],
        ["generate landing files (Python)", gen_seconds],
        ["baseline: read.json → Delta, no checks", baseline],
        ["ingest_events, first run", first_seconds],
        ["ingest_events, rerun (replaces the day)", rerun_seconds],
        ["ratio first run / baseline", first_seconds / baseline],
        [
            "accepted / quarantined / duplicates",
            f"{first.accepted:,} / {first.quarantined:,} / {first.duplicates_dropped:,}",
        ],
        ["throughput (lines/s, first run)", f"{report.event_lines / first_seconds:,.0f}"],
    ]


def dag_parse_rows(ctx: Context) -> list[list[object]]:
    from pitlake.airflow.local import airflow_env, ensure_db

    ensure_db(ctx.settings)
    env = airflow_env(ctx.settings)
    airflow = str(Path(sys.executable).parent / "airflow")
    out = subprocess.run(
        [airflow, "dags", "report", "-o", "json"], env=env, capture_output=True, text=True, check=True, timeout=300
    )
    report = next(line for line in out.stdout.splitlines() if line.startswith("[{"))
    rows = json.loads(report)
    return [[r["file"].rsplit("/", 1)[-1], _seconds(r["duration"]), r["dag_num"], r["task_num"]] for r in rows]


def _seconds(duration: str) -> str:
    hours, minutes, seconds = duration.split(":")
    return f"{int(hours) * 3600 + int(minutes) * 60 + float(seconds):.3f} s"


def run(ctx: Context) -> Section:
    target = 10_000 if ctx.quick else 1_000_000
    ingest = _ingest_rows(ctx, target)
    parse = dag_parse_rows(ctx)
    body = (
        f"One landing day from the demo generator sized for ~{target:,} events (it writes the landing lines "
        "below; 1% defects of every kind) on `local[2]`, "
        "driver memory 8g; baseline best of two, `ingest_events` single runs "
        "(the rerun shows the idempotent replace).\n\n"
        + table(["measure", "value"], ingest)
        + "\n\n**DAG file parse time** (`airflow dags report`; the DAG files import no pyspark, pandas, "
        "sklearn, mlflow or great_expectations at top level):\n\n"
        + table(["file", "parse duration", "dags", "tasks"], parse)
    )
    return Section("Ingestion and DAG parsing", body, {"ingest": ingest, "parse": parse})
