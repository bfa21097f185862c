"""``landing/events/date=D/*.jsonl`` → ``bronze.events`` (partitioned by ``event_date``) and
``quarantine.events``: rules 1-5 of :mod:`pitlake.ingest`; a run replaces exactly ``ingest_date = D``."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pitlake.core import delta_io
from pitlake.core.settings import Settings
from pitlake.ingest.common import (
    IngestSummary,
    commit_quarantine,
    counts,
    first_reason,
    parsed_landing,
)
from pitlake.sources.vocabulary import EVENT_TYPES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

EVENTS_TABLE = "bronze.events"
EVENTS_QUARANTINE = "quarantine.events"
# Each landing field and the JSON type it takes (pitlake.ingest.records checks it, Spark parses it).
EVENT_FIELDS = {
    "event_id": "string",
    "event_type": "string",
    "customer_id": "string",
    "event_time": "string",
    "amount": "number",
    "category": "string",
    "product_id": "string",  # the catalog's product (optional: feeds before it had none)
    "session_id": "string",
}


def ingest_events(
    spark: SparkSession, settings: Settings, day: date, *, allow_empty: bool = False, replace_with_empty: bool = False
) -> IngestSummary:
    """Ingest ``landing/events/date=<day>/`` into ``bronze.events`` and ``quarantine.events``.

    Every record in landing ends in exactly one of the two tables or is counted as a duplicate; the
    run checks that against its own count of the files' records and fails if it does not hold.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    lateness = settings.max_event_lateness_days
    interval_end = F.lit(f"{(day + timedelta(days=1)).isoformat()} 00:00:00").cast("timestamp")
    earliest = F.lit(f"{(day - timedelta(days=lateness)).isoformat()} 00:00:00").cast("timestamp")
    landing, parsed = parsed_landing(
        spark, settings, "events", EVENTS_TABLE, day, EVENT_FIELDS,
        allow_empty=allow_empty, replace_with_empty=replace_with_empty,
    )  # fmt: skip
    bronze_path = settings.table_path(EVENTS_TABLE)
    parsed = parsed.withColumn("ts", F.col("event_time").try_cast("timestamp"))
    # A defect found while splitting the bytes into records (pitlake.ingest.records) comes first.
    reason = F.coalesce(F.col("defect"), first_reason(
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
    ))  # fmt: skip
    classified = parsed.withColumn("reason", reason)
    valid = F.col("reason").isNull()
    # Among the valid records only: a corrected resend after a quarantined line with its id is not a duplicate.
    first = Window.partitionBy(F.col("event_id"), valid).orderBy("source_file", "line_number", "record_in_line")
    classified = classified.withColumn(
        "is_duplicate",
        F.when(valid, F.row_number().over(first) > 1).otherwise(F.lit(False)),
    )
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
        accepted_n, by_reason, duplicates = counts(classified)
        accepted = classified.where(valid & ~F.col("is_duplicate")).select(
            "event_id",
            "event_type",
            "customer_id",
            F.col("ts").alias("event_time"),
            F.to_date("ts").alias("event_date"),
            "amount",
            "category",
            "product_id",
            "session_id",
            F.lit(day).alias("ingest_date"),
            "source_file",
            "line_number",
        )
        late_rows = accepted.where(F.col("event_date") < F.lit(day)).groupBy("event_date").count().collect()
        # add_columns: a bronze.events written before product_id existed gains it (null in older rows).
        bronze = delta_io.replace_where_commit(
            accepted, bronze_path, f"ingest_date = '{day.isoformat()}'", ["event_date"], add_columns=True
        )
        version = bronze.version
        q_version = commit_quarantine(
            spark,
            settings,
            (EVENTS_TABLE, EVENTS_QUARANTINE),
            day,
            landing,
            classified.where(~valid),
            "event_id",
            bronze,
            duplicates,
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
        records_in_landing=landing.records,
        files=[p.name for p in landing.files],
        empty_files=landing.empty_files,
    )
    log.info("%s", summary)
    return summary
