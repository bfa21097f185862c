"""Suite ``training_sets_<use_case>``: one training set (``training_set_id``), above all its leakage invariant.

Every ``<view>__feature_time`` column (the matched feature row's time, null when none matched) must be
``<= label_time``: a feature row from after the label's moment is leakage and stops the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitlake.core.errors import ConfigError
from pitlake.validation.expectations import (
    allowed,
    expectations_module,
    not_null,
    schema_expectations,
    unique,
)
from pitlake.validation.records import CRITICAL, WARNING, SuitePlan, Target, suite_name
from pitlake.validation.suites.features import feature_types, value_expectations

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Below this share of spine rows with a matched feature row, a view is probably joined wrong (or stale).
MIN_MATCH_RATE = 0.5


def plan(spark: SparkSession, target: Target, table_df: DataFrame) -> SuitePlan:
    from pyspark.sql import functions as F

    from pitlake.training_set.build import get_use_case

    if not target.training_set_id:
        raise ConfigError(f"validating {target.table} needs training_set_id (from the build_training_set result)")
    gxe = expectations_module()
    use_case = get_use_case(target.table.partition(".")[2])
    views = use_case.feature_views()
    time_column, label = use_case.spine_time, use_case.label_column
    batch = table_df.where(F.col("training_set_id") == F.lit(target.training_set_id))
    feature_time_columns = sorted(
        {c for c in table_df.columns if c.endswith("__feature_time")} | {f"{v.name}__feature_time" for v in views}
    )
    columns: dict[str, str] = {k: "string" for k in use_case.keys}
    columns |= {time_column: "timestamp", "label_date": "date", label: "int", "training_set_id": "string"}
    columns |= {c: "timestamp" for c in feature_time_columns}
    for view in views:
        columns |= feature_types(view)
    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, severity=CRITICAL, meta={"check": "completeness"}),
        *schema_expectations(columns),
        *not_null((*use_case.keys, time_column, label)),
        unique((*use_case.keys, time_column)),
        allowed(label, (0, 1)),
        # A model cannot learn from one class.
        gxe.ExpectColumnMeanToBeBetween(
            column=label,
            min_value=0,
            max_value=1,
            strict_min=True,
            strict_max=True,
            severity=CRITICAL,
            meta={"check": "label_rate"},
        ),
    ]
    for column in feature_time_columns:
        expectations.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=time_column,
                column_B=column,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                severity=CRITICAL,
                meta={"check": "leakage"},
            )
        )
        expectations.append(
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
                column=column, min_value=MIN_MATCH_RATE, severity=WARNING, meta={"check": "coverage"}
            )
        )
    for view in views:
        expectations += value_expectations(view)
    return SuitePlan(suite_name(target.table), batch, expectations, [])
