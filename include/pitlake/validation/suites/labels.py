"""Suite ``labels_<use_case>``: the label spine of an interval (``label_date`` in it), and its label rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitlake.validation.expectations import (
    REFERENCE_DAYS,
    allowed,
    daily_profile,
    expectations_module,
    freshness,
    mean_drift,
    not_null,
    row_count_band,
    schema_expectations,
    unique,
    within_interval,
)
from pitlake.validation.records import CRITICAL, SuitePlan, Target, suite_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spine_of(table: str) -> tuple[tuple[str, ...], str, str]:
    """(keys, time column, label column) of a label table, from the use case that reads it."""
    from pitlake.training_set.build import USE_CASES

    for use_case in USE_CASES.values():
        if use_case.label_table == table:
            return use_case.keys, use_case.spine_time, use_case.label_column
    return ("customer_id",), "label_time", "label"


def plan(spark: SparkSession, target: Target, table_df: DataFrame) -> SuitePlan:
    from pyspark.sql import functions as F

    gxe = expectations_module()
    notes: list[str] = []
    keys, time_column, label = spine_of(target.table)
    batch = table_df.where(F.col("label_date").between(F.lit(target.start), F.lit(target.end)))
    reference = daily_profile(table_df, "label_date", target, means=[label], days=REFERENCE_DAYS)
    columns = {k: "string" for k in keys} | {time_column: "timestamp", "label_date": "date", label: "int"}
    expectations = [
        *freshness(time_column, "label_date", target),
        *row_count_band(reference, target, notes),
        *schema_expectations(columns),
        *not_null((*keys, time_column, "label_date", label)),
        unique((*keys, time_column)),
        allowed(label, (0, 1)),
        within_interval(time_column, target),
        *mean_drift(label, reference, notes, critical=True, upper_limit=1.0, check="label_rate"),
    ]
    if not any((e.meta or {}).get("check") == "label_rate_critical" for e in expectations):
        # No reference yet: a rate of exactly 0 or 1 still means the labelling is broken.
        expectations.append(
            gxe.ExpectColumnMeanToBeBetween(
                column=label,
                min_value=0,
                max_value=1,
                strict_min=True,
                strict_max=True,
                severity=CRITICAL,
                meta={"check": "label_rate_critical"},
            )
        )
    return SuitePlan(suite_name(target.table), batch, expectations, notes)
