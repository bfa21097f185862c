"""Suites ``features_<view>``: one per feature view, generated from its definition in :mod:`pitlake.features`.

Keys, feature names and types come from the view, so a new view or feature is validated without a
line here. Per feature: its type; counts, distinct counts and ``days_since_*`` are never negative,
nor are sums, averages and ratios of columns the bronze suites keep non-negative; snapshot
attributes take the values the bronze suite allows. Drift: every numeric feature's mean against
the daily means of the previous 28 feature days (warning), and one critical check per view on its
*sentinel* feature (the first ``sum`` at its longest window, else the first numeric feature): a
mean below half the lowest or above twice the highest daily mean stops the run.

Warm-up: a windowed feature's level rises until the table has as many days as the window (a 28-day
sum on the table's 4th day covers 4 days of events), so a reference day only counts once the
feature's window is full, counted from the table's first ``feature_date``. Until the validated day
itself has a full window and 3 such reference days precede it, that feature's drift checks are
skipped with a note; the other checks run from the first day.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from pitlake.core.errors import ConfigError
from pitlake.features import VIEWS, AggregateView, FeatureView, SnapshotView
from pitlake.sources.schemas import SOURCES
from pitlake.validation.expectations import (
    REFERENCE_DAYS,
    allowed,
    at_least,
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
from pitlake.validation.records import CRITICAL, WARNING, SuitePlan, Target, suite_name
from pitlake.validation.suites import bronze_customers, bronze_events

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation
    from pyspark.sql import DataFrame, SparkSession

NON_NEGATIVE_SOURCE: dict[str, tuple[str, ...]] = {
    "bronze.events": bronze_events.NON_NEGATIVE,
    "bronze.customers": (),
}
ALLOWED_SOURCE: dict[str, dict[str, tuple[str, ...]]] = {"bronze.customers": bronze_customers.ALLOWED_VALUES}
NUMERIC = frozenset({"bigint", "int", "double", "float"})


def view_for(table: str) -> FeatureView:
    for view in VIEWS:
        if view.table == table:
            return view
    known = ", ".join(sorted(v.table for v in VIEWS))
    raise ConfigError(f"no feature view writes {table!r}; feature tables: {known}")


def feature_types(view: FeatureView) -> dict[str, str]:
    """Spark SQL type of every feature the engine writes (transform outputs: unknown, left out)."""
    source = SOURCES[view.source]
    types: dict[str, str] = {}
    if isinstance(view, AggregateView):
        for agg in view.aggregations:
            kind = {"count": "bigint", "count_distinct": "bigint", "days_since_last": "int"}.get(agg.function, "double")
            types |= {name: kind for name in agg.feature_names()}
        types |= {r.name: "double" for r in view.ratios}
    elif isinstance(view, SnapshotView):
        types |= {a: source[a] for a in view.attributes}
        types |= {d.name: "int" for d in view.days_since}
        types |= {b.name: "int" for b in view.bands}
    return types


def non_negative(view: FeatureView) -> list[str]:
    """Features that can never be negative, from how they are computed."""
    safe = set(NON_NEGATIVE_SOURCE.get(view.source, ()))
    out: list[str] = []
    if isinstance(view, AggregateView):
        for agg in view.aggregations:
            if agg.function in ("count", "count_distinct", "days_since_last") or agg.column in safe:
                out += agg.feature_names()
        out += [r.name for r in view.ratios if r.numerator in out and r.denominator in out]
    elif isinstance(view, SnapshotView):
        out += [d.name for d in view.days_since] + [b.name for b in view.bands]
    return out


def sentinel(view: FeatureView) -> str | None:
    """The feature whose drift is checked critically: the first sum at its longest window, else the first numeric."""
    if isinstance(view, AggregateView):
        for agg in view.aggregations:
            if agg.function == "sum":
                return agg.feature_names()[-1]
    numeric = [n for n, t in feature_types(view).items() if t in NUMERIC]
    return numeric[0] if numeric else None


def window_days(view: FeatureView) -> dict[str, int]:
    """Each windowed feature's window in days; a ratio takes the longer window of its two operands."""
    if not isinstance(view, AggregateView):
        return {}
    out: dict[str, int] = {}
    for agg in view.aggregations:
        if agg.function != "days_since_last":
            out |= dict(zip(agg.feature_names(), agg.window_days(), strict=True))
    for ratio in view.ratios:
        days = max(out.get(ratio.numerator, 0), out.get(ratio.denominator, 0))
        if days:
            out[ratio.name] = days
    return out


