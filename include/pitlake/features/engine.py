"""The incremental feature engine (Spark).

**Aggregate views** (``bronze.events`` → ``features.<view>``), in two stages:

1. *Rollup*: one day of bronze → ``features.<view>_daily``, one row per entity per
   ``event_date`` with partial aggregates: ``n__<m>`` (matching rows), ``s__<m>``/``c__<m>``
   (sum and non-null count of the column, for sum and avg), ``set__<m>`` (the day's distinct
   values, for exact distinct counts), ``last__<m>`` (the day's last matching event time).
2. *Windows*: the feature row of day D (``feature_time = D+1 00:00``) composes the rollups of
   days ``D-W+1 … D`` (W = the view's largest window): a window of w days ending at
   ``feature_time`` (excluded) is exactly the rollups with ``event_date >= D-w+1``.
   All-history features (``days_since_last_*``) carry their state forward from the previous
   day's feature row (the ``last_<m>_time`` columns); when that row is missing (first build,
   a gap) the state is recomputed from every earlier rollup, once.

A daily run therefore reads one day of bronze, W days of rollups and one feature day: its
cost does not grow with the length of history.

**Null keys**: a source row with a null key column (an event of a feed older than ``product_id``)
belongs to no entity of the view: the rollup leaves it out, and so does the all-history state.

**Which entities get a row on day D**: every entity with at least one event in the largest
window, plus every entity with all-history state (e.g. that ever purchased). An entity without a
row had no activity: its counts are 0 and its ``days_since_last_*`` null. Counts and sums are 0
(not null) inside a row; ``avg_*`` is null when there was nothing to average; a ratio is null when
its denominator is 0.

**Snapshot views** (SCD2 ``bronze.customers`` → ``features.<view>``): for day D, every entity's
version valid just before ``feature_time`` (``valid_from < feature_time <= valid_to``, open
``valid_to`` = current), like the event windows that exclude ``feature_time`` itself: a change
stamped exactly at D+1 00:00 belongs to day D+1's interval.

**Writes**: every day's output replaces exactly ``feature_date = D`` (rollups: ``event_date``),
so rebuilding a day or a range gives the same rows; ``computed_at`` records when.

**Late data**: ingestion accepts events up to ``max_event_lateness_days`` late and lists the
``event_date``s it touched; :func:`affected_start` finds them from bronze (``ingest_date = D``
and an earlier event date), and ``build_features --date D`` rebuilds from the earliest such day
through D. Older corrections are rebuilt by an operator: ``build_features --view V --start X --end D``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from pitlake.core import delta_io
from pitlake.core.dates import day_range, day_start, utc_now
from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.features.definitions import AggregateView, Aggregation, FeatureView, SnapshotView
from pitlake.features.snapshot import build_snapshot
from pitlake.features.source import BuildResult, check_source_covers

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)


def _partial(agg: Aggregation, prefix: str) -> str:
    return f"{prefix}__{agg.measure}__{_where_tag(agg)}"


def _where_tag(agg: Aggregation) -> str:
    if not agg.where:
        return "all"
    parts = []
    for col, val in sorted(agg.where.items()):
        vals = val if isinstance(val, tuple | list) else (val,)
        parts.append(col + "_" + "_".join(str(v) for v in vals))
    return "_".join(parts)


def _predicate(agg: Aggregation) -> Column:
    from pyspark.sql import functions as F

    cond = F.lit(True)
    for col, val in agg.where.items():
        cond = cond & (F.col(col).isin(*val) if isinstance(val, tuple | list) else (F.col(col) == F.lit(val)))
    return cond


def rollup_columns(view: AggregateView) -> dict[str, Column]:
    """The partial aggregates of one day, by name (shared between aggregations that need the same)."""
    from pyspark.sql import functions as F

    out: dict[str, Column] = {"n_events": F.count(F.lit(1))}
    for agg in view.aggregations:
        cond = _predicate(agg)
        if agg.function == "count":
            out[_partial(agg, "n")] = F.count(F.when(cond, F.lit(1)))
        elif agg.function in ("sum", "avg"):
            assert agg.column is not None
            value = F.when(cond, F.col(agg.column))
            out[_partial(agg, "s")] = F.sum(value).cast("double")
            out[_partial(agg, "c")] = F.count(value)
        elif agg.function == "count_distinct":
            assert agg.column is not None
            out[_partial(agg, "set")] = F.array_sort(F.collect_set(F.when(cond, F.col(agg.column))))
        elif agg.function == "days_since_last":
            out[_partial(agg, "last")] = F.max(F.when(cond, F.col(view.timestamp_column)))
    return out


def state_column(agg: Aggregation) -> str:
    return f"last_{agg.measure}_time"


def affected_start(spark: SparkSession, settings: Settings, view: FeatureView, day: date) -> date:
    """The earliest feature day that ``day``'s ingestion changed (late data), at most the lateness window back."""
    from pyspark.sql import functions as F

    path = settings.table_path(view.source)
    if not delta_io.table_exists(spark, path):
        return day
    time_col = view.timestamp_column if isinstance(view, AggregateView) else "valid_from"
    earliest = (
        delta_io.read(spark, path)
        .where(F.col("ingest_date") == F.lit(day))
        .agg(F.min(F.to_date(F.col(time_col))))
        .first()[0]  # type: ignore[index]
    )
    floor = day - timedelta(days=settings.max_event_lateness_days)
    if earliest is None or earliest >= day:
        return day
    if earliest < floor:
        log.warning(
            "%s: %s ingested on %s reaches back to %s, beyond the %d-day lateness window; rebuild older days with "
            "`build_features --view %s --start %s --end %s`",
            view.name,
            view.source,
            day,
            earliest,
            settings.max_event_lateness_days,
            view.name,
            earliest,
            floor - timedelta(days=1),
        )
        return floor
    return earliest


