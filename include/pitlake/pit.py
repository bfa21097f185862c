"""Point-in-time (as-of) joins of a spine onto feature tables: where the time contract is implemented.

A spine row at time ``t`` takes, per feature table, the row of the same keys with the greatest
``feature_time <= t`` (and ``>= t - ttl`` with a TTL); see :func:`point_in_time_join`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pitlake.errors import ConfigError, InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["ViewInput", "build_training_set", "leakage_violations", "point_in_time_join"]

Method = Literal["interval", "window", "bucketed_asof", "join_row_number"]

# Internal column names; the prefix keeps them apart from any user column.
_P = "__pit_"
_TIME = f"{_P}t"
_KIND = f"{_P}kind"  # 0 = feature row, 1 = spine row: at equal times feature rows sort first
_SPINE = f"{_P}spine"
_FEAT = f"{_P}feat"
_ORDER = f"{_P}order"
_MATCH = f"{_P}match"
_ROW_ID = f"{_P}row_id"
_TIE = f"{_P}tie"  # created_time of feature rows: equal feature times sort by it
_DUP = f"{_P}dup"
_RANK = f"{_P}rank"
_NEXT = f"{_P}next"  # interval join: the next feature time of the same keys
_VISIBLE = f"{_P}visible"  # as of write: when a feature row became usable, max(feature_time, computed_at)

_TIME_TYPES = (T.TimestampType, T.TimestampNTZType)


def point_in_time_join(
    spine: DataFrame,
    features: DataFrame,
    *,
    keys: Sequence[str],
    spine_time: str,
    feature_time: str,
    ttl: timedelta | None = None,
    created_time: str | None = None,
    as_of_write: str | None = None,
    prefix: str = "",
    feature_time_as: str | None = None,
    check_unique: bool = True,
    method: Method = "interval",
) -> DataFrame:
    """Attach to every spine row the feature values that were valid at its time.

    Result: every spine row exactly once (duplicates stay duplicates, the row count never
    changes, row order is not kept), with all spine columns in their order, followed by every
    column of ``features`` except the keys, named ``prefix + column``. That includes the matched
    ``feature_time`` itself (renamed ``feature_time_as`` when given) so a leakage audit can check
    ``feature_time <= spine_time``; it is null exactly when nothing matched.

    Semantics, for a spine row with keys ``k`` and time ``t``:

    1. Candidates are the feature rows with keys equal to ``k``. A spine row with a null key or a
       null time matches nothing; feature rows with a null key or null ``feature_time`` are never
       candidates.
    2. Keep candidates with ``feature_time <= t`` (a row valid exactly at ``t`` is used).
    3. As of write (``as_of_write="computed_at"``): also keep only candidates with
       ``computed_at <= t``, i.e. rows that had been written by then (a null ``computed_at``
       counts as never written). A later backfill or late row therefore cannot leak.
    4. Take the candidate with the greatest ``feature_time``. Two rows with the same keys and
       ``feature_time`` are an :class:`~pitlake.errors.InputError`, unless ``created_time`` names
       a column: then the greatest ``created_time`` wins (a null one loses to any value).
    5. With a ``ttl``, use it only if ``feature_time >= t - ttl`` (inclusive); an older match is
       dropped, not replaced by anything else (every other candidate is older still).
    6. No candidate left: the feature columns are null.

    Methods and cost (S spine rows, F feature rows, P shuffle partitions; S_k, F_k those of one key):

    - ``method="interval"`` (the default): the feature rows are shuffled by the keys and sorted by
      (keys, feature_time, created_time) once, and a ``lead`` window gives each row the interval
      ``[feature_time, next feature_time)`` in which it is the latest (repeats get an empty
      interval and are flagged on the way). Spark's sort-merge join then joins the spine rows
      (shuffled and sorted by the keys alone) into their interval: a left join on the keys with
      ``feature_time <= t < next`` and the TTL bound, which matches each spine row at most once,
      so no intermediate is larger than S + F rows and the feature sort is reused by the join. The
      join compares each spine row with every interval of its key: O(F log F + S log S + sum over
      keys of S_k x F_k), the same comparisons as the join-then-rank baseline without its S x F_k
      output rows. In ``docs/benchmarks.md`` it is the fastest method for every shape. A key with
      very many rows on both sides (say a global feature under a constant key, 10^5 spine and
      10^5 feature rows: 10^10 comparisons) is where ``method="window"`` is the better choice; AQE
      splits a skewed spine partition across tasks but each part still scans all of the key's
      intervals. In as-of-write mode (the usable row is not the latest by feature_time) this
      method runs as ``"window"``.
    - ``method="window"``: one shuffle of spine ∪ features by the keys and one
      Spark sort by (keys, time, kind) inside each partition, then a running window that carries
      all feature columns as one struct (last non-null; ``max_by`` on (feature_time,
      created_time) in as-of-write mode). Work is O((S + F) log(S + F)) and no intermediate is
      larger than S + F rows (the join-then-rank alternative materialises every earlier feature
      row of the key for every spine row), all in the JVM. Skew: all rows of one key are sorted
      and scanned by one task, and Spark's window operator buffers one key's rows (spilling to
      disk when large), so a key with hundreds of millions of rows is slow but correct; salting
      by (key, time range) would need a second carry pass across ranges and is not done.
    - ``method="bucketed_asof"``: a vectorised as-of merge inside co-partitioned groups, same
      results. Spine and feature rows are unioned (each side's columns packed in one struct) and
      hash partitioned by the keys: one shuffle of S + F rows, no Spark sort. Each partition (a
      "bucket" of whole keys; ``spark.sql.shuffle.partitions`` of them, merged by AQE when small)
      goes to a Python worker through Arrow (``mapInArrow``), which sorts feature rows by (keys,
      feature_time, created_time) and spine ∪ feature rows by (keys, time) with numpy (keys as
      integer codes, sort keys packed into one int64 when they fit), takes a running maximum of
      the feature rank (the as-of match; in as-of-write mode feature rows enter at
      ``max(feature_time, computed_at)`` and compete on their rank, so that mode is covered too)
      and gathers the matched values with Arrow ``take``, so values, nulls and types come back
      unchanged. O((S + F) log(S + F)), but every row crosses the JVM/Python boundary: in
      ``docs/benchmarks.md`` it is slower than ``window`` in every shape and slower than the
      join-then-rank baseline at 10M feature rows, so it is not the default. A worker holds its
      whole partition in memory, about (S + F) / P rows plus Arrow buffers, without spilling;
      one huge key lands in one partition and must fit in one worker. Keys must be integers,
      booleans, strings (binary collation), binary, dates, timestamps or decimals, every column
      must have an Arrow type (else :class:`~pitlake.errors.ConfigError`), and the Python
      workers (``PYSPARK_PYTHON``) need numpy and pyarrow.
    - ``method="join_row_number"`` is the textbook equi-join on keys with ``feature_time <= t``
      followed by ``row_number()`` per spine row: its intermediate grows with (feature rows per
      key) x (spine rows per key). It is kept as a reference for tests and the benchmark only.

    Eager by default: with ``check_unique=True`` the join runs once at call time so that
    duplicate feature rows fail here, as an :class:`~pitlake.errors.InputError` naming their
    count and an example, rather than inside a later write. Duplicates are found in the same
    sorted pass (equal neighbours in the feature order, read through a DataFrame observation; with
    the interval method only their number is observed, and when it is not zero, or Spark pruned
    the feature side, e.g. for an empty spine, one aggregation over the features names the count
    and an example),
    and the result comes back locally checkpointed (executor memory and disk, freed when the
    DataFrame is garbage collected): writing it does not recompute the join. Losing an executor
    before that write fails the write, and the task's retry recomputes. With the window method in
    as-of-write mode rows are sorted by write time, so the check is a separate aggregation over
    the features and the result stays lazy. ``check_unique=False`` skips the check and returns a
    lazy DataFrame; ties are then broken arbitrarily, so use it only when uniqueness is
    guaranteed upstream (the feature tables' validation suites check it). The check is not free:
    in ``docs/benchmarks.md`` it costs the interval join up to a quarter of its time at 10M
    feature rows (an observation over every feature row, and the local checkpoint).

    Raises :class:`~pitlake.errors.ConfigError` for missing columns, non-timestamp time
    columns, a negative ``ttl`` or output names that clash with spine columns (use ``prefix``),
    and :class:`~pitlake.errors.InputError` for duplicate (keys, feature_time) rows.
    """
    keys = list(keys)
    value_columns = [c for c in features.columns if c not in keys]
    out_names = _plan_output(
        spine,
        features,
        keys=keys,
        spine_time=spine_time,
        feature_time=feature_time,
        ttl=ttl,
        created_time=created_time,
        as_of_write=as_of_write,
        prefix=prefix,
        feature_time_as=feature_time_as,
    )
    if method == "join_row_number":
        if check_unique:
            _check_unique(features, keys, feature_time, created_time)
        return _join_row_number(
            spine, features, keys, spine_time, feature_time, ttl, created_time, as_of_write, value_columns, out_names
        )
    if method not in ("interval", "bucketed_asof", "window"):
        raise ConfigError(
            f"unknown point_in_time_join method {method!r}: use 'interval', 'window', 'bucketed_asof' or "
            "'join_row_number'"
        )
    if method == "interval" and as_of_write is None:
        return _interval_join(
            spine, features, keys, spine_time, feature_time, ttl, created_time, value_columns, out_names, check_unique
        )
    if method == "bucketed_asof":
        unsupported = _asof_supported(spine, features, keys)
        if unsupported is None:
            merged = _bucketed_asof(
                spine,
                features,
                keys,
                spine_time,
                feature_time,
                ttl,
                created_time,
                as_of_write,
                value_columns,
                out_names,
                check_unique,
            )
            if not check_unique:
                return merged
            is_repeat = F.col(_KIND) == 2
            observed, observation = _observe_repeats(merged, is_repeat, keys, feature_time, created_time)
            final = [*spine.columns, *(out_names[c] for c in value_columns)]
            return _checked(
                observed.where(~is_repeat).select(*[_col(c) for c in final]),
                observation,
                feature_time,
                created_time,
                lambda: _check_unique(features, keys, feature_time, created_time),
            )
        raise ConfigError(f"method='bucketed_asof' cannot join these tables: {unsupported}; use method='window'")
    # In as-of-write mode rows sort by write time, so equal feature times are not neighbours: check apart.
    flag_duplicates = check_unique and as_of_write is None
    if check_unique and not flag_duplicates:
        _check_unique(features, keys, feature_time, created_time)
    carried = _carry_forward(
        spine, features, keys, spine_time, feature_time, created_time, as_of_write, value_columns, flag_duplicates
    )
    if not flag_duplicates:
        return _finish(carried.where(F.col(_KIND) == 1), spine.columns, value_columns, out_names, feature_time, ttl)
    # One job does the join and counts duplicates on the way (an observation, no second pass).
    # Metrics are collected row by row: look only at spine rows and repeats, not at every feature row.
    observed, observation = _observe_repeats(
        carried.where((F.col(_KIND) == 1) | F.col(_DUP)), F.col(_DUP), keys, feature_time, created_time
    )
    result = _finish(observed.where(F.col(_KIND) == 1), spine.columns, value_columns, out_names, feature_time, ttl)
    return _checked(
        result,
        observation,
        feature_time,
        created_time,
        lambda: _check_unique(features, keys, feature_time, created_time),
    )


def _observe_repeats(
    df: DataFrame, is_repeat: Column, keys: list[str], feature_time: str, created_time: str | None
) -> tuple[DataFrame, Observation]:
    """Count the rows flagged as repeated feature rows (and keep the least as an example) while ``df`` runs."""
    observation = Observation(f"pit_duplicates_{uuid.uuid4().hex}")
    key_names = [f"{_P}k{i}" for i in range(len(keys))]
    example = F.struct(
        *[F.col(n).alias(k) for k, n in zip(keys, key_names, strict=True)],
        F.col(_TIME).alias(feature_time),
        *([F.col(_TIE).alias(created_time)] if created_time else []),
    )
    observed = df.observe(
        observation,
        F.sum(is_repeat.cast("long")).alias("rows"),
        F.min(F.when(is_repeat, example)).alias("example"),
    )
    return observed, observation


def _observed(observation: Observation) -> dict[str, Any] | None:
    """The observation's metrics, None when none arrived: Spark pruned the observed plan (an empty
    spine, say), or the session is a Spark Connect one, whose local checkpoint returns no metrics."""
    jo = getattr(observation, "_jo", None)
    if jo is not None:  # classic
        return dict(observation.get) if jo.getRow().length() > 0 else None
    found = getattr(observation, "_result", None)  # Connect: filled only by an action that returns rows
    return dict(found) if found else None


def _checked(
    result: DataFrame,
    observation: Observation,
    feature_time: str,
    created_time: str | None,
    fallback: Callable[[], None],
) -> DataFrame:
    """Materialise ``result`` once (the job that fills the observation); raise if it saw repeats.

    Without metrics (see :func:`_observed`) ``fallback`` checks the features apart (one aggregation)."""
    # The caller's write then reads these blocks.
    result = result.localCheckpoint(eager=True)
    found = _observed(observation)
    if found is None:
        fallback()
        return result
    if found["rows"]:
        raise _duplicates_error(found["rows"], found["example"].asDict(), feature_time, created_time)
    return result


@dataclass(frozen=True, kw_only=True)
class ViewInput:
    """One feature view to join onto a spine with :func:`build_training_set`.

    ``name`` is unique per training set and names the view's bookkeeping columns; ``prefix`` is
    put in front of its value columns (empty: value names are kept as they are).
    """

    df: DataFrame
    keys: Sequence[str]
    name: str
    feature_time: str = "feature_time"
    ttl: timedelta | None = None
    prefix: str = ""
    created_time: str | None = None


def build_training_set(
    spine: DataFrame,
    views: Sequence[ViewInput],
    *,
    spine_time: str,
    as_of_write: str | None = None,
) -> DataFrame:
    """Join several feature views onto ``spine`` by :func:`point_in_time_join`, one after another.

    Each join keeps every spine row exactly once, so the result has the spine's row count. Per
    view, the value columns are added as ``prefix + column`` and the bookkeeping columns as
    ``<name>__<column>``: always ``<name>__feature_time`` (the matched feature time, for the
    leakage audit with :func:`leakage_violations`), plus ``<name>__<created_time>`` and
    ``<name>__<as_of_write>`` when those are used. ``as_of_write`` names the write-time column,
    which every view must then carry. Like :func:`point_in_time_join`, each join runs at call
    time (duplicate feature rows fail here, naming the view), so the next view starts from a
    materialised result rather than an ever longer plan.
    """
    names = [v.name for v in views]
    if not views:
        raise ConfigError("build_training_set needs at least one feature view")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or any(not n for n in names):
        raise ConfigError(f"feature view names must be non-empty and unique, got {names}")
    result = spine
    for view in views:
        keys = list(view.keys)
        bookkeeping = [view.feature_time, *(c for c in (view.created_time, as_of_write) if c)]
        renames = {c: f"{view.name}__{c}" for c in bookkeeping if c in view.df.columns}
        renames.update({c: view.prefix + c for c in view.df.columns if c not in keys and c not in bookkeeping})
        missing = [c for c in bookkeeping if c not in view.df.columns]
        if missing:
            raise ConfigError(f"feature view {view.name!r} has no column {missing[0]!r}; columns: {view.df.columns}")
        renamed = view.df.select(*[_col(c).alias(renames.get(c, c)) for c in view.df.columns])
        try:
            result = point_in_time_join(
                result,
                renamed,
                keys=keys,
                spine_time=spine_time,
                feature_time=renames[view.feature_time],
                ttl=view.ttl,
                created_time=renames[view.created_time] if view.created_time else None,
                as_of_write=renames[as_of_write] if as_of_write else None,
            )
        except (ConfigError, InputError) as err:
            raise type(err)(f"feature view {view.name!r}: {err}") from err
    return result


def leakage_violations(df: DataFrame, spine_time: str, feature_time_col: str, ttl: timedelta | None = None) -> int:
    """Rows whose matched feature time is after the spine time, or (with ``ttl``) older than ``spine_time - ttl``.

    Rows without a match (null feature time) are not violations. A correct training set gives 0.
    """
    matched, at = _col(feature_time_col), _col(spine_time)
    bad = matched > at
    if ttl is not None:
        bad = bad | (matched < at - F.lit(ttl))
    return df.where(bad).count()


# --------------------------------------------------------------------------- validation


def _plan_output(
    spine: DataFrame,
    features: DataFrame,
    *,
    keys: list[str],
    spine_time: str,
    feature_time: str,
    ttl: timedelta | None,
    created_time: str | None,
    as_of_write: str | None,
    prefix: str,
    feature_time_as: str | None,
) -> dict[str, str]:
    """Check the arguments against both schemas; return feature column -> output column name."""
    if not keys:
        raise ConfigError("point_in_time_join needs at least one key column")
    spine_types = {f.name: f.dataType for f in spine.schema.fields}
    feature_types = {f.name: f.dataType for f in features.schema.fields}
    for side, types, wanted in (
        ("spine", spine_types, [*keys, spine_time]),
        ("features", feature_types, [*keys, feature_time, *(c for c in (created_time, as_of_write) if c)]),
    ):
        for wanted_name in wanted:
            if wanted_name not in types:
                raise ConfigError(f"{side} has no column {wanted_name!r}; its columns are {list(types)}")
    timed: list[tuple[str, dict[str, T.DataType], str | None]] = [
        ("spine", spine_types, spine_time),
        ("features", feature_types, feature_time),
        ("features", feature_types, as_of_write),
    ]
    for side, types, name in timed:
        if name is not None and not isinstance(types[name], _TIME_TYPES):
            raise ConfigError(
                f"{side} column {name!r} is {types[name].simpleString()}, not a timestamp: cast it with to_timestamp"
            )
    kinds = {types[name].simpleString() for _, types, name in timed if name is not None}
    if len(kinds) > 1:
        raise ConfigError(f"time columns mix {sorted(kinds)}: cast them all to timestamp (UTC)")
    if feature_time in keys or spine_time in keys:
        raise ConfigError(f"time columns must not be keys: keys={keys}, times={spine_time!r}/{feature_time!r}")
    if ttl is not None and ttl < timedelta(0):
        raise ConfigError(f"ttl must be zero or positive, got {ttl}")
    out = {c: prefix + c for c in features.columns if c not in keys}
    out[feature_time] = feature_time_as or prefix + feature_time
    clashes = sorted(set(out.values()) & set(spine.columns))
    if clashes:
        raise ConfigError(
            f"feature columns {clashes} already exist in the spine: pass prefix= (or rename them) to keep both"
        )
    if len(set(out.values())) != len(out):
        raise ConfigError(f"feature_time_as={feature_time_as!r} clashes with another feature column")
    if any(name.startswith(_P) for name in [*spine.columns, *features.columns]):
        raise ConfigError(f"column names starting with {_P!r} are reserved by point_in_time_join")
    return out


def _check_unique(features: DataFrame, keys: list[str], feature_time: str, created_time: str | None) -> None:
    """Raise InputError when usable feature rows repeat (keys, feature_time[, created_time]); one aggregation."""
    group = [*keys, feature_time, *([created_time] if created_time else [])]
    usable = _all_not_null([*keys, feature_time])
    counts = features.where(usable).groupBy(*[_col(c) for c in group]).count().where(F.col("count") > 1)
    summary = counts.agg(
        F.sum(F.col("count") - 1).alias("rows"),
        F.min(F.struct(*[_col(c) for c in group])).alias("example"),
    ).first()
    if summary is not None and summary["rows"]:
        raise _duplicates_error(summary["rows"], summary["example"].asDict(), feature_time, created_time)


def _duplicates_error(rows: int, example: dict[str, object], feature_time: str, created_time: str | None) -> InputError:
    shown = ", ".join(f"{k}={v}" for k, v in example.items())
    what = f"(keys, {feature_time}{', ' + created_time if created_time else ''})"
    fix = "deduplicate the feature table" if created_time else "name a created_time column or deduplicate the table"
    return InputError(f"{rows} feature rows repeat the {what} of another row, e.g. {shown}: {fix}")


# --------------------------------------------------------------------------- algorithms


def _carry_forward(
    spine: DataFrame,
    features: DataFrame,
    keys: list[str],
    spine_time: str,
    feature_time: str,
    created_time: str | None,
    as_of_write: str | None,
    value_columns: list[str],
    flag_duplicates: bool,
) -> DataFrame:
    """Union spine and feature rows, sort once per key by time, carry the best feature row forward.

    Returns one row per input row with ``_KIND``, ``_TIME``, ``_SPINE`` and ``_MATCH`` (the chosen
    feature struct, before the TTL), plus the key columns, ``_TIE`` and ``_DUP`` when
    ``flag_duplicates``.
    """
    key_names = [f"{_P}k{i}" for i in range(len(keys))]
    feat = F.struct(*[_col(c) for c in value_columns])
    order = F.struct(_col(feature_time), _col(created_time)) if created_time else _col(feature_time)
    # The instant a feature row becomes usable: its feature_time, or later when it was written later.
    visible = _col(feature_time)
    usable = _all_not_null([*keys, feature_time])
    if as_of_write:
        visible = F.greatest(visible, _col(as_of_write))
        usable = usable & _col(as_of_write).isNotNull()
    spine_struct = F.struct(*[_col(c) for c in spine.columns])
    spine_type = spine.select(spine_struct).schema.fields[0].dataType
    feat_type = features.select(feat).schema.fields[0].dataType
    order_type = features.select(order).schema.fields[0].dataType
    tie_type = features.select(_col(created_time)).schema.fields[0].dataType if created_time else T.NullType()

    # With as_of_write the carried row is the one with the greatest (feature_time, created_time) seen
    # so far (max_by ignores the spine rows, whose ordering is null): a row written late sorts at
    # its write time but still competes on feature_time. Without it, rows sort by exactly that
    # order, so the last feature row seen is the one, and no ordering column needs to travel.
    order_columns = [_ORDER] if as_of_write else []
    spine_side = spine.select(
        *[_col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        _col(spine_time).alias(_TIME),
        F.lit(1).alias(_KIND),
        *([F.lit(None).cast(tie_type).alias(_TIE)] if created_time else []),
        spine_struct.alias(_SPINE),
        *[F.lit(None).cast(order_type).alias(c) for c in order_columns],
        F.lit(None).cast(feat_type).alias(_FEAT),
    )
    feature_side = features.where(usable).select(
        *[_col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        visible.alias(_TIME),
        F.lit(0).alias(_KIND),
        *([_col(created_time).alias(_TIE)] if created_time else []),
        F.lit(None).cast(spine_type).alias(_SPINE),
        *[order.alias(c) for c in order_columns],
        feat.alias(_FEAT),
    )
    # Feature rows sort before spine rows at the same instant (feature_time == spine time is used);
    # equal (time, created_time) feature rows end up next to each other, which flags duplicates.
    sort_order = [F.col(_TIME).asc_nulls_first(), F.col(_KIND)]
    if created_time:
        sort_order.append(F.col(_TIE).asc_nulls_first())
    by_time = Window.partitionBy(*key_names).orderBy(*sort_order)
    running = by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    best = F.max_by(F.col(_FEAT), F.col(_ORDER)) if as_of_write else F.last(F.col(_FEAT), ignorenulls=True)
    columns: list[Column | str] = [_KIND, _TIME, _SPINE, best.over(running).alias(_MATCH)]
    if flag_duplicates:
        # A feature row whose (time, created_time) equals the row sorted just before it is a repeat: its
        # rank (first row of its peers) differs from its row number. Both share the running frame.
        repeat = F.rank().over(by_time) != F.row_number().over(by_time)
        columns += [*key_names, *([_TIE] if created_time else []), ((F.col(_KIND) == 0) & repeat).alias(_DUP)]
    return spine_side.unionByName(feature_side).select(*columns)


def _interval_join(
    spine: DataFrame,
    features: DataFrame,
    keys: list[str],
    spine_time: str,
    feature_time: str,
    ttl: timedelta | None,
    created_time: str | None,
    value_columns: list[str],
    out_names: dict[str, str],
    check_unique: bool,
) -> DataFrame:
    """Give each feature row the interval in which it is the latest, then join spine rows into their interval.

    A feature row is the as-of match for times in ``[feature_time, next feature_time of the same
    keys)`` (to the end of time for the newest row); with equal feature times only the last row in
    (feature_time, created_time) order keeps a non-empty interval. The intervals of one key are
    disjoint, so the left join on the keys with ``feature_time <= t < next`` (and the TTL bound)
    matches each spine row at most once.
    """
    key_names = [f"{_P}k{i}" for i in range(len(keys))]
    value_names = {c: f"{_P}v{i}" for i, c in enumerate(value_columns)}
    by_time = Window.partitionBy(*key_names).orderBy(
        F.col(_TIME).asc(), *([F.col(_TIE).asc_nulls_first()] if created_time else [])
    )
    following = F.lead(F.col(_TIME)).over(by_time)
    feature_side = (
        features.where(_all_not_null([*keys, feature_time]))
        .select(
            *[_col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
            _col(feature_time).alias(_TIME),
            *([_col(created_time).alias(_TIE)] if created_time else []),
            *[_col(c).alias(value_names[c]) for c in value_columns],
        )
        .withColumn(_NEXT, following)
    )
    observation = None
    if check_unique:
        # The earlier of two rows with equal (feature_time, created_time) is a repeat: n equal rows flag n - 1.
        # Only their number is observed (cheap per row); the rare failure then finds count and example apart.
        repeat = F.col(_NEXT) == F.col(_TIME)
        if created_time:
            repeat = repeat & F.lead(F.col(_TIE)).over(by_time).eqNullSafe(F.col(_TIE))
        observation = Observation(f"pit_repeats_{uuid.uuid4().hex}")
        feature_side = feature_side.withColumn(_DUP, repeat).observe(
            observation, F.sum(F.col(_DUP).cast("long")).alias("rows")
        )
    at = F.col(_TIME)
    t = _col(spine_time)
    condition = (at <= t) & (F.col(_NEXT).isNull() | (t < F.col(_NEXT)))
    for k, n in zip(keys, key_names, strict=True):
        condition = (_col(k) == F.col(n)) & condition
    if ttl is not None:
        condition = condition & (at >= t - F.lit(ttl))
    joined = spine.join(feature_side.where(F.col(_NEXT).isNull() | (F.col(_NEXT) > at)), condition, "left")
    result = joined.select(
        *[_col(c) for c in spine.columns], *[F.col(value_names[c]).alias(out_names[c]) for c in value_columns]
    )
    if observation is None:
        return result
    result = result.localCheckpoint(eager=True)  # fills the observation; the caller's write reads these blocks
    # No metrics at all: Spark pruned the feature side (an empty spine, say), so nothing was counted.
    found = _observed(observation)
    if found is None or found["rows"]:
        _check_unique(features, keys, feature_time, created_time)  # raises with the count and an example
    return result


def _join_row_number(
    spine: DataFrame,
    features: DataFrame,
    keys: list[str],
    spine_time: str,
    feature_time: str,
    ttl: timedelta | None,
    created_time: str | None,
    as_of_write: str | None,
    value_columns: list[str],
    out_names: dict[str, str],
) -> DataFrame:
    """Reference: join every earlier feature row of the key, keep the latest per spine row."""
    key_names = [f"{_P}k{i}" for i in range(len(keys))]
    s = spine.select(
        *[_col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        _col(spine_time).alias(_TIME),
        F.struct(*[_col(c) for c in spine.columns]).alias(_SPINE),
        F.monotonically_increasing_id().alias(_ROW_ID),
    )
    feat = F.struct(*[_col(c) for c in value_columns]).alias(_FEAT)
    f = features.where(_all_not_null([*keys, feature_time])).select(
        *[_col(k).alias(f"{n}_f") for k, n in zip(keys, key_names, strict=True)], feat
    )
    ft = F.col(_FEAT)[feature_time]
    cond = [F.col(n) == F.col(f"{n}_f") for n in key_names] + [ft <= F.col(_TIME)]
    if ttl is not None:
        cond.append(ft >= F.col(_TIME) - F.lit(ttl))
    if as_of_write:
        cond.append(F.col(_FEAT)[as_of_write] <= F.col(_TIME))
    condition = cond[0]
    for c in cond[1:]:
        condition = condition & c
    ordering = [ft.desc()] + ([F.col(_FEAT)[created_time].desc_nulls_last()] if created_time else [])
    ranked = s.join(f, condition, "left").withColumn(
        _RANK, F.row_number().over(Window.partitionBy(_ROW_ID).orderBy(*ordering))
    )
    matched = ranked.where(F.col(_RANK) == 1).select(_TIME, _SPINE, F.col(_FEAT).alias(_MATCH))
    return _finish(matched, spine.columns, value_columns, out_names, feature_time, None)


# --------------------------------------------------------------------------- bucketed as-of merge

_MAX_CODE = 1 << 62  # combined key codes stay below this, so products and sums cannot overflow int64


@dataclass(frozen=True)
class _AsofPlan:
    """What the per-partition as-of merge needs to know; pickled to the Python workers."""

    key_names: tuple[str, ...]
    spine_names: tuple[str, ...]
    value_names: tuple[str, ...]  # output names of the feature columns, in order
    ttl_us: int | None
    has_tie: bool
    has_visible: bool
    flag_duplicates: bool


def _asof_supported(spine: DataFrame, features: DataFrame, keys: list[str]) -> str | None:
    """Why the bucketed as-of merge cannot take these inputs (None: it can)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    key_types = (
        T.BooleanType,
        T.ByteType,
        T.ShortType,
        T.IntegerType,
        T.LongType,
        T.StringType,
        T.BinaryType,
        T.DateType,
        T.TimestampType,
        T.TimestampNTZType,
        T.DecimalType,
    )
    for side in (spine, features):
        types = {f.name: f.dataType for f in side.schema.fields}
        for k in keys:
            dtype = types[k]
            if not isinstance(dtype, key_types):
                return f"key {k!r} is {dtype.simpleString()}"
            if isinstance(dtype, T.StringType) and getattr(dtype, "collation", "UTF8_BINARY") != "UTF8_BINARY":
                return f"key {k!r} has collation {dtype.collation}"
        try:
            to_arrow_schema(side.schema)
        except Exception as err:  # any type Arrow cannot carry: the window method handles it
            return f"a column has no Arrow type ({err})"
    return None


def _bucketed_asof(
    spine: DataFrame,
    features: DataFrame,
    keys: list[str],
    spine_time: str,
    feature_time: str,
    ttl: timedelta | None,
    created_time: str | None,
    as_of_write: str | None,
    value_columns: list[str],
    out_names: dict[str, str],
    flag_duplicates: bool,
) -> DataFrame:
    """Hash-partition spine ∪ features by the keys; merge each partition in Python (numpy, Arrow).

    Returns the final columns, plus ``_KIND`` (1 = spine row, 2 = repeated feature row) and the
    repeated row's keys, ``_TIME`` and ``_TIE`` when ``flag_duplicates``.
    """
    key_names = [f"{_P}k{i}" for i in range(len(keys))]
    usable = _all_not_null([*keys, feature_time])
    spine_struct = F.struct(*[_col(c) for c in spine.columns])
    feat = F.struct(*[_col(c) for c in value_columns])
    # As of write: the instant a row became usable; null (never written) rows still count as duplicates.
    written = _col(as_of_write) if as_of_write else F.lit(None)
    visible = F.when(written.isNotNull(), F.greatest(_col(feature_time), written))
    spine_type = spine.select(spine_struct).schema.fields[0].dataType
    feat_type = features.select(feat).schema.fields[0].dataType
    time_type = spine.schema[spine_time].dataType
    tie_type = features.schema[created_time].dataType if created_time else None
    spine_side = spine.select(
        *[_col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        _col(spine_time).alias(_TIME),
        F.lit(1).cast("byte").alias(_KIND),
        *([F.lit(None).cast(tie_type).alias(_TIE)] if tie_type else []),
        *([F.lit(None).cast(time_type).alias(_VISIBLE)] if as_of_write else []),
        spine_struct.alias(_SPINE),
        F.lit(None).cast(feat_type).alias(_FEAT),
    )
    feature_side = features.where(usable).select(
        *[_col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        _col(feature_time).alias(_TIME),
        F.lit(0).cast("byte").alias(_KIND),
        *([_col(created_time).alias(_TIE)] if created_time else []),
        *([visible.alias(_VISIBLE)] if as_of_write else []),
        F.lit(None).cast(spine_type).alias(_SPINE),
        feat.alias(_FEAT),
    )
    # One shuffle: every row of a key lands in one partition (AQE may merge small partitions).
    union = spine_side.unionByName(feature_side).repartition(*key_names)
    union_types = {f.name: f.dataType for f in union.schema.fields}
    value_fields = [T.StructField(out_names[c], features.schema[c].dataType, True) for c in value_columns]
    # Every column nullable, as the other methods give them.
    out_fields = [*(T.StructField(f.name, f.dataType, True) for f in spine.schema.fields), *value_fields]
    if flag_duplicates:
        out_fields += [
            T.StructField(_KIND, T.ByteType(), False),
            *[T.StructField(n, union_types[n], True) for n in key_names],
            T.StructField(_TIME, union_types[_TIME], True),
            *([T.StructField(_TIE, union_types[_TIE], True)] if created_time else []),
        ]
    plan = _AsofPlan(
        key_names=tuple(key_names),
        spine_names=tuple(spine.columns),
        value_names=tuple(out_names[c] for c in value_columns),
        ttl_us=None if ttl is None else _micros(ttl),
        has_tie=created_time is not None,
        has_visible=as_of_write is not None,
        flag_duplicates=flag_duplicates,
    )
    return union.mapInArrow(functools.partial(_asof_partitions, plan=plan), T.StructType(out_fields))


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _asof_partitions(batches: Iterator[pa.RecordBatch], plan: _AsofPlan) -> Iterator[pa.RecordBatch]:
    """Runs on the Python workers: the as-of merge of one partition (all rows of its keys)."""
    import numpy as np
    import pyarrow as pa

    received = list(batches)
    table = pa.Table.from_batches(received) if received else None
    if table is None or table.num_rows == 0:
        return
    kind = _ints(table.column(_KIND))
    is_feature = kind == 0
    feature_rows = np.flatnonzero(is_feature)
    spine_rows = np.flatnonzero(~is_feature)
    times, time_null = _ints(table.column(_TIME)), _nulls(table.column(_TIME))
    key_columns = [table.column(n) for n in plan.key_names]
    key_null = np.zeros(table.num_rows, dtype=bool)
    for column in key_columns:
        key_null |= _nulls(column)
    # Spine rows with a key and a time look for a match; the others keep null features.
    searching = spine_rows[~(key_null | time_null)[spine_rows]]
    n_features, n_searching = len(feature_rows), len(searching)
    codes, code_size = _key_codes(key_columns, np.concatenate([feature_rows, searching]))
    f_codes, s_codes = codes[:n_features], codes[n_features:]
    f_times, s_times = times[feature_rows], times[searching]
    if plan.has_visible:  # rows never written (null) take part in the duplicate check only
        written = ~_nulls(table.column(_VISIBLE))[feature_rows]
        f_visible = _ints(table.column(_VISIBLE))[feature_rows]
    else:
        written, f_visible = np.ones(n_features, dtype=bool), f_times

    # Sort keys are packed into one int64 when they fit (one fast argsort instead of a lexsort):
    # times as offsets from the partition's first instant, or as dense ranks when the span is too wide.
    tie_parts: list[tuple[npt.NDArray[np.int64], int]] = []
    if plan.has_tie:
        tie = table.column(_TIE).take(feature_rows)
        tie_order, tie_size = _densify(_order_codes(tie))
        tie_set = (~_nulls(tie)).astype(np.int64)
        tie_parts = [(tie_set, 2), (tie_order, tie_size)]  # a null created_time sorts first (loses)
    pool = np.concatenate([f_times, s_times, f_visible[written]] if plan.has_visible else [f_times, s_times])
    low = int(pool.min()) if len(pool) else 0
    time_size = int(pool.max()) - low + 1 if len(pool) else 1
    if _bits(code_size) + _bits(time_size) + 1 > 62:
        pool, time_size = _densify(pool)
        low = 0
    if _bits(code_size) + _bits(time_size) + 1 > 62:
        codes, code_size = _densify(codes)
        f_codes, s_codes = codes[:n_features], codes[n_features:]
    f_key, s_key = pool[:n_features] - low, pool[n_features : n_features + n_searching] - low
    v_key = np.zeros(n_features, dtype=np.int64)
    v_key[written] = pool[n_features + n_searching :] - low if plan.has_visible else f_key

    # Feature rows in (key, feature_time, created_time) order: the rank of a row is its position.
    by_rank = _argsort([(f_codes, code_size), (f_key, time_size), *tie_parts])
    ranked = feature_rows[by_rank]
    f_codes, f_key, v_key, f_times = f_codes[by_rank], f_key[by_rank], v_key[by_rank], f_times[by_rank]
    entering = np.flatnonzero(written[by_rank])  # ranks of the rows that take part in the merge
    n_entering = len(entering)

    duplicates = np.empty(0, dtype=np.int64)
    if plan.flag_duplicates and n_features > 1:
        same = (f_codes[1:] == f_codes[:-1]) & (f_key[1:] == f_key[:-1])
        if plan.has_tie:  # equal created_time, or both null
            tie_set, tie_order = tie_set[by_rank], tie_order[by_rank]
            same &= (tie_set[1:] == tie_set[:-1]) & ((tie_order[1:] == tie_order[:-1]) | (tie_set[1:] == 0))
        duplicates = ranked[1:][same]

    # One sort of feature rows (at the instant they became usable) and spine rows by (key, time), feature
    # rows first at equal times. Positions below n_entering are feature rows in rank order, so a running
    # max of their rank is the best feature row seen so far; ranks are ordered by key first, so it belongs
    # to the spine row's key only if its key matches.
    kinds = np.concatenate([np.zeros(n_entering, np.int64), np.ones(n_searching, np.int64)])
    merged = _argsort(
        [
            (np.concatenate([f_codes[entering], s_codes]), code_size),
            (np.concatenate([v_key[entering], s_key]), time_size),
            (kinds, 2),
        ]
    )
    is_feature_row = merged < n_entering
    ranks = np.full(len(merged), -1, dtype=np.int64)
    ranks[is_feature_row] = entering[merged[is_feature_row]]
    best = np.maximum.accumulate(ranks)
    candidate, asking = best[~is_feature_row], merged[~is_feature_row] - n_entering
    found = candidate >= 0
    if n_entering:
        candidate = np.where(found, candidate, 0)
        found &= f_codes[candidate] == s_codes[asking]
        if plan.ttl_us is not None:
            found &= f_times[candidate] >= s_times[asking] - plan.ttl_us
    match = np.full(table.num_rows, -1, dtype=np.int64)
    match[searching[asking[found]]] = ranked[candidate[found]]
    picked = match[spine_rows]

    spine_part = table.column(_SPINE).take(spine_rows).combine_chunks().flatten()
    indices = pa.array(picked, mask=picked < 0)
    feature_part = table.column(_FEAT).take(indices).combine_chunks().flatten()
    columns = [*spine_part, *feature_part]
    names = [*plan.spine_names, *plan.value_names]
    if plan.flag_duplicates:
        n_dup = len(duplicates)
        columns = [pa.concat_arrays([c, pa.nulls(n_dup, c.type)]) for c in columns]
        kinds = np.concatenate([np.ones(len(spine_rows), np.int8), np.full(n_dup, 2, np.int8)])
        columns.append(pa.array(kinds))
        extra = [*plan.key_names, _TIME, *([_TIE] if plan.has_tie else [])]
        for name in extra:
            column = table.column(name)
            columns.append(
                pa.concat_arrays([pa.nulls(len(spine_rows), column.type), column.take(duplicates).combine_chunks()])
            )
        names += [_KIND, *extra]
    yield from pa.Table.from_arrays(columns, names=names).to_batches(max_chunksize=65_536)


def _ints(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """int64 values of an integer or temporal Arrow column (nulls as 0)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(array.type) or pa.types.is_duration(array.type):
        array = array.view(pa.int64())
    elif pa.types.is_date32(array.type):
        array = array.view(pa.int32())
    elif pa.types.is_boolean(array.type):
        array = array.cast(pa.int8())
    if array.null_count:
        array = pc.fill_null(array, 0)
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _nulls(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_]:
    import numpy as np

    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _order_codes(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    """int64 codes in the column's sort order (equal values, equal codes; nulls get any code)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_temporal(kind) or pa.types.is_boolean(kind):
        return _ints(column)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.asarray(pc.rank(array, sort_keys="ascending", tiebreaker="dense").to_numpy(), dtype=np.int64)


def _key_codes(columns: list[pa.ChunkedArray], rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
    """Codes in ``[0, size)`` for the given rows (none with a null key): equal exactly when all keys are equal."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def dense(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], int]:
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_temporal(kind) or pa.types.is_boolean(kind):
            values = _ints(column)[rows]
            low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
            if high - low < _MAX_CODE:
                return values - low, high - low + 1
            return _densify(values)
        encoded = pc.dictionary_encode(column.take(pa.array(rows)).combine_chunks())
        indices = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
        return np.asarray(indices, dtype=np.int64), max(len(encoded.dictionary), 1)

    codes, size = dense(columns[0])
    for column in columns[1:]:
        more, more_size = dense(column)
        if size * more_size >= _MAX_CODE:
            codes, size = _densify(codes)
            if size * more_size >= _MAX_CODE:
                more, more_size = _densify(more)
        codes, size = codes * more_size + more, size * more_size
    return codes, size


def _bits(size: int) -> int:
    """Bits that hold the values ``0 .. size - 1``."""
    return max(size - 1, 0).bit_length()


def _argsort(parts: list[tuple[npt.NDArray[np.int64], int]]) -> npt.NDArray[np.int64]:
    """Row order by ``parts`` (most significant first; each ``(values in [0, size), size)``); ties in any order."""
    import numpy as np

    widths = [_bits(size) for _, size in parts]
    if sum(widths) > 62:
        return np.lexsort([values for values, _ in reversed(parts)])
    packed = np.zeros(len(parts[0][0]), dtype=np.int64)
    for (values, _), width in zip(parts, widths, strict=True):
        packed = (packed << width) | values
    return np.argsort(packed)


def _densify(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
    import numpy as np

    unique, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.int64), max(len(unique), 1)


def _finish(
    matched: DataFrame,
    spine_columns: list[str],
    value_columns: list[str],
    out_names: dict[str, str],
    feature_time: str,
    ttl: timedelta | None,
) -> DataFrame:
    """Unpack the spine struct and the matched feature struct, applying the TTL bound."""
    match = F.col(_MATCH)
    keep = match.isNotNull() & F.col(_TIME).isNotNull()
    if ttl is not None:
        keep = keep & (match[feature_time] >= F.col(_TIME) - F.lit(ttl))
    return matched.select(
        *[F.col(_SPINE)[c].alias(c) for c in spine_columns],
        *[F.when(keep, match[c]).alias(out_names[c]) for c in value_columns],
    )


def _col(name: str) -> Column:
    """A top-level column by its exact name (dots and backticks in names are not paths)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _all_not_null(columns: list[str]) -> Column:
    condition = _col(columns[0]).isNotNull()
    for c in columns[1:]:
        condition = condition & _col(c).isNotNull()
    return condition
