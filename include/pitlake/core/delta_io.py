"""Delta Lake reads and writes: interval-scoped replaces, pinned-version reads, committed versions.

Everything here works on a classic session and over Spark Connect alike: table metadata and
MERGE go through Delta's SQL (``DESCRIBE HISTORY``, ``MERGE INTO``), not the ``DeltaTable``
Python API, which needs Delta's connect plugin on the engine.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pitlake.core.settings import Settings


def ident(path: str) -> str:
    """The SQL identifier of the Delta table at ``path``: ``delta.`path```."""
    return "delta.`" + str(path).replace("`", "``") + "`"


def table_exists(spark: SparkSession, path: str) -> bool:
    if Path(path, "_delta_log").is_dir():
        return True
    if "://" not in str(path):  # a local path without a _delta_log is no Delta table
        return False
    try:
        spark.sql(f"DESCRIBE DETAIL {ident(path)}").collect()
        return True
    except Exception:
        return False


def latest_version(spark: SparkSession, path: str) -> int:
    row = spark.sql(f"DESCRIBE HISTORY {ident(path)} LIMIT 1").select("version").first()
    return int(row[0])  # type: ignore[index]


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


def merge(source: DataFrame, path: str, clauses: str, on: str) -> None:
    """``MERGE INTO`` the Delta table at ``path`` (alias ``t``) from ``source`` (alias ``s``), one commit.

    ``clauses`` are the ``WHEN ...`` clauses. The source is a temp view of this session only,
    dropped afterwards, so two tasks merging at once never see each other's source.
    """
    spark = source.sparkSession
    view = f"pitlake_merge_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    try:
        spark.sql(f"MERGE INTO {ident(path)} AS t USING {view} AS s ON {on} {clauses}")
    finally:
        spark.catalog.dropTempView(view)


def lake_tables(settings: Settings) -> list[tuple[str, Path]]:
    """Every Delta table under the lake as ``(layer.table, path)``, found by its ``_delta_log`` (no JVM)."""
    if not settings.lake.is_dir():
        return []
    return [
        (f"{layer.name}.{table.name}", table)
        for layer in sorted(settings.lake.iterdir())
        if layer.is_dir()
        for table in sorted(layer.iterdir())
        if (table / "_delta_log").is_dir()
    ]
