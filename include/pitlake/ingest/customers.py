"""``landing/customers/date=D/*.jsonl`` profile changes → the SCD2 ``bronze.customers`` (one MERGE commit
per run) and ``quarantine.customers``; a rerun of D replaces D's contribution and recomputes validity."""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from pitlake.core.settings import Settings
from pitlake.ingest.common import IngestSummary
from pitlake.ingest.scd2 import VersionedSource, ingest_versions
from pitlake.sources.vocabulary import LOYALTY_TIERS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

CUSTOMERS_TABLE = "bronze.customers"
CUSTOMERS_QUARANTINE = "quarantine.customers"
# Each landing field and the JSON type it takes (pitlake.ingest.records checks it, Spark parses it).
CUSTOMER_FIELDS = {
    name: "string" for name in ("customer_id", "segment", "country", "loyalty_tier", "signup_date", "updated_at")
}


def _derive(parsed: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return parsed.withColumn("valid_from", F.col("updated_at").try_cast("timestamp")).withColumn(
        "signup", F.col("signup_date").try_cast("date")
    )


def _checks() -> list[tuple[str, Column]]:
    from pyspark.sql import functions as F

    return [
        ("unknown_loyalty_tier", ~F.col("loyalty_tier").isin(*LOYALTY_TIERS) | F.col("loyalty_tier").isNull()),
        ("unparseable_signup_date", F.col("signup_date").isNotNull() & F.col("signup").isNull()),
    ]


def _columns() -> list[Column | str]:
    from pyspark.sql import functions as F

    return ["segment", "country", "loyalty_tier", F.col("signup").alias("signup_date")]


CUSTOMERS = VersionedSource(
    source="customers", table=CUSTOMERS_TABLE, quarantine=CUSTOMERS_QUARANTINE, fields=CUSTOMER_FIELDS,
    key="customer_id", derive=_derive, checks=_checks, columns=_columns,
)  # fmt: skip


def ingest_customers(
    spark: SparkSession, settings: Settings, day: date, *, allow_empty: bool = False, replace_with_empty: bool = False
) -> IngestSummary:
    """Ingest ``landing/customers/date=<day>/`` profile changes into the SCD2 ``bronze.customers``.

    A profile version is valid on ``[valid_from, valid_to)`` (:mod:`pitlake.ingest.scd2`): changes that
    arrive late (``updated_at`` before D) slot into their place in the history, and a rerun of D replaces
    D's contribution, in one MERGE commit. Every record in landing is accepted, quarantined or a counted
    duplicate, checked against the driver's own count.
    """
    summary = ingest_versions(
        spark, settings, day, CUSTOMERS, allow_empty=allow_empty, replace_with_empty=replace_with_empty
    )
    log.info("%s", summary)
    return summary
