"""Suite ``bronze_events``: one interval of ``bronze.events`` (the rows whose ``event_date`` is in it).

Late rows that a later ingestion adds to an earlier ``event_date`` are validated with that day's slice
the next time it is validated; the slice is always "what the table says about these days" at the pinned
version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitlake.sources.schemas import BRONZE_EVENTS_COLUMNS
from pitlake.sources.vocabulary import CATEGORIES, EVENT_TYPES
from pitlake.validation.expectations import (
    allowed,
    at_least,
    daily_profile,
    expectations_module,
    freshness,
    not_null,
    row_count_band,
    schema_expectations,
    unique,
    within_interval,
)
from pitlake.validation.records import CRITICAL, WARNING, SuitePlan, Target, suite_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Source columns that are never negative; features derived from them (sums, averages) inherit it.
NON_NEGATIVE = ("amount",)
KEYS = ("event_id",)


def plan(spark: SparkSession, target: Target, table_df: DataFrame) -> SuitePlan:
    from great_expectations.expectations.row_conditions import Column
    from pyspark.sql import functions as F

    gxe = expectations_module()
    notes: list[str] = []
    batch = table_df.where(F.col("event_date").between(F.lit(target.start), F.lit(target.end)))
    history = daily_profile(table_df, "event_date", target)
    expectations = [
        *freshness("event_time", "event_date", target),
        *row_count_band(history, target, notes),
        *schema_expectations(BRONZE_EVENTS_COLUMNS),
        *not_null(("event_id", "event_type", "customer_id", "event_time", "event_date", "ingest_date")),
        unique(KEYS),
        allowed("event_type", EVENT_TYPES),
        # Ingestion does not reject unknown categories (a shop adds them): record, do not stop.
        allowed("category", CATEGORIES, severity=WARNING),
        *[at_least(c, 0) for c in NON_NEGATIVE],
        within_interval("event_time", target),
        # An event cannot be ingested before it happened (late events have ingest_date > event_date).
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ingest_date",
            column_B="event_date",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            severity=CRITICAL,
            meta={"check": "order"},
        ),
        # A purchase without an amount is kept (sums skip it) but worth a look.
        gxe.ExpectColumnValuesToNotBeNull(
            column="amount",
            row_condition=Column("event_type") == "purchase",
            severity=WARNING,
            meta={"check": "not_null"},
        ),
    ]
    return SuitePlan(suite_name(target.table), batch, expectations, notes)
