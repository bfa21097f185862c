"""Suite ``bronze_customers``: the SCD2 profile versions ingested in an interval (``ingest_date`` in it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitlake.core.dates import day_start
from pitlake.sources.schemas import BRONZE_CUSTOMERS_COLUMNS
from pitlake.sources.vocabulary import LOYALTY_TIERS
from pitlake.validation.expectations import (
    allowed,
    daily_profile,
    expectations_module,
    not_null,
    row_count_band,
    schema_expectations,
    unique,
)
from pitlake.validation.records import CRITICAL, WARNING, SuitePlan, Target, suite_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEYS = ("customer_id", "valid_from")
# Allowed values of profile attributes; the snapshot feature views inherit them.
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {"loyalty_tier": LOYALTY_TIERS}


def plan(spark: SparkSession, target: Target, table_df: DataFrame) -> SuitePlan:
    from datetime import timedelta

    from pyspark.sql import functions as F

    gxe = expectations_module()
    notes: list[str] = []
    batch = table_df.where(F.col("ingest_date").between(F.lit(target.start), F.lit(target.end)))
    history = daily_profile(table_df, "ingest_date", target)
    end = day_start(target.end + timedelta(days=1))
    expectations = [
        # Freshness: the interval's changes arrived (the latest valid_from falls in its last day, never after).
        gxe.ExpectColumnMaxToBeBetween(
            column="valid_from",
            min_value=day_start(target.end),
            max_value=end,
            strict_max=True,
            severity=CRITICAL,
            meta={"check": "freshness"},
        ),
        gxe.ExpectColumnDistinctValuesToContainSet(
            column="ingest_date", value_set=target.days(), severity=CRITICAL, meta={"check": "completeness"}
        ),
        *row_count_band(history, target, notes),
        *schema_expectations(BRONZE_CUSTOMERS_COLUMNS),
        *not_null(("customer_id", "valid_from", "is_current", "ingest_date")),
        unique(KEYS),
        *[allowed(column, values) for column, values in ALLOWED_VALUES.items()],
        gxe.ExpectColumnValuesToMatchRegex(
            column="country", regex=r"^[A-Z]{2}$", severity=WARNING, meta={"check": "format"}
        ),
        # A version ends after it starts (valid_to is null while current).
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="valid_to",
            column_B="valid_from",
            ignore_row_if="either_value_is_missing",
            severity=CRITICAL,
            meta={"check": "order"},
        ),
    ]
    return SuitePlan(suite_name(target.table), batch, expectations, notes)
