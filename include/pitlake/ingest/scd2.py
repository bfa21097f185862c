"""The SCD2 commit both profile-like sources share (``bronze.customers``, ``bronze.products``).

A version of a key is valid on ``[valid_from, valid_to)``; ``valid_to`` is the next version's
``valid_from`` (null while current). :func:`commit_versions` adds one arrival day's new versions:
versions that arrive late slot into their place in the history, and a rerun of the day removes the
day's previous contribution, adds the new one and recomputes ``valid_to`` for the affected keys, in one
MERGE commit (the first day creates the table).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pitlake.core import delta_io

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def commit_versions(spark: SparkSession, path: str, new: DataFrame, key: str, day: date) -> int:
    """Merge ``new`` (the day's versions: ``key``, attributes, ``valid_from``, ``ingest_date``,
    ``source_file``, ``line_number``) into the SCD2 table at ``path``; returns the committed version."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(key).orderBy("valid_from", "ingest_date", "line_number")

    def with_validity(history: DataFrame) -> DataFrame:
        return history.withColumn("valid_to", F.lead("valid_from").over(order)).withColumn(
            "is_current", F.col("valid_to").isNull()
        )

    columns = [*new.columns, "valid_to", "is_current"]
    if not delta_io.table_exists(spark, path):
        delta_io.overwrite(with_validity(new).select(*columns), path)
        return delta_io.latest_version(spark, path)
    existing = delta_io.read(spark, path)
    affected = new.select(key).unionByName(existing.where(F.col("ingest_date") == F.lit(day)).select(key)).distinct()
    current = existing.join(affected, key, "left_semi")
    recomputed = with_validity(
        current.where(F.col("ingest_date") != F.lit(day)).select(*new.columns).unionByName(new)
    ).select(*columns)
    merge_key = [key, "valid_from", "ingest_date"]
    removed = current.join(recomputed, merge_key, "left_anti").select(*columns)
    source = recomputed.withColumn("_action", F.lit("upsert")).unionByName(
        removed.withColumn("_action", F.lit("delete"))
    )
    names = ", ".join(f"`{c}`" for c in columns)
    updates = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
    delta_io.merge(
        source,
        path,
        "WHEN MATCHED AND s._action = 'delete' THEN DELETE "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED AND s._action = 'upsert' THEN INSERT ({names}) "
        f"VALUES ({', '.join(f's.`{c}`' for c in columns)})",
        on=" AND ".join(f"t.{k} = s.{k}" for k in merge_key),
    )
    return delta_io.latest_version(spark, path)
