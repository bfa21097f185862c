"""Ingestion of landing files into bronze Delta tables, with quarantine and count conservation.

Rules (tested in tests/test_ingest_*.py):

1. A run covers one *arrival* day D: the files under ``landing/<source>/date=D/``.
2. Every non-blank line ends in exactly one place: the bronze table, the quarantine table (with a
   reason, source file and line number), or the duplicate count. ``rows_read = accepted +
   quarantined + duplicates_dropped``.
3. Late events: an event whose ``event_time`` falls up to ``max_lateness_days`` before D is
   accepted into its true ``event_date`` partition and reported in ``late_event_dates`` (those
   feature days need a rebuild); earlier than that it is quarantined as ``too_late``; an event
   time on or after D+1 is quarantined as ``event_time_after_interval``.
4. Duplicates: the first line of an ``event_id`` (by file, then line) wins, within D's files and
   against events already ingested on other days inside the lateness window.
5. Idempotency: bronze rows carry ``ingest_date`` = D and a run replaces exactly
   ``ingest_date = D`` (one Delta commit per table), so a rerun never duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake import delta_io
from pitlake.demo import EVENT_TYPES, LOYALTY_TIERS
from pitlake.errors import InputError
from pitlake.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

EVENTS_TABLE = "bronze.events"
EVENTS_QUARANTINE = "quarantine.events"
CUSTOMERS_TABLE = "bronze.customers"
CUSTOMERS_QUARANTINE = "quarantine.customers"


@dataclass(frozen=True)
class IngestSummary:
    """What one ingestion run did; ``rows_read == accepted + quarantined + duplicates_dropped``."""

    table: str
    ingest_date: str
    rows_read: int
    accepted: int
    quarantined: int
    duplicates_dropped: int
    quarantined_by_reason: dict[str, int]
    delta_version: int
    quarantine_version: int
    late_event_dates: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined_by_reason.items())) or "none"
        late = ", ".join(f"{k}={v}" for k, v in sorted(self.late_event_dates.items())) or "none"
        return (
            f"{self.table} {self.ingest_date}: read {self.rows_read}, accepted {self.accepted}, "
            f"quarantined {self.quarantined} ({reasons}), duplicates dropped {self.duplicates_dropped}, "
            f"late event dates {late}; committed version {self.delta_version}"
        )


def _landing_lines(spark: SparkSession, folder: Path, day: date, allow_empty: bool) -> DataFrame:
    """Every non-blank line of the day's ``*.jsonl`` files with its source file and 1-based line number."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        if allow_empty:
            schema = "source_file string, line_number int, line string"
            return spark.createDataFrame([], schema)
        raise InputError(
            f"no landing files for {day} in {folder}: check that the upstream drop arrived "
            f"(or pass --allow-empty to record an empty day)"
        )
    # wholetext keeps each file in one row, so line numbers are exact (files must stay < 1 GiB).
    raw = spark.read.text([str(f) for f in files], wholetext=True).select(
        F.input_file_name().alias("source_file"), "value"
    )
    lines = raw.select("source_file", F.posexplode(F.split("value", "\n")).alias("pos", "line")).select(
        "source_file",
        (F.col("pos") + 1).cast(T.IntegerType()).alias("line_number"),
        F.regexp_replace("line", "\r$", "").alias("line"),
    )
    return lines.where(F.trim("line") != "")


def _first_reason(checks: list[tuple[str, Column]]) -> Column:
    from pyspark.sql import functions as F

    expr = None
    for reason, failed in checks:
        expr = F.when(failed, F.lit(reason)) if expr is None else expr.when(failed, F.lit(reason))
    assert expr is not None
    return expr.otherwise(F.lit(None).cast("string"))


def _counts(classified: DataFrame) -> tuple[int, dict[str, int], int]:
    """One pass: (accepted, quarantined by reason, duplicates dropped)."""
    from pyspark.sql import functions as F

    rows = classified.groupBy(F.coalesce("reason", F.lit("")).alias("r"), "is_duplicate").count().collect()
    accepted = sum(r["count"] for r in rows if r["r"] == "" and not r["is_duplicate"])
    duplicates = sum(r["count"] for r in rows if r["r"] == "" and r["is_duplicate"])
    by_reason = {r["r"]: r["count"] for r in rows if r["r"] != ""}
    return accepted, by_reason, duplicates


