"""Validation gates: Great Expectations (GX Core 1.x) suites run on Spark slices of our Delta tables.

``validate_table(spark, settings, "bronze.events", version=7, interval_start=d, interval_end=d)``:

1. reads the table at the pinned ``version`` and takes the slice being validated (the interval's
   ``event_date`` / ``ingest_date`` / ``feature_date`` / ``label_date``, or one ``training_set_id``);
2. the table's suite module (``pitlake.validation.<suite>``) computes what needs history in one
   Spark aggregation over the same version (the previous days' row counts, a reference window's
   daily means) and turns everything into GX expectations with computed bounds, each carrying GX's
   own ``severity`` (``critical`` stops the run, ``warning`` is recorded) and ``meta["check"]``;
3. a slice of up to :data:`LOCAL_MAX_ROWS` rows (every day of the demo, a training set) is fetched
   once (one Spark job, Arrow) and validated by GX's pandas engine in this process; the schema and
   type checks still run on the Spark DataFrame's schema (they read no rows), so the Spark types
   are what is checked. A bigger slice is validated by GX's Spark engine, cached once up to
   :data:`CACHE_MAX_ROWS` rows (beyond, re-reading column by column is cheaper). Either way one
   result per run, stored with its Data Docs page under ``$PITLAKE_HOME/gx`` by an ephemeral GX
   context made once per process;
4. results are persisted: a JSON file per run (``gx/results/<suite>/<result_id>.json``), one row per
   expectation appended to the Delta table ``ops.validation_results`` (one commit), and the Data
   Docs page (``gx/data_docs/``);
5. any failed ``critical`` expectation raises :class:`ValidationFailed` (after persisting) with a
   one-line message naming the suite, expectation, column and how many rows were unexpected.

The helpers below the runner are the building blocks the suite modules share.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pitlake import delta_io
from pitlake.dates import day_range, day_start, utc_now
from pitlake.errors import ConfigError, InputError, PitlakeError
from pitlake.settings import Settings
from pitlake.validation import gx_run
from pitlake.validation.gx_run import DOCS_INDEX_EVERY_S, DOCS_SITE, SCHEMA_EXPECTATIONS, build_docs_index

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.expectations import Expectation
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

RESULTS_TABLE = "ops.validation_results"
CRITICAL = "critical"
WARNING = "warning"

# Row-count band against the median of the previous days (of those with rows).
HISTORY_DAYS = 7
MIN_HISTORY_DAYS = 3
ROW_COUNT_CRITICAL_MIN = 0.3
ROW_COUNT_WARNING_BAND = (0.5, 2.0)
# Distribution drift against the daily means of a reference window.
REFERENCE_DAYS = 28
MIN_REFERENCE_DAYS = 3
DRIFT_WARNING_SPREAD = 0.5  # the band widens by half the reference's day-to-day spread...
DRIFT_WARNING_RELATIVE = 0.05  # ...or by 5% of the reference mean, whichever is larger
DRIFT_CRITICAL_FACTOR = 2.0  # critical: below half the lowest daily mean or above twice the highest
# Slices up to this many rows are cached once and validated from memory. Larger ones are not: GX's
# ~10 Spark jobs each read only the columns they need from Delta, which measured cheaper than
# caching every column of a 10M-row slice (docs/benchmarks.md, "Validation gate").
CACHE_MAX_ROWS = 2_000_000
# Slices up to this many rows are validated in this process by GX's pandas engine: one Spark job
# fetches them, where GX's Spark engine runs one job per metric bundle (26 for bronze_events, at
# ~0.2 s each on a warm engine: docs/benchmarks.md, "Validation gate").
LOCAL_MAX_ROWS = 250_000
# Sample unexpected values per map expectation, on cached slices only: GX fetches them with one
# extra Spark job per expectation (for compound uniqueness, a second shuffle).
PARTIAL_UNEXPECTED = 5

SPARK_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("StringType",),
    "timestamp": ("TimestampType",),
    "date": ("DateType",),
    "double": ("DoubleType",),
    "float": ("FloatType", "DoubleType"),
    "boolean": ("BooleanType",),
    # Integer columns may be written narrower than declared (ingest writes line_number as int).
    "bigint": ("LongType", "IntegerType"),
    "int": ("IntegerType", "LongType"),
}

RESULTS_SCHEMA = (
    "result_id string, suite string, table_name string, delta_version bigint, interval_start date, "
    "interval_end date, training_set_id string, run_id string, validated_at timestamp, success boolean, "
    "expectation string, `column` string, severity string, expectation_success boolean, unexpected_count bigint, "
    "element_count bigint, `check` string, observed_value string, report_path string"
)


class ValidationFailed(PitlakeError):
    """A critical expectation failed; ``str(err)`` names suite, expectation, column and count."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- report


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
        return f"{head} observed {_short(self.observed_value)}, expected {self.expected}"


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
                f"{r.problem or ('' if r.observed_value is None else _short(r.observed_value, 40))}"
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
        out["results"] = [asdict(r) | {"observed_value": _jsonable(r.observed_value)} for r in self.results]
        out["notes"] = list(self.notes)
        return out


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


