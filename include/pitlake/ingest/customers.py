"""``landing/customers/date=D/*.jsonl`` profile changes → the SCD2 ``bronze.customers`` (one MERGE commit
per run) and ``quarantine.customers``; a rerun of D replaces D's contribution and recomputes validity."""

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
from pitlake.ingest.scd2 import commit_versions
from pitlake.sources.vocabulary import LOYALTY_TIERS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

CUSTOMERS_TABLE = "bronze.customers"
CUSTOMERS_QUARANTINE = "quarantine.customers"
# Each landing field and the JSON type it takes (pitlake.ingest.records checks it, Spark parses it).
CUSTOMER_FIELDS = {
    name: "string" for name in ("customer_id", "segment", "country", "loyalty_tier", "signup_date", "updated_at")
}


def ingest_customers(
    spark: SparkSession, settings: Settings, day: date, *, allow_empty: bool = False, replace_with_empty: bool = False
) -> IngestSummary:
    """Ingest ``landing/customers/date=<day>/`` profile changes into the SCD2 ``bronze.customers``.

    A profile version is valid on ``[valid_from, valid_to)`` (:mod:`pitlake.ingest.scd2`): changes that
    arrive late (``updated_at`` before D) slot into their place in the history, and a rerun of D replaces
    D's contribution, in one MERGE commit. Every record in landing is accepted, quarantined or a counted
    duplicate, checked against the driver's own count.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    interval_end = F.lit(f"{(day + timedelta(days=1)).isoformat()} 00:00:00").cast("timestamp")
    landing, parsed = parsed_landing(
        spark, settings, "customers", CUSTOMERS_TABLE, day, CUSTOMER_FIELDS,
        allow_empty=allow_empty, replace_with_empty=replace_with_empty,
    )  # fmt: skip
    path = settings.table_path(CUSTOMERS_TABLE)
    parsed = parsed.withColumn("valid_from", F.col("updated_at").try_cast("timestamp")).withColumn(
        "signup", F.col("signup_date").try_cast("date")
    )
    # A defect found while splitting the bytes into records (pitlake.ingest.records) comes first.
    reason = F.coalesce(F.col("defect"), first_reason(
        [
            ("malformed_record", F.col("_corrupt_record").isNotNull()),
            ("missing_customer_id", F.col("customer_id").isNull() | (F.trim("customer_id") == "")),
            ("unparseable_updated_at", F.col("valid_from").isNull()),
            ("updated_at_after_interval", F.col("valid_from") >= interval_end),
            ("unknown_loyalty_tier", ~F.col("loyalty_tier").isin(*LOYALTY_TIERS) | F.col("loyalty_tier").isNull()),
            ("unparseable_signup_date", F.col("signup_date").isNotNull() & F.col("signup").isNull()),
        ]
    ))  # fmt: skip
    classified = parsed.withColumn("reason", reason)
    valid = F.col("reason").isNull()
    # Among the valid records only: a corrected resend after a quarantined line with its key is not a duplicate.
    first = Window.partitionBy(F.col("customer_id"), F.col("valid_from"), valid).orderBy(
        "source_file", "line_number", "record_in_line"
    )
    classified = classified.withColumn(
        "is_duplicate", F.when(valid, F.row_number().over(first) > 1).otherwise(F.lit(False))
    ).cache()
    try:
        rows_read = classified.count()
        accepted_n, by_reason, duplicates = counts(classified)
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
        version = commit_versions(spark, path, new, "customer_id", day)
        q_version = commit_quarantine(
            spark,
            settings,
            (CUSTOMERS_TABLE, CUSTOMERS_QUARANTINE),
            day,
            landing,
            classified.where(~valid),
            "customer_id",
            delta_io.Commit(version, None),  # a MERGE's metrics do not say the day's rows: counted
            duplicates,
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
        records_in_landing=landing.records,
        files=[p.name for p in landing.files],
        empty_files=landing.empty_files,
    )
    log.info("%s", summary)
    return summary