def ingest_events(spark: SparkSession, settings: Settings, day: date, *, allow_empty: bool = False) -> IngestSummary:
    """Ingest ``landing/events/date=<day>/`` into ``bronze.events`` and ``quarantine.events``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    lateness = settings.max_event_lateness_days
    interval_end = F.lit(f"{(day + timedelta(days=1)).isoformat()} 00:00:00").cast("timestamp")
    earliest = F.lit(f"{(day - timedelta(days=lateness)).isoformat()} 00:00:00").cast("timestamp")
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in ("event_id", "event_type", "customer_id", "event_time")]
        + [
            T.StructField("amount", T.DoubleType()),
            T.StructField("category", T.StringType()),
            T.StructField("session_id", T.StringType()),
            T.StructField("_corrupt_record", T.StringType()),
        ]
    )
    lines = _landing_lines(spark, settings.landing / "events" / f"date={day.isoformat()}", day, allow_empty)
    parsed = lines.withColumn(
        "p", F.from_json("line", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    ).select("source_file", "line_number", "line", "p.*")
    parsed = parsed.withColumn("ts", F.col("event_time").try_cast("timestamp"))
    reason = _first_reason(
        [
            ("malformed_record", F.col("_corrupt_record").isNotNull()),
            ("missing_event_id", F.col("event_id").isNull() | (F.trim("event_id") == "")),
            ("missing_customer_id", F.col("customer_id").isNull() | (F.trim("customer_id") == "")),
            ("unparseable_event_time", F.col("ts").isNull()),
            ("unknown_event_type", ~F.col("event_type").isin(*EVENT_TYPES) | F.col("event_type").isNull()),
            ("negative_amount", F.col("amount") < 0),
            ("event_time_after_interval", F.col("ts") >= interval_end),
            ("too_late", F.col("ts") < earliest),
        ]
    )
    classified = parsed.withColumn("reason", reason)
    first = Window.partitionBy("event_id").orderBy("source_file", "line_number")
    valid = F.col("reason").isNull()
    classified = classified.withColumn(
        "is_duplicate",
        F.when(valid, F.row_number().over(first) > 1).otherwise(F.lit(False)),
    )
    bronze_path = settings.table_path(EVENTS_TABLE)
    if delta_io.table_exists(spark, bronze_path):
        # Already ingested on another arrival day inside the lateness window: a resend, not new data.
        seen = (
            delta_io.read(spark, bronze_path)
            .where(
                (F.col("event_date") >= F.lit(day - timedelta(days=lateness)))
                & (F.col("event_date") <= F.lit(day))
                & (F.col("ingest_date") != F.lit(day))
            )
            .select(F.col("event_id").alias("_seen_id"))
            .distinct()
        )
        classified = (
            classified.join(seen, classified["event_id"] == seen["_seen_id"], "left")
            .withColumn("is_duplicate", F.col("is_duplicate") | (valid & F.col("_seen_id").isNotNull()))
            .drop("_seen_id")
        )
    classified = classified.cache()
    try:
        rows_read = classified.count()
        accepted_n, by_reason, duplicates = _counts(classified)
        accepted = classified.where(valid & ~F.col("is_duplicate")).select(
            "event_id",
            "event_type",
            "customer_id",
            F.col("ts").alias("event_time"),
            F.to_date("ts").alias("event_date"),
            "amount",
            "category",
            "session_id",
            F.lit(day).alias("ingest_date"),
            "source_file",
            "line_number",
        )
        late_rows = accepted.where(F.col("event_date") < F.lit(day)).groupBy("event_date").count().collect()
        version = delta_io.replace_where(accepted, bronze_path, f"ingest_date = '{day.isoformat()}'", ["event_date"])
        quarantined = classified.where(~valid).select(
            F.lit(day).alias("ingest_date"),
            "source_file",
            "line_number",
            "reason",
            "event_id",
            F.col("line").alias("raw_line"),
        )
        q_version = delta_io.replace_where(
            quarantined,
            settings.table_path(EVENTS_QUARANTINE),
            f"ingest_date = '{day.isoformat()}'",
            ["ingest_date"],
        )
    finally:
        classified.unpersist()
    summary = IngestSummary(
        table=EVENTS_TABLE,
        ingest_date=day.isoformat(),
        rows_read=rows_read,
        accepted=accepted_n,
        quarantined=sum(by_reason.values()),
        duplicates_dropped=duplicates,
        quarantined_by_reason=by_reason,
        delta_version=version,
        quarantine_version=q_version,
        late_event_dates={r["event_date"].isoformat(): r["count"] for r in late_rows},
    )
    log.info("%s", summary)
    return summary


def ingest_customers(spark: SparkSession, settings: Settings, day: date, *, allow_empty: bool = False) -> IngestSummary:
    """Ingest ``landing/customers/date=<day>/`` profile changes into the SCD2 ``bronze.customers``.

    A profile version is valid on ``[valid_from, valid_to)``; ``valid_to`` is the next version's
    ``valid_from`` (null while current). Changes that arrive late (``updated_at`` before D) slot
    into their place in the history. A rerun of D removes D's previous contribution, adds the
    new one and recomputes ``valid_to`` for the affected customers, in one MERGE commit.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    interval_end = F.lit(f"{(day + timedelta(days=1)).isoformat()} 00:00:00").cast("timestamp")
    schema = T.StructType(
        [
            T.StructField(name, T.StringType())
            for name in ("customer_id", "segment", "country", "loyalty_tier", "signup_date", "updated_at")
        ]
        + [T.StructField("_corrupt_record", T.StringType())]
    )
    lines = _landing_lines(spark, settings.landing / "customers" / f"date={day.isoformat()}", day, allow_empty)
    parsed = lines.withColumn(
        "p", F.from_json("line", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    ).select("source_file", "line_number", "line", "p.*")
    parsed = parsed.withColumn("valid_from", F.col("updated_at").try_cast("timestamp")).withColumn(
        "signup", F.col("signup_date").try_cast("date")
    )
    reason = _first_reason(
        [
            ("malformed_record", F.col("_corrupt_record").isNotNull()),
            ("missing_customer_id", F.col("customer_id").isNull() | (F.trim("customer_id") == "")),
            ("unparseable_updated_at", F.col("valid_from").isNull()),
            ("updated_at_after_interval", F.col("valid_from") >= interval_end),
            ("unknown_loyalty_tier", ~F.col("loyalty_tier").isin(*LOYALTY_TIERS) | F.col("loyalty_tier").isNull()),
            ("unparseable_signup_date", F.col("signup_date").isNotNull() & F.col("signup").isNull()),
        ]
    )
    classified = parsed.withColumn("reason", reason)
    first = Window.partitionBy("customer_id", "valid_from").orderBy("source_file", "line_number")
    valid = F.col("reason").isNull()
    classified = classified.withColumn(
        "is_duplicate", F.when(valid, F.row_number().over(first) > 1).otherwise(F.lit(False))
    ).cache()
    path = settings.table_path(CUSTOMERS_TABLE)
    try:
        rows_read = classified.count()
        accepted_n, by_reason, duplicates = _counts(classified)
        new = classified.where(valid & ~F.col("is_duplicate")).select(
            "customer_id",
            "segment",
            "country",
            "loyalty_tier",
            F.col("signup").alias("signup_date"),
            "valid_from",
            F.lit(day).alias("ingest_date"),
            "source_file",
            "line_number",
        )
        order = Window.partitionBy("customer_id").orderBy("valid_from", "ingest_date", "line_number")

        def with_validity(history: DataFrame) -> DataFrame:
            return history.withColumn("valid_to", F.lead("valid_from").over(order)).withColumn(
                "is_current", F.col("valid_to").isNull()
            )

        columns = [*new.columns, "valid_to", "is_current"]
        if not delta_io.table_exists(spark, path):
            with_validity(new).select(*columns).write.format("delta").mode("overwrite").save(path)
        else:
            existing = delta_io.read(spark, path)
            affected = (
                new.select("customer_id")
                .unionByName(existing.where(F.col("ingest_date") == F.lit(day)).select("customer_id"))
                .distinct()
            )
            current = existing.join(affected, "customer_id", "left_semi")
            recomputed = with_validity(
                current.where(F.col("ingest_date") != F.lit(day)).select(*new.columns).unionByName(new)
            ).select(*columns)
            key = ["customer_id", "valid_from", "ingest_date"]
            removed = current.join(recomputed, key, "left_anti").select(*columns)
            source = recomputed.withColumn("_action", F.lit("upsert")).unionByName(
                removed.withColumn("_action", F.lit("delete"))
            )
            cond = " AND ".join(f"t.{k} = s.{k}" for k in key)
            names = ", ".join(f"`{c}`" for c in columns)
            updates = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
            delta_io.merge(
                source,
                path,
                "WHEN MATCHED AND s._action = 'delete' THEN DELETE "
                f"WHEN MATCHED THEN UPDATE SET {updates} "
                f"WHEN NOT MATCHED AND s._action = 'upsert' THEN INSERT ({names}) "
                f"VALUES ({', '.join(f's.`{c}`' for c in columns)})",
                on=cond,
            )
        version = delta_io.latest_version(spark, path)
        quarantined = classified.where(~valid).select(
            F.lit(day).alias("ingest_date"),
            "source_file",
            "line_number",
            "reason",
            "customer_id",
            F.col("line").alias("raw_line"),
        )
        q_version = delta_io.replace_where(
            quarantined,
            settings.table_path(CUSTOMERS_QUARANTINE),
            f"ingest_date = '{day.isoformat()}'",
            ["ingest_date"],
        )
    finally:
        classified.unpersist()
    summary = IngestSummary(
        table=CUSTOMERS_TABLE,
        ingest_date=day.isoformat(),
        rows_read=rows_read,
        accepted=accepted_n,
        quarantined=sum(by_reason.values()),
        duplicates_dropped=duplicates,
        quarantined_by_reason=by_reason,
        delta_version=version,
        quarantine_version=q_version,
    )
    log.info("%s", summary)
    return summary