# --------------------------------------------------------------------------- the gate


def validate_table(
    spark: SparkSession,
    settings: Settings,
    table: str,
    *,
    version: int,
    interval_start: date | None = None,
    interval_end: date | None = None,
    training_set_id: str | None = None,
    run_id: str = "manual",
    cache: bool | None = None,
    local: bool | None = None,
) -> ValidationReport:
    """Validate ``table`` at ``version`` for one interval (or one training set); raise if a critical check fails.

    ``local``: fetch the slice and validate it with GX's pandas engine (default: when it has at
    most :data:`LOCAL_MAX_ROWS` rows and only scalar columns). ``cache``: on the Spark engine,
    cache the slice once (default: when it has at most :data:`CACHE_MAX_ROWS` rows).
    """
    module = suite_module(table)
    path = settings.table_path(table)
    if interval_start is not None and interval_end is not None and interval_end < interval_start:
        raise ConfigError(f"interval_end {interval_end} is before interval_start {interval_start}: swap them")
    if not delta_io.table_exists(spark, path):
        raise InputError(f"{table} does not exist at {path}: nothing to validate")
    target = Target(table, path, version, interval_start, interval_end, training_set_id)
    table_df = delta_io.read(spark, path, version)
    plan: SuitePlan = module.plan(spark, target, table_df)

    result_id = str(uuid.uuid4())
    validated_at = utc_now()
    frame = None
    if local is not False and gx_run.scalar_columns(plan.batch):
        # One Spark job: a slice within the bound comes back whole; a bigger one goes to the Spark engine.
        frame = gx_run.fetch(plan.batch, None if local else LOCAL_MAX_ROWS)
    cached = False
    if frame is not None:
        rows = len(frame)
    else:
        rows = plan.batch.count()  # partition-pruned; decides whether caching the slice pays
        cached = rows <= CACHE_MAX_ROWS if cache is None else cache
        if not cached:
            plan.notes.append(f"slice of {rows:,} rows validated without caching (> {CACHE_MAX_ROWS:,})")
    batch = plan.batch.cache() if cached else plan.batch
    try:
        gx_result, docs_path, docs_index = gx_run.run_gx(
            settings,
            plan,
            batch,
            frame,
            run_id,
            validated_at,
            samples=PARTIAL_UNEXPECTED if cached or frame is not None else 0,
        )
    finally:
        if cached:
            batch.unpersist()

    json_path = settings.gx_dir / "results" / plan.name / f"{result_id}.json"
    outcomes = _outcomes(plan, gx_result)
    report = ValidationReport(
        result_id=result_id,
        suite=plan.name,
        table=table,
        delta_version=version,
        interval=(target.start.isoformat(), target.end.isoformat()) if interval_start and interval_end else None,
        training_set_id=training_set_id,
        run_id=run_id,
        validated_at=validated_at.isoformat(),
        rows=rows,
        success=not any(not o.success and o.severity == CRITICAL for o in outcomes),
        results=tuple(outcomes),
        notes=tuple(plan.notes),
        json_path=str(json_path),
        docs_path=docs_path,
        docs_index=docs_index,
    )
    _write_json(json_path, report, gx_result)
    _append_rows(spark, settings, report, target)
    log.info("%s", report.summary())
    if not report.success:
        raise ValidationFailed(report.failure_message(), report)
    return report


