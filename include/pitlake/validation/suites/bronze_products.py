"""Suite ``bronze_products``: the SCD2 product versions ingested in an interval (``ingest_date`` in it).

A catalog does not change every day, so there is no freshness, completeness or row-count band here
(a day without changes is normal); what arrived must be well-formed: keys present and unique per
version, categories the shop sells, prices not negative, no version from after the interval, and
every version ending after it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitlake.core.dates import day_start
from pitlake.sources.schemas import BRONZE_PRODUCTS_COLUMNS
from pitlake.sources.vocabulary import CATEGORIES
from pitlake.validation.expectations import allowed, expectations_module, not_null, schema_expectations, unique
from pitlake.validation.records import CRITICAL, SuitePlan, Target, suite_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEYS = ("product_id", "valid_from")


def plan(spark: SparkSession, target: Target, table_df: DataFrame) -> SuitePlan:
    from datetime import timedelta

    from pyspark.sql import functions as F

    gxe = expectations_module()
    batch = table_df.where(F.col("ingest_date").between(F.lit(target.start), F.lit(target.end)))
    end = day_start(target.end + timedelta(days=1))
    expectations = [
        *schema_expectations(BRONZE_PRODUCTS_COLUMNS),
        *not_null(("product_id", "valid_from", "is_current", "ingest_date", "category", "price", "available")),
        unique(KEYS),
        allowed("category", CATEGORIES),
        gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, severity=CRITICAL, meta={"check": "range"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="valid_from", max_value=end, strict_max=True, severity=CRITICAL, meta={"check": "freshness"}
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="valid_to",
            column_B="valid_from",
            ignore_row_if="either_value_is_missing",
            severity=CRITICAL,
            meta={"check": "order"},
        ),
    ]
    return SuitePlan(suite_name(target.table), batch, expectations, [])
