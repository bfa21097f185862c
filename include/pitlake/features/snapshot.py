"""Snapshot views (SCD2 ``bronze.customers``, ``bronze.products`` → ``features.<view>``): for day D, every
entity's version valid just before ``feature_time`` (see :mod:`pitlake.features.engine`), with whole days
since a date and the bands of a numeric column."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from pitlake.core import delta_io
from pitlake.core.dates import day_start
from pitlake.core.settings import Settings
from pitlake.features.definitions import SnapshotView
from pitlake.features.source import BuildResult, check_source_covers

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession


def _band(value: Column, edges: tuple[float, ...]) -> Column:
    """0 below ``edges[0]``, i in ``[edges[i-1], edges[i])``, ``len(edges)`` from the last edge; null stays null."""
    from pyspark.sql import functions as F

    out = F.lit(0)
    for i, edge in enumerate(edges):
        out = F.when(value >= F.lit(edge), F.lit(i + 1)).otherwise(out)
    return F.when(value.isNull(), F.lit(None)).otherwise(out).cast("int")


def build_snapshot(
    spark: SparkSession, settings: Settings, view: SnapshotView, days: list[date], computed_at: datetime
) -> BuildResult:
    from pyspark.sql import functions as F

    start, end = days[0], days[-1]
    source_path = settings.table_path(view.source)
    job = "ingest_" + view.source.split(".")[-1]
    source_version = check_source_covers(spark, source_path, view.source, end, job)
    keys = list(view.keys)
    versions = delta_io.read(spark, source_path, source_version)
    calendar = spark.createDataFrame(
        [(d, day_start(d + timedelta(days=1))) for d in days], "feature_date date, ft timestamp"
    )
    valid_from, valid_to = F.col(view.valid_from), F.col(view.valid_to)
    as_of = versions.join(
        F.broadcast(calendar),
        (valid_from < F.col("ft")) & (valid_to.isNull() | (valid_to >= F.col("ft"))),
    )
    frame = as_of.select(
        *[F.col(k) for k in keys],
        F.col("ft").alias("feature_time"),
        "feature_date",
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
        *[F.col(a) for a in view.attributes],
        *[
            F.datediff(F.col("feature_date"), F.to_date(F.col(d.column))).cast("int").alias(d.name)
            for d in view.days_since
        ],
        *[_band(F.col(b.column), b.edges).alias(b.name) for b in view.bands],
    )
    table_path = settings.table_path(view.table)
    version = delta_io.replace_where(
        frame, table_path, f"feature_date >= '{start}' AND feature_date <= '{end}'", ["feature_date"]
    )
    counts = (
        delta_io.read(spark, table_path, version)
        .where(F.col("feature_date").between(F.lit(start), F.lit(end)))
        .groupBy("feature_date")
        .count()
        .collect()
    )
    rows_by_date = {d.isoformat(): 0 for d in days} | {r["feature_date"].isoformat(): r["count"] for r in counts}
    return BuildResult(
        view=view.name,
        version=view.version,
        table=view.table,
        start=start.isoformat(),
        end=end.isoformat(),
        dates_built=[d.isoformat() for d in days],
        rows_by_date=rows_by_date,
        delta_version=version,
        rollup_version=None,
        source_table=view.source,
        source_version=source_version,
        computed_at=computed_at.isoformat(),
    )