def suite_module(table: str) -> ModuleType:
    """The suite module for a logical table name (raises ConfigError naming the known layers)."""
    import importlib

    layer, _, name = table.partition(".")
    modules = {
        "bronze.events": "bronze_events",
        "bronze.customers": "bronze_customers",
        "features": "features",
        "labels": "labels",
        "training_sets": "training_sets",
    }
    module_name = modules.get(table) or (modules.get(layer) if name else None)
    if module_name is None:
        raise ConfigError(
            f"no validation suite for {table!r}: suites exist for bronze.events, bronze.customers, "
            "features.<view>, labels.<use_case> and training_sets.<use_case>"
        )
    return importlib.import_module(f"pitlake.validation.{module_name}")


def suite_name(table: str) -> str:
    """``features.customer_activity`` -> ``features_customer_activity``."""
    return table.replace(".", "_")


def _outcomes(plan: SuitePlan, result: ExpectationSuiteValidationResult) -> list[ExpectationOutcome]:
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
                observed_value=_jsonable(observed),
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
            return "could not be evaluated: " + _short(message[0] if message else "unknown error", 160)
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
            return f"{lo_op} {_short(lo)} and {hi_op} {_short(hi)}"
        return f"{lo_op} {_short(lo)}" if lo is not None else f"{hi_op} {_short(hi)}"
    for key in ("value_set", "column_set", "type_list"):
        if kwargs.get(key) is not None:
            return f"{key} {_short(kwargs[key], 80)}"
    if kwargs.get("type_"):
        return str(kwargs["type_"])
    return "see Data Docs"


def _jsonable(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # the pandas engine's scalars: report them as the Spark engine does
    if isinstance(value, datetime | float) and value != value:
        return None  # NaT / NaN: the pandas engine's "no value" (the Spark engine's None)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in list(value)[:50]]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _short(value: Any, width: int = 30) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _write_json(path: Path, report: ValidationReport, gx_result: ExpectationSuiteValidationResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"schema_version": 1, **report.to_dict(), "gx_result": gx_result.to_json_dict()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def _append_rows(spark: SparkSession, settings: Settings, report: ValidationReport, target: Target) -> None:
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


# --------------------------------------------------------------------------- building blocks for the suites


def expectations_module() -> Any:
    """``great_expectations.expectations`` (imported on first use: it is slow to import)."""
    import great_expectations.expectations as gxe

    return gxe


def schema_expectations(columns: dict[str, str], *, severity: str = CRITICAL) -> list[Expectation]:
    """Every declared column present, each of its declared Spark type."""
    gxe = expectations_module()
    out: list[Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=sorted(columns), exact_match=False, severity=severity, meta={"check": "schema"}
        )
    ]
    for name, sql_type in columns.items():
        types = SPARK_TYPES.get(sql_type)
        if types is None:
            continue
        if len(types) == 1:
            out.append(
                gxe.ExpectColumnValuesToBeOfType(column=name, type_=types[0], severity=severity, meta={"check": "type"})
            )
        else:
            out.append(
                gxe.ExpectColumnValuesToBeInTypeList(
                    column=name, type_list=list(types), severity=severity, meta={"check": "type"}
                )
            )
    return out


def not_null(columns: Iterable[str], *, severity: str = CRITICAL) -> list[Expectation]:
    gxe = expectations_module()
    return [gxe.ExpectColumnValuesToNotBeNull(column=c, severity=severity, meta={"check": "not_null"}) for c in columns]


