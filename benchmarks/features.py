"""Daily cost of ``customer_activity`` as history grows: one day after 30 and after 365 days.

Bronze is synthesised with Spark (``spark.range``: ~30k events/day, a fixed customer base) and
written straight into ``bronze.events``. Day D-1 is built first (a first build: rollups of its
window and the all-history state read from bronze), then day D is timed as the scheduler runs
it every day: one day of bronze, W days of rollups, the previous feature day.

Baseline in the same run: the *first build* of D-1, which has to read all of history; its cost
grows with history, the daily run's should not (target ratio 365d/30d ≤ 1.3).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from benchmarks.run import IMG_DIR, Section, table

if TYPE_CHECKING:
    from pitlake.core.settings import Settings

    from benchmarks.run import Context

LAST_DAY = date(2026, 6, 30)


def _synthesize(ctx: Context, settings: Settings, days: int, customers: int, per_day: int) -> None:
    from pyspark.sql import functions as F

    spark = ctx.spark()
    first = LAST_DAY - timedelta(days=days - 1)
    n = days * per_day
    ids = spark.range(n)
    day_index = (F.col("id") / per_day).cast("int")
    h = F.abs(F.xxhash64("id"))
    kind = F.when(h % 100 < 80, "page_view").when(h % 100 < 93, "add_to_cart").otherwise("purchase")
    df = ids.select(
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        kind.alias("event_type"),
        F.format_string("c%07d", (F.abs(F.xxhash64("id", F.lit(1))) % customers).cast("int")).alias("customer_id"),
        (
            F.lit(first).cast("timestamp")
            + F.make_dt_interval(day_index, F.lit(0), F.lit(0), (F.abs(F.xxhash64("id", F.lit(2))) % 86_400))
        ).alias("event_time"),
        F.when(kind == "purchase", (h % 20_000) / 100.0).alias("amount"),
        F.element_at(F.array(*[F.lit(c) for c in "abcdefghij"]), (h % 10 + 1).cast("int")).alias("category"),
        F.lit("s").alias("session_id"),
        F.lit("bench").alias("source_file"),
        F.col("id").alias("line_number"),
    )
    df = df.withColumn("event_date", F.to_date("event_time")).withColumn("ingest_date", F.col("event_date"))
    df.write.format("delta").mode("overwrite").partitionBy("event_date").save(settings.table_path("bronze.events"))


def _measure(ctx: Context, history: int, customers: int, per_day: int) -> dict[str, float]:
    from pitlake.features import get_view
    from pitlake.features.engine import build

    settings = dataclasses.replace(ctx.settings, home=ctx.scratch(f"features-{history}-{customers}"))
    shutil.rmtree(settings.lake, ignore_errors=True)
    start = time.perf_counter()
    _synthesize(ctx, settings, history, customers, per_day)
    synth = time.perf_counter() - start
    view = get_view("customer_activity")
    spark = ctx.spark()
    start = time.perf_counter()
    build(spark, settings, view, LAST_DAY - timedelta(days=1), LAST_DAY - timedelta(days=1))
    first = time.perf_counter() - start
    daily = []
    for _ in range(1 if ctx.quick else 3):
        start = time.perf_counter()
        build(spark, settings, view, LAST_DAY, LAST_DAY)
        daily.append(time.perf_counter() - start)
    return {"synth": synth, "first": first, "daily": min(daily)}


def run(ctx: Context) -> Section:
    per_day = 3_000 if ctx.quick else 30_000
    histories = (30, 90) if ctx.quick else (30, 365)
    shapes = [("3k customers", 3_000), ("30k customers (10x)", 30_000)]
    rows: list[list[object]] = []
    figures: dict[str, dict[str, float]] = {}
    _measure(ctx, 3, 100, 100)  # warm-up: JIT, Delta and Spark caches; not reported
    for label, customers in shapes:
        got = {h: _measure(ctx, h, customers, per_day) for h in histories}
        short, long = histories
        for h in histories:
            figures[f"{label} {h}d"] = got[h]
        rows.append(
            [
                label,
                got[short]["daily"],
                got[long]["daily"],
                got[long]["daily"] / got[short]["daily"],
                got[short]["first"],
                got[long]["first"],
                got[long]["first"] / got[short]["first"],
            ]
        )
    _plot(figures)
    short, long = histories
    body = (
        f"`customer_activity` v1 (13 window features over 1/7/28 days + `days_since_last_purchase`), "
        f"~{per_day:,} synthetic events/day, `local[2]`. *Daily run*: build day D after D-1 was built "
        f"(best of {1 if ctx.quick else 3}), the run the scheduler makes every day. *First build*: day D-1 with "
        "no previous feature day, so the all-history state is read from bronze: the non-incremental baseline.\n\n"
        + table(
            [
                "customers",
                f"daily run, {short}d history (s)",
                f"daily run, {long}d history (s)",
                "ratio (target ≤ 1.3)",
                f"first build, {short}d (s)",
                f"first build, {long}d (s)",
                "ratio",
            ],
            rows,
        )
        + "\n\n![feature run vs history](img/bench_features.png)\n"
    )
    return Section("Feature engine: daily cost vs history length", body, figures)


def _plot(figures: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(figures)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [figures[k]["daily"] for k in labels], width=0.4, label="daily run")
    ax.bar([x + 0.2 for x in xs], [figures[k]["first"] for k in labels], width=0.4, label="first build (all history)")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("seconds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(IMG_DIR / "bench_features.png", dpi=110)
    plt.close(fig)
