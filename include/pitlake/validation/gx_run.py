"""Running a suite with Great Expectations: the in-process (pandas) and Spark routes, and the one
merged result per run, stored with the other runs' results and given its Data Docs page.

:func:`pitlake.validation.runner.validate_table` decides the route and calls :func:`run_gx`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pitlake.core.settings import Settings
from pitlake.validation import docs
from pitlake.validation.context import gx_context

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from pyspark.sql import DataFrame

    from pitlake.validation.records import SuitePlan

# Checks that read the schema, not rows: on a local slice they run on the Spark DataFrame.
SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_column_to_exist",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
    }
)


def scalar_columns(df: DataFrame) -> bool:
    """Every column a scalar (the pandas engine compares values; arrays and maps it cannot hash)."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    return not any(isinstance(f.dataType, ArrayType | MapType | StructType) for f in df.schema.fields)


def fetch(df: DataFrame, limit: int | None) -> Any:
    """The slice as a pandas DataFrame, or None when it has more than ``limit`` rows.

    One Spark job, through Arrow (timestamps come back naive UTC, as Spark holds them).
    """
    frame = (df if limit is None else df.limit(limit + 1)).toPandas()
    return None if limit is not None and len(frame) > limit else frame


def _batch_definition(context: Any, engine: str, asset: str) -> Any:
    """The whole-dataframe batch definition of ``asset`` on the ``pitlake_<engine>`` data source (made once)."""
    name = f"pitlake_{engine}"
    try:
        source = context.data_sources.get(name)
    except (KeyError, ValueError, LookupError):
        # persist=False: GX would otherwise cache a Spark slice itself; we decide (see CACHE_MAX_ROWS).
        source = (
            context.data_sources.add_spark(name=name, persist=False)
            if engine == "spark"
            else (context.data_sources.add_pandas(name=name))
        )
    try:
        data_asset = source.get_asset(asset)
    except LookupError:
        data_asset = source.add_dataframe_asset(name=asset)
    try:
        return data_asset.get_batch_definition("slice")
    except (KeyError, ValueError, LookupError):
        return data_asset.add_batch_definition_whole_dataframe("slice")


def run_gx(
    settings: Settings,
    plan: SuitePlan,
    batch: DataFrame,
    frame: Any,
    run_id: str,
    validated_at: datetime,
    *,
    samples: int,
) -> tuple[ExpectationSuiteValidationResult, str | None, str | None]:
    """Run the suite (on ``frame`` with GX's pandas engine when given, else on ``batch``) as one GX result.

    The result is stored with the other runs' results and gets its Data Docs page; the index is
    rebuilt when :func:`pitlake.validation.docs.publish` says it is due.
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.validator.v1_validator import Validator
    from great_expectations.validator.validator import calc_validation_statistics

    context = gx_context(settings)
    for expectation in plan.expectations:
        if expectation.id is None:
            expectation.id = str(uuid.uuid4())  # ties each result to its place in the suite
    if frame is None:
        parts = [("spark", list(plan.expectations), batch)]
    else:
        parts = [
            ("spark", [e for e in plan.expectations if e.expectation_type in SCHEMA_EXPECTATIONS], batch),
            ("pandas", [e for e in plan.expectations if e.expectation_type not in SCHEMA_EXPECTATIONS], frame),
        ]
    result_format = {"result_format": "BASIC", "partial_unexpected_count": samples}
    results: list[Any] = []
    meta: dict[str, Any] = {}
    batch_id = None
    for engine, expectations, data in parts:
        if not expectations:
            continue
        validator = Validator(
            batch_definition=_batch_definition(context, engine, plan.name),
            batch_parameters={"dataframe": data},
            result_format=result_format,
        )
        # Configurations, not the Expectation objects: these keep their ids and belong to no suite.
        suite = gx.ExpectationSuite(name=plan.name, expectations=[e.configuration for e in expectations])
        part = validator.validate_expectation_suite(suite)
        results += part.results
        meta = meta or dict(part.meta)
        batch_id = batch_id or part.batch_id
    statistics = calc_validation_statistics(results)
    run = RunIdentifier(run_name=re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id), run_time=validated_at)
    meta |= {"run_id": run, "validation_time": validated_at, "batch_parameters": {"dataframe": "<slice>"}}
    if frame is not None:
        meta["pitlake_engine"] = "pandas (schema and type checks on the Spark schema)"
    result = ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=plan.name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta=meta,
        batch_id=batch_id,
    )
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=plan.name),
        run_id=run,
        batch_identifier=batch_id or plan.name,
    )
    context.validation_results_store.set(identifier, result)
    page, index = docs.publish(settings, identifier, failed=not result.success)
    return result, page, index
