"""The SCD2 ingestion both profile-like sources share (``bronze.customers``, ``bronze.products``).

:func:`ingest_versions` classifies a landing day's records by a :class:`VersionedSource`'s rules and
commits the accepted versions with :func:`commit_versions`.

A version of a key is valid on ``[valid_from, valid_to)``; ``valid_to`` is the next version's
``valid_from`` (null while current). :func:`commit_versions` adds one arrival day's new versions:
versions that arrive late slot into their place in the history, and a rerun of the day removes the
day's previous contribution, adds the new one and recomputes ``valid_to`` for the affected keys, in one
MERGE commit (the first day creates the table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pitlake.core import delta_io
from pitlake.ingest.common import IngestSummary, commit_quarantine, counts, first_reason, parsed_landing

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from pitlake.core.settings import Settings


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


@dataclass(frozen=True)
class VersionedSource:
    """A landing source whose records are versions of a key (``updated_at``): its tables, fields and rules."""

    source: str  # landing/<source>/date=D/
    table: str
    quarantine: str
    fields: Mapping[str, str]
    key: str
    # Columns derived from the parsed fields before the checks (``valid_from`` among them).
    derive: Callable[[DataFrame], DataFrame]
    # The source's own checks after the key and time checks every versioned source has: (reason, failed).
    checks: Callable[[], list[tuple[str, Column]]]
    columns: Callable[[], list[Column | str]]  # the bronze columns of an accepted record, after the key


def ingest_versions(
    spark: SparkSession, settings: Settings, day: date, spec: VersionedSource, *, allow_empty: bool,
    replace_with_empty: bool,
) -> IngestSummary:  # fmt: skip
    """Ingest ``landing/<source>/date=<day>/`` into the SCD2 table of ``spec`` and its quarantine.

    Every record is accepted, quarantined with the first failing rule's reason (the record splitting's
    defect first, then a malformed record, a missing key, an unparseable or future ``updated_at``, then
    the source's own checks) or a duplicate of an accepted version (same key and ``valid_from``; a
    corrected resend after a quarantined record is not one), checked against the driver's own count.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    interval_end = F.lit(f"{(day + timedelta(days=1)).isoformat()} 00:00:00").cast("timestamp")
    landing, parsed = parsed_landing(
        spark, settings, spec.source, spec.table, day, spec.fields,
        allow_empty=allow_empty, replace_with_empty=replace_with_empty,
    )  # fmt: skip
    parsed = spec.derive(parsed)
    key = F.col(spec.key)
    reason = F.coalesce(F.col("defect"), first_reason(
        [
            ("malformed_record", F.col("_corrupt_record").isNotNull()),
            (f"missing_{spec.key}", key.isNull() | (F.trim(key) == "")),
            ("unparseable_updated_at", F.col("valid_from").isNull()),
            ("updated_at_after_interval", F.col("valid_from") >= interval_end),
            *spec.checks(),
        ]
    ))  # fmt: skip
    classified = parsed.withColumn("reason", reason)
    valid = F.col("reason").isNull()
    first = Window.partitionBy(key, F.col("valid_from"), valid).orderBy("source_file", "line_number", "record_in_line")
    classified = classified.withColumn(
        "is_duplicate", F.when(valid, F.row_number().over(first) > 1).otherwise(F.lit(False))
    ).cache()
    path = settings.table_path(spec.table)
    try:
        rows_read = classified.count()
        accepted_n, by_reason, duplicates = counts(classified)
        new = classified.where(valid & ~F.col("is_duplicate")).select(
            spec.key, *spec.columns(), "valid_from", F.lit(day).alias("ingest_date"), "source_file", "line_number"
        )
        version = commit_versions(spark, path, new, spec.key, day)
        q_version = commit_quarantine(
            spark, settings, (spec.table, spec.quarantine), day, landing, classified.where(~valid), spec.key,
            delta_io.Commit(version, None), duplicates,  # a MERGE's metrics do not say the day's rows: counted
        )  # fmt: skip
    finally:
        classified.unpersist()
    return IngestSummary(
        table=spec.table,
        ingest_date=day.isoformat(),
        rows_read=rows_read,
        accepted=accepted_n,
        quarantined=sum(by_reason.values()),
        duplicates_dropped=duplicates,
        quarantined_by_reason=by_reason,
        delta_version=version,
        quarantine_version=q_version,
        records_in_landing=landing.records,
        files=[p.name for p in landing.files],
        empty_files=landing.empty_files,
    )
