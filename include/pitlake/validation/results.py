"""A run's result, from GX's to ours, and where ours is written.

:func:`outcomes` flattens GX's result into one :class:`~pitlake.validation.records.ExpectationOutcome`
per expectation, in the suite's order; :func:`write_json` stores the whole report with GX's result as
``gx/results/<suite>/<result_id>.json``; :func:`append_rows` appends one row per expectation to the
Delta table :data:`RESULTS_TABLE` in one commit.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.settings import Settings
from pitlake.validation.records import (
    CRITICAL,
    ExpectationOutcome,
    SuitePlan,
    Target,
    ValidationReport,
    jsonable,
    shorten,
)

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

RESULTS_TABLE = "ops.validation_results"

RESULTS_SCHEMA = (
    "result_id string, suite string, table_name string, delta_version bigint, interval_start date, "
    "interval_end date, training_set_id string, run_id string, validated_at timestamp, success boolean, "
    "expectation string, `column` string, severity string, expectation_success boolean, unexpected_count bigint, "
    "element_count bigint, `check` string, observed_value string, report_path string"
)


def outcomes(plan: SuitePlan, result: ExpectationSuiteValidationResult) -> list[ExpectationOutcome]:
    """Flatten GX's results, in the suite's order (GX returns them grouped by domain)."""
    by_id = {r.expectation_config.id: r for r in result.results if r.expectation_config is not None}
    order = [e.id for e in plan.expectations]
    ordered = [by_id[i] for i in order if i in by_id] + [
        r for r in result.results if r.expectation_config and r.expectation_config.id not in order
    ]
    out = []
    for r in ordered:
        config = r.expectation_config
        assert config is not None
        kwargs = config.kwargs
        res = r.result or {}
        observed = res.get("observed_value")
        problem = _problem(r.exception_info or {}, res)
        unexpected = res.get("unexpected_count")
        element = res.get("element_count")
        if element is not None and unexpected is None:
            unexpected = 0  # GX leaves it None on an empty batch
        out.append(
            ExpectationOutcome(
                expectation=config.type,
                column=_column_of(kwargs),
                severity=str(getattr(config.severity, "value", config.severity) or CRITICAL),
                check=str((config.meta or {}).get("check", "")),
                success=bool(r.success),
                unexpected_count=None if unexpected is None else int(unexpected),
                element_count=None if element is None else int(element),
                observed_value=jsonable(observed),
                expected=_expected(kwargs),
                problem=problem,
            )
        )
    return out


def _problem(exception_info: dict[str, Any], result: dict[str, Any]) -> str | None:
    """A metric error (GX records it per metric, or flat) or the columns a schema check misses."""
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message") or "").strip().splitlines()
            return "could not be evaluated: " + shorten(message[0] if message else "unknown error", 160)
    missing = ((result.get("details") or {}).get("mismatched") or {}).get("missing")
    if missing:
        return f"found columns missing: {', '.join(sorted(missing))}"
    return None


def _column_of(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return None


def _expected(kwargs: dict[str, Any]) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is not None or hi is not None:
        lo_op = ">" if kwargs.get("strict_min") else ">="
        hi_op = "<" if kwargs.get("strict_max") else "<="
        if lo is not None and hi is not None:
            return f"{lo_op} {shorten(lo)} and {hi_op} {shorten(hi)}"
        return f"{lo_op} {shorten(lo)}" if lo is not None else f"{hi_op} {shorten(hi)}"
    for key in ("value_set", "column_set", "type_list"):
        if kwargs.get(key) is not None:
            return f"{key} {shorten(kwargs[key], 80)}"
    if kwargs.get("type_"):
        return str(kwargs["type_"])
    return "see Data Docs"


def write_json(path: Path, report: ValidationReport, gx_result: ExpectationSuiteValidationResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"schema_version": 1, **report.to_dict(), "gx_result": gx_result.to_json_dict()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def append_rows(spark: SparkSession, settings: Settings, report: ValidationReport, target: Target) -> None:
    """One row per expectation, appended to ``ops.validation_results`` in one commit."""
    validated_at = datetime.fromisoformat(report.validated_at).replace(tzinfo=None)
    rows = [
        (
            report.result_id,
            report.suite,
            report.table,
            report.delta_version,
            target.interval_start,
            target.interval_end,
            report.training_set_id,
            report.run_id,
            validated_at,
            report.success,
            r.expectation,
            r.column,
            r.severity,
            r.success,
            r.unexpected_count,
            r.element_count,
            r.check,
            json.dumps(r.observed_value, default=str),
            report.json_path,
        )
        for r in report.results
    ]
    df = spark.createDataFrame(rows, RESULTS_SCHEMA)
    # Appends never conflict with each other, except two writers creating the table at once. Matched
    # by name: a classic session raises delta.exceptions.*, a Connect session Spark's own classes.
    conflicts = ("ProtocolChangedException", "MetadataChangedException", "ConcurrentAppendException")
    for attempt in range(3):
        try:
            df.write.format("delta").mode("append").save(settings.table_path(RESULTS_TABLE))
            return
        except Exception as err:
            if attempt == 2 or not any(name in f"{type(err).__name__} {err}" for name in conflicts):
                raise
            log.info("%s: concurrent first write, retrying the append", RESULTS_TABLE)
