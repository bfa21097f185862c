"""The building blocks the suite modules share: GX expectations with computed bounds.

Each builder returns expectations carrying GX's ``severity`` (:data:`~pitlake.validation.records.CRITICAL`
stops the run, :data:`~pitlake.validation.records.WARNING` is recorded) and ``meta["check"]``, the
kind of check (``schema``, ``not_null``, ``freshness``, ``row_count``, ``drift`` ...) that
``ops.validation_results`` records. The history-based checks compare the slice with the days before
it in the same table version: a row-count band against the median of the previous days, a mean-drift
band against a reference window's daily means; with too little history they are skipped with a note.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pitlake.core.dates import day_start
from pitlake.validation.records import CRITICAL, WARNING, Target

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation
    from pyspark.sql import Column, DataFrame

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

# The Spark types a column declared with a SQL type may be stored as.
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