def history_start(table_df: DataFrame, target: Target, lookback_days: int) -> date | None:
    """The table's first ``feature_date`` within ``lookback_days`` before the interval (partition-pruned)."""
    from pyspark.sql import functions as F

    first = target.start - timedelta(days=lookback_days)
    row = (
        table_df.where(F.col("feature_date").between(F.lit(first), F.lit(target.start - timedelta(days=1))))
        .agg(F.min("feature_date").alias("first"))
        .first()
    )
    return row["first"] if row else None


def full_window_reference(
    name: str,
    days: int | None,
    started: date | None,
    reference: dict[date, dict[str, float | None]],
    target: Target,
    notes: list[str],
) -> dict[date, dict[str, float | None]] | None:
    """The reference days on which ``name``'s window was full; None (with a note) if the target's is not."""
    if not days or started is None:
        return reference
    full_from = started + timedelta(days=days - 1)
    if target.start < full_from:
        notes.append(
            f"drift checks of {name} skipped: warm-up, the table starts on {started} and its {days}-day window "
            f"is full from {full_from}"
        )
        return None
    return {d: v for d, v in reference.items() if d >= full_from}


def value_expectations(view: FeatureView, *, severity: str = CRITICAL) -> list[Expectation]:
    """Ranges and allowed sets of the view's features (shared with the training-set suite)."""
    allowed_sets = ALLOWED_SOURCE.get(view.source, {})
    out = [at_least(name, 0, severity=severity) for name in non_negative(view)]
    if isinstance(view, SnapshotView):
        out += [allowed(a, allowed_sets[a], severity=severity) for a in view.attributes if a in allowed_sets]
    return out


def plan(spark: SparkSession, target: Target, table_df: DataFrame) -> SuitePlan:
    from pyspark.sql import functions as F

    gxe = expectations_module()
    view = view_for(target.table)
    keys = list(view.keys)
    types = feature_types(view)
    numeric = [n for n, t in types.items() if t in NUMERIC]
    notes: list[str] = []
    batch = table_df.where(F.col("feature_date").between(F.lit(target.start), F.lit(target.end)))
    reference = daily_profile(table_df, "feature_date", target, means=numeric, days=REFERENCE_DAYS)
    source = SOURCES[view.source]
    columns = (
        {k: source[k] for k in keys}
        | {"feature_time": "timestamp", "feature_date": "date", "computed_at": "timestamp"}
        | types
    )
    critical_feature = sentinel(view)
    expectations = [
        *freshness("feature_time", "feature_date", target, exact=True),
        *row_count_band(reference, target, notes),
        *schema_expectations(columns),
        *[
            gxe.ExpectColumnToExist(column=n, severity=CRITICAL, meta={"check": "schema"})
            for n in view.feature_names()
            if n not in types
        ],
        *not_null((*keys, "feature_time", "feature_date", "computed_at")),
        unique((*keys, "feature_time")),
        within_interval("feature_time", target, offset=timedelta(days=1)),
        *value_expectations(view),
        # A row is written after the instant it describes (a clock or a build-date bug otherwise).
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="computed_at",
            column_B="feature_time",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            severity=WARNING,
            meta={"check": "order"},
        ),
    ]
    windows = window_days(view)
    started = history_start(table_df, target, REFERENCE_DAYS + max(windows.values())) if windows else None
    for name in numeric:
        full = full_window_reference(name, windows.get(name), started, reference, target, notes)
        if full is not None:
            expectations += mean_drift(name, full, notes, critical=name == critical_feature)
    return SuitePlan(suite_name(target.table), batch, expectations, notes)