def build(
    spark: SparkSession,
    settings: Settings,
    view: FeatureView,
    start: date,
    end: date,
    *,
    computed_at: datetime | None = None,
) -> BuildResult:
    """Build ``view`` for every day of ``[start, end]``; each day replaces exactly its partition."""
    days = list(day_range(start, end))
    written_at = computed_at or utc_now()
    if isinstance(view, AggregateView):
        return _build_aggregate(spark, settings, view, days, written_at)
    if isinstance(view, SnapshotView):
        return build_snapshot(spark, settings, view, days, written_at)
    raise TypeError(f"unsupported view type {type(view).__name__}")


def _build_aggregate(
    spark: SparkSession, settings: Settings, view: AggregateView, days: list[date], computed_at: datetime
) -> BuildResult:
    from pyspark.sql import functions as F

    start, end = days[0], days[-1]
    source_path = settings.table_path(view.source)
    source_version = check_source_covers(spark, source_path, view.source, end, "ingest_events")
    keys = list(view.keys)

    table_path = settings.table_path(view.table)
    bronze_all = delta_io.read(spark, source_path, source_version)
    # Invariant: when feature day X is built, the rollups of X-W+1 .. X are current. So a build
    # that continues from a built day rolls up only its own days; a first build (or one after a
    # gap) also rolls up the W-1 days before it, and takes its all-history state from bronze once.
    continues = _feature_day_built(spark, table_path, start - timedelta(days=1))
    rollup_start = start if continues else start - timedelta(days=view.max_window_days - 1)

    # Stage 1: one pass over bronze for the whole range, one commit.
    bronze_all = bronze_all.where(_keys_present(keys))
    bronze = bronze_all.where(F.col("event_date").between(F.lit(rollup_start), F.lit(end)))
    partials = rollup_columns(view)
    rollups = bronze.groupBy(*keys, "event_date").agg(*[c.alias(n) for n, c in partials.items()])
    rollup_path = settings.table_path(view.rollup_table)
    rollup_version = delta_io.replace_where(
        rollups, rollup_path, f"event_date >= '{rollup_start}' AND event_date <= '{end}'", ["event_date"]
    )

    # Stage 2: windows, day by day (each day's all-history state comes from the previous day).
    rows_by_date: dict[str, int] = {}
    notes: list[str] = []
    version = -1
    for i, day in enumerate(days):
        state_source = None if (continues or i > 0) else bronze_all
        if state_source is not None:
            notes.append(f"{day - timedelta(days=1)} not built: all-history state of {day} taken from {view.source}")
            log.info(notes[-1])
        frame = window_features(spark, settings, view, day, computed_at, state_from=state_source)
        version = delta_io.replace_where(frame, table_path, f"feature_date = '{day}'", ["feature_date"])
        rows_by_date[day.isoformat()] = (
            delta_io.read(spark, table_path, version).where(F.col("feature_date") == F.lit(day)).count()
        )
    result = BuildResult(
        view=view.name,
        version=view.version,
        table=view.table,
        start=start.isoformat(),
        end=end.isoformat(),
        dates_built=[d.isoformat() for d in days],
        rows_by_date=rows_by_date,
        delta_version=version,
        rollup_version=rollup_version,
        source_table=view.source,
        source_version=source_version,
        computed_at=computed_at.isoformat(),
        notes=notes,
    )
    log.info("built %s %s..%s: %s", view.table, start, end, rows_by_date)
    return result


def _keys_present(keys: list[str]) -> Column:
    """Rows whose every key column has a value: a null key names no entity."""
    from pyspark.sql import functions as F

    cond = F.lit(True)
    for key in keys:
        cond = cond & F.col(key).isNotNull()
    return cond


def _feature_day_built(spark: SparkSession, table_path: str, day: date) -> bool:
    from pyspark.sql import functions as F

    if not delta_io.table_exists(spark, table_path):
        return False
    return delta_io.read(spark, table_path).where(F.col("feature_date") == F.lit(day)).limit(1).count() > 0