def unique(columns: Sequence[str], *, severity: str = CRITICAL) -> Expectation:
    """Uniqueness of one column, or of a combination (GX's compound check needs at least two columns)."""
    gxe = expectations_module()
    meta = {"check": "unique"}
    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=columns[0], severity=severity, meta=meta)
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns), severity=severity, meta=meta)


def at_least(column: str, minimum: float, *, severity: str = CRITICAL) -> Expectation:
    gxe = expectations_module()
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=minimum, severity=severity, meta={"check": "range"}
    )


def allowed(column: str, values: Iterable[object], *, severity: str = CRITICAL) -> Expectation:
    gxe = expectations_module()
    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=list(values), severity=severity, meta={"check": "allowed_set"}
    )


def freshness(time_column: str, date_column: str, target: Target, *, exact: bool = False) -> list[Expectation]:
    """The interval's data is there: every day present, and the latest timestamp inside the last day.

    With ``exact`` (feature tables: ``feature_time`` is the end of the day) the latest must equal
    the interval's end instant instead.
    """
    gxe = expectations_module()
    last_start, end = day_start(target.end), day_start(target.end + timedelta(days=1))
    window = (
        {"min_value": end, "max_value": end}
        if exact
        else {"min_value": last_start, "max_value": end, "strict_max": True}
    )
    return [
        gxe.ExpectColumnMaxToBeBetween(column=time_column, severity=CRITICAL, meta={"check": "freshness"}, **window),
        gxe.ExpectColumnDistinctValuesToContainSet(
            column=date_column, value_set=target.days(), severity=CRITICAL, meta={"check": "completeness"}
        ),
    ]


def within_interval(column: str, target: Target, *, offset: timedelta = timedelta(0)) -> Expectation:
    """Every ``column`` value in ``[start 00:00, end+1 00:00)`` (shifted by ``offset``)."""
    gxe = expectations_module()
    if offset:
        return gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=day_start(target.start) + offset,
            max_value=day_start(target.end) + offset,
            severity=CRITICAL,
            meta={"check": "range"},
        )
    return gxe.ExpectColumnValuesToBeBetween(
        column=column,
        min_value=day_start(target.start),
        max_value=day_start(target.end + timedelta(days=1)),
        strict_max=True,
        severity=CRITICAL,
        meta={"check": "range"},
    )


def daily_profile(
    table_df: DataFrame, date_column: str, target: Target, means: Sequence[str] = (), days: int = HISTORY_DAYS
) -> dict[date, dict[str, float | None]]:
    """Per day of the ``days`` before the interval: row count (``rows``) and the mean of each of ``means``.

    One Spark aggregation over the same table version. Days without rows are absent.
    """
    from pyspark.sql import functions as F

    first = target.start - timedelta(days=days)
    aggs: list[Column] = [F.count(F.lit(1)).alias("rows")]
    aggs += [F.avg(F.col(c).cast("double")).alias(f"mean__{c}") for c in means]
    rows = (
        table_df.where(F.col(date_column).between(F.lit(first), F.lit(target.start - timedelta(days=1))))
        .groupBy(date_column)
        .agg(*aggs)
        .collect()
    )
    return {r[date_column]: {"rows": float(r["rows"]), **{c: r[f"mean__{c}"] for c in means}} for r in rows}


def row_count_band(profile: dict[date, dict[str, float | None]], target: Target, notes: list[str]) -> list[Expectation]:
    """Critical below 30% of the trailing median (per interval day), warning outside [50%, 200%]."""
    gxe = expectations_module()
    recent = {d: v for d, v in profile.items() if d >= target.start - timedelta(days=HISTORY_DAYS)}
    counts = [int(v["rows"] or 0) for _, v in sorted(recent.items())]
    if len(counts) < MIN_HISTORY_DAYS:
        notes.append(
            f"row-count band skipped: {len(counts)} day(s) with rows in the {HISTORY_DAYS} days before "
            f"{target.start} (needs {MIN_HISTORY_DAYS})"
        )
        return []
    median = statistics.median(counts)
    expected = median * len(target.days())
    basis = {"check": "row_count", "history_days": len(counts), "history_counts": counts, "median": median}
    low, high = ROW_COUNT_WARNING_BAND
    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=math.ceil(ROW_COUNT_CRITICAL_MIN * expected), severity=CRITICAL, meta=basis
        ),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=math.ceil(low * expected), max_value=math.floor(high * expected), severity=WARNING, meta=basis
        ),
    ]


