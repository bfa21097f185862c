"""The records a gate passes around: what a suite gets (:class:`Target`), what it returns
(:class:`SuitePlan`), and what a run reports (:class:`ExpectationOutcome`, :class:`ValidationReport`,
:class:`ValidationFailed`).

Every expectation carries GX's own ``severity``: :data:`CRITICAL` stops the run, :data:`WARNING` is
recorded and passes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pitlake.core.dates import day_range
from pitlake.core.errors import ConfigError, PitlakeError

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation
    from pyspark.sql import DataFrame

CRITICAL = "critical"
WARNING = "warning"


# --------------------------------------------------------------------------- what the suites get


@dataclass(frozen=True)
class Target:
    """The slice being validated: a table at a version, and an interval or a training set id."""

    table: str
    path: str
    version: int
    interval_start: date | None = None
    interval_end: date | None = None
    training_set_id: str | None = None

    @property
    def start(self) -> date:
        if self.interval_start is None:
            raise ConfigError(f"validating {self.table} needs an interval: pass interval_start and interval_end")
        return self.interval_start

    @property
    def end(self) -> date:
        if self.interval_end is None:
            raise ConfigError(f"validating {self.table} needs an interval: pass interval_start and interval_end")
        return self.interval_end

    def days(self) -> list[date]:
        return list(day_range(self.start, self.end))


@dataclass
class SuitePlan:
    """What a suite module returns: the slice to validate (not yet cached) and its expectations, in order."""

    name: str
    batch: DataFrame
    expectations: list[Expectation]
    notes: list[str] = field(default_factory=list)


def suite_name(table: str) -> str:
    """``features.customer_activity`` -> ``features_customer_activity``."""
    return table.replace(".", "_")


# --------------------------------------------------------------------------- what a run reports


class ValidationFailed(PitlakeError):
    """A critical expectation failed; ``str(err)`` names suite, expectation, column and count."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, flattened from GX's."""

    expectation: str
    column: str | None
    severity: str
    check: str
    success: bool
    unexpected_count: int | None
    element_count: int | None
    observed_value: Any
    expected: str
    problem: str | None = None  # what GX's details say went wrong (missing columns, a metric error)

    def describe(self) -> str:
        """``expect_x(col) found 3 of 4,120 rows unexpected`` or ``expect_y(table) observed 2, expected >= 6``."""
        head = f"{self.expectation}({self.column or 'table'})"
        if self.problem:
            return f"{head} {self.problem}"
        if self.unexpected_count is not None and self.element_count is not None:
            return f"{head} found {self.unexpected_count:,} of {self.element_count:,} rows unexpected"
        return f"{head} observed {shorten(self.observed_value)}, expected {self.expected}"


@dataclass(frozen=True)
class ValidationReport:
    result_id: str
    suite: str
    table: str
    delta_version: int
    interval: tuple[str, str] | None
    training_set_id: str | None
    run_id: str
    validated_at: str
    rows: int
    success: bool
    results: tuple[ExpectationOutcome, ...]
    notes: tuple[str, ...]
    json_path: str
    docs_path: str | None
    docs_index: str | None

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity == CRITICAL]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity != CRITICAL]

    def failure_message(self) -> str:
        """One line for the person on call: the first critical failure, how many more, where the report is."""
        failed = self.critical_failures
        if not failed:
            return ""
        more = ""
        if len(failed) > 1:
            names = [f"{r.expectation}({r.column or 'table'})" for r in failed[1:4]]
            more = f"; {len(failed) - 1} more critical: {', '.join(names)}{', ...' if len(failed) > 4 else ''}"
        return (
            f"validation gate failed: suite {self.suite}, {failed[0].describe()} (critical){more}; "
            f"report: {self.json_path}"
        )

    def summary(self) -> str:
        """A one-screen text table: failures first, then (when few enough) the passes; ends with the Data Docs path."""
        where = (
            f"interval {self.interval[0]}..{self.interval[1]}"
            if self.interval
            else f"training_set_id {self.training_set_id}"
        )
        status = "PASSED" if self.success else "FAILED"
        if self.success and self.warnings:
            status = f"PASSED with {len(self.warnings)} warning(s)"
        lines = [
            f"{status}: suite {self.suite} on {self.table} v{self.delta_version}, {where} ({self.rows:,} rows), "
            f"run {self.run_id}",
            f"{'severity':<9} {'ok':<4} {'expectation':<52} {'column':<30} {'unexpected':>12}  observed",
        ]
        failed = [r for r in self.results if not r.success]
        passed = [r for r in self.results if r.success]
        shown = failed + (passed if len(self.results) <= 30 else [])
        for r in shown:
            unexpected = "" if r.unexpected_count is None else f"{r.unexpected_count:,}/{r.element_count or 0:,}"
            lines.append(
                f"{r.severity:<9} {'ok' if r.success else 'FAIL':<4} {r.expectation[:52]:<52} "
                f"{(r.column or '-')[:30]:<30} {unexpected:>12}  "
                f"{r.problem or ('' if r.observed_value is None else shorten(r.observed_value, 40))}"
            )
        if len(shown) < len(self.results):
            lines.append(f"... and {len(self.results) - len(shown)} more expectations passed")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"results: {self.json_path}")
        lines.append(f"data docs: {self.docs_path or self.docs_index or 'not built'}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval else None
        out["results"] = [asdict(r) | {"observed_value": jsonable(r.observed_value)} for r in self.results]
        out["notes"] = list(self.notes)
        return out


# --------------------------------------------------------------------------- value formatting


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it; the pandas and Spark engines' values come out the same."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # the pandas engine's scalars: report them as the Spark engine does
    if isinstance(value, datetime | float) and value != value:
        return None  # NaT / NaN: the pandas engine's "no value" (the Spark engine's None)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in list(value)[:50]]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def shorten(value: Any, width: int = 30) -> str:
    """``value`` as text of at most ``width`` characters (floats to 4 significant digits)."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