def window_features(
    spark: SparkSession,
    settings: Settings,
    view: AggregateView,
    day: date,
    computed_at: datetime,
    *,
    state_from: DataFrame | None = None,
) -> DataFrame:
    """Day ``day``'s feature rows from the rollups (already written) and the previous day's state.

    The state comes from the previous day's feature row, or, with ``state_from`` (the source
    table), from every source row before ``day``.
    """
    from pyspark.sql import functions as F

    keys = list(view.keys)
    width = view.max_window_days
    rollups = delta_io.read(spark, settings.table_path(view.rollup_table))
    window = rollups.where(F.col("event_date").between(F.lit(day - timedelta(days=width - 1)), F.lit(day)))
    age = F.datediff(F.lit(day), F.col("event_date"))
    stateful = [a for a in view.aggregations if a.function == "days_since_last"]

    aggs: list[Column] = []
    for agg in view.aggregations:
        for w, name in zip(agg.window_days(), agg.feature_names(), strict=False):
            inside = age < w
            if agg.function == "count":
                aggs.append(F.sum(F.when(inside, F.col(_partial(agg, "n")))).alias(name))
            elif agg.function == "sum":
                aggs.append(F.sum(F.when(inside, F.col(_partial(agg, "s")))).alias(name))
            elif agg.function == "avg":
                aggs.append(F.sum(F.when(inside, F.col(_partial(agg, "s")))).alias(f"{name}__s"))
                aggs.append(F.sum(F.when(inside, F.col(_partial(agg, "c")))).alias(f"{name}__c"))
            elif agg.function == "count_distinct":
                values = F.flatten(F.collect_list(F.when(inside, F.col(_partial(agg, "set")))))
                aggs.append(F.size(F.array_distinct(values)).alias(name))
    for agg in stateful:
        aggs.append(F.max(_partial(agg, "last")).alias(f"{state_column(agg)}__window"))
    current = window.groupBy(*keys).agg(*aggs)

    if stateful:
        previous = _previous_state(spark, settings, view, day, stateful, state_from)
        current = current.join(previous, keys, "full_outer")
    for agg in stateful:
        col = state_column(agg)
        if f"{col}__prev" in current.columns:
            current = current.withColumn(col, F.greatest(F.col(f"{col}__window"), F.col(f"{col}__prev")))
        else:
            current = current.withColumn(col, F.col(f"{col}__window"))

    feature_time = day_start(day + timedelta(days=1))
    out: list[Column] = [
        *[F.col(k) for k in keys],
        F.lit(feature_time).cast("timestamp").alias("feature_time"),
        F.lit(day).alias("feature_date"),
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
    ]
    for agg in view.aggregations:
        for name in agg.feature_names():
            if agg.function in ("count", "count_distinct"):
                out.append(F.coalesce(F.col(name), F.lit(0)).cast("bigint").alias(name))
            elif agg.function == "sum":
                out.append(F.coalesce(F.col(name), F.lit(0.0)).cast("double").alias(name))
            elif agg.function == "avg":
                s, c = F.col(f"{name}__s"), F.col(f"{name}__c")
                out.append(F.when(c > 0, s / c).cast("double").alias(name))
            elif agg.function == "days_since_last":
                out.append(F.datediff(F.lit(day), F.to_date(F.col(state_column(agg)))).cast("int").alias(name))
    frame = current.select(*out, *[F.col(state_column(a)) for a in stateful])
    for ratio in view.ratios:
        den = F.col(ratio.denominator)
        frame = frame.withColumn(ratio.name, F.when(den > 0, F.col(ratio.numerator) / den).cast("double"))
    if view.transform is not None:
        frame = view.transform(frame)
        missing = [c for c in view.transform_outputs if c not in frame.columns]
        if missing:
            raise InputError(f"feature view {view.name!r}: transform did not produce {missing}")
    ordered = [*keys, "feature_time", "feature_date", "computed_at", *view.feature_names()]
    ordered += [state_column(a) for a in stateful]
    return frame.select(*ordered)


def _previous_state(
    spark: SparkSession,
    settings: Settings,
    view: AggregateView,
    day: date,
    stateful: list[Aggregation],
    state_from: DataFrame | None,
) -> DataFrame:
    from pyspark.sql import functions as F

    keys = list(view.keys)
    names = [f"{state_column(a)}__prev" for a in stateful]
    not_null = " OR ".join(f"`{n}` IS NOT NULL" for n in names)
    if state_from is None:
        features = delta_io.read(spark, settings.table_path(view.table))
        prev_day = features.where(F.col("feature_date") == F.lit(day - timedelta(days=1)))
        return prev_day.select(
            *keys, *[F.col(state_column(a)).alias(n) for a, n in zip(stateful, names, strict=True)]
        ).where(not_null)
    earlier = state_from.where(F.col("event_date") < F.lit(day - timedelta(days=view.max_window_days - 1)))
    lasts = [
        F.max(F.when(_predicate(a), F.col(view.timestamp_column))).alias(n)
        for a, n in zip(stateful, names, strict=True)
    ]
    return earlier.groupBy(*keys).agg(*lasts).where(not_null)