def mean_drift(
    column: str,
    profile: dict[date, dict[str, float | None]],
    notes: list[str],
    *,
    critical: bool = False,
    upper_limit: float | None = None,
    check: str = "drift",
) -> list[Expectation]:
    """The slice's mean of ``column`` against the reference window's daily means.

    Warning: outside ``[lo - tol, hi + tol]`` (lo/hi: the lowest/highest daily mean; tol: half their
    spread or 5% of their mean, whichever is larger). With ``critical``, also a critical check:
    below ``lo / 2`` or above ``hi * 2`` (capped at ``upper_limit``), a clearly shifted distribution.
    """
    gxe = expectations_module()
    means = [float(v[column]) for v in profile.values() if v.get(column) is not None]  # type: ignore[arg-type]
    if len(means) < MIN_REFERENCE_DAYS:
        notes.append(
            f"drift check of {column} skipped: {len(means)} reference day(s) with values (needs {MIN_REFERENCE_DAYS})"
        )
        return []
    lo, hi = min(means), max(means)
    center = statistics.fmean(means)
    tol = max(DRIFT_WARNING_SPREAD * (hi - lo), DRIFT_WARNING_RELATIVE * abs(center))
    basis = {"check": check, "reference_days": len(means), "reference_mean": center, "daily_min": lo, "daily_max": hi}
    out = [
        gxe.ExpectColumnMeanToBeBetween(
            column=column, min_value=lo - tol, max_value=hi + tol, severity=WARNING, meta=basis
        )
    ]
    if critical:
        if lo == hi == 0:
            notes.append(f"critical drift check of {column} skipped: the reference mean is 0 every day")
            return out
        f = DRIFT_CRITICAL_FACTOR
        low, high = min(lo / f, lo * f), max(hi * f, hi / f)
        if upper_limit is not None:
            high = min(high, hi + (upper_limit - hi) / f)
        out.append(
            gxe.ExpectColumnMeanToBeBetween(
                column=column,
                min_value=low,
                max_value=high,
                severity=CRITICAL,
                meta=basis | {"check": f"{check}_critical"},
            )
        )
    return out


__all__ = [
    "CRITICAL",
    "DOCS_INDEX_EVERY_S",
    "DOCS_SITE",
    "RESULTS_TABLE",
    "SCHEMA_EXPECTATIONS",
    "WARNING",
    "ExpectationOutcome",
    "SuitePlan",
    "Target",
    "ValidationFailed",
    "ValidationReport",
    "build_docs_index",
    "suite_module",
    "validate_table",
]


def gate(
    spark: SparkSession,
    settings: Settings,
    table: str,
    *,
    version: int,
    run_id: str,
    interval_start: date | None = None,
    interval_end: date | None = None,
    training_set_id: str | None = None,
) -> dict[str, Any]:
    """The stage gate the jobs call after a write: validate, print the summary, return a short record.

    A failed critical expectation raises :class:`ValidationFailed` (after the summary is printed by
    :func:`pitlake.job.run`), so the job exits non-zero and nothing downstream runs.
    """
    import time

    started = time.monotonic()
    report = validate_table(
        spark,
        settings,
        table,
        version=version,
        interval_start=interval_start,
        interval_end=interval_end,
        training_set_id=training_set_id,
        run_id=run_id,
    )
    print(report.summary(), flush=True)
    return {
        "result_id": report.result_id,
        "suite": report.suite,
        "table": table,
        "delta_version": version,
        "success": report.success,
        "json_path": report.json_path,
        "data_docs": report.docs_path or report.docs_index,
        "seconds": round(time.monotonic() - started, 3),
    }
