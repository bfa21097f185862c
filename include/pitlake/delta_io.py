"""Delta Lake reads and writes: interval-scoped replaces, pinned-version reads, committed versions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def table_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return Path(path, "_delta_log").is_dir() or DeltaTable.isDeltaTable(spark, path)


def latest_version(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])  # type: ignore[index]


def read(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """Read a Delta table, at ``version`` when given (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def replace_where(df: DataFrame, path: str, predicate: str, partition_by: list[str]) -> int:
    """Replace exactly the rows matching ``predicate`` with ``df`` in one Delta commit.

    Every row of ``df`` must satisfy ``predicate`` (Delta checks it). Returns the committed version.
    """
    (df.write.format("delta").mode("overwrite").option("replaceWhere", predicate).partitionBy(*partition_by).save(path))
    return latest_version(df.sparkSession, path)
