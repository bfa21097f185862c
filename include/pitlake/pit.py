"""Point-in-time (as-of) joins of a spine onto feature tables: where the time contract is implemented.

A spine row at time ``t`` takes, per feature table, the row of the same keys with the greatest
``feature_time <= t`` (and ``>= t - ttl`` with a TTL); see :func:`point_in_time_join`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pitlake.errors import ConfigError, InputError

__all__ = ["ViewInput", "build_training_set", "leakage_violations", "point_in_time_join"]

Method = Literal["window", "join_row_number"]

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
    method: Method = "window",
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

    Cost (``method="window"``, the default): one shuffle of spine ∪ features by the keys and one
    sort by (keys, time) inside each partition, then a running window that carries all feature
    columns as one struct (last non-null; ``max_by`` on (feature_time, created_time) in
    as-of-write mode). Work is O((S + F) log(S + F)) and no intermediate is larger
    than S + F rows (the join-then-rank alternative materialises every earlier feature row of
    the key for every spine row). Skew: all rows of one key are sorted and scanned by one task,
    and Spark's window operator buffers one key's rows (spilling to disk when large), so a key
    with hundreds of millions of rows is slow but correct; salting by (key, time range) would
    need a second carry pass across ranges and is not done.

    Eager by default: with ``check_unique=True`` the join runs once at call time so that
    duplicate feature rows fail here, as an :class:`~pitlake.errors.InputError` naming their
    count and an example, rather than inside a later write. Duplicates are counted in the same
    sorted pass (rank vs row number, read through a DataFrame observation), and the result comes
    back locally checkpointed (executor memory and disk, freed when the DataFrame is garbage
    collected): writing it does not recompute the join. Losing an executor before that write
    fails the write, and the task's retry recomputes. In as-of-write mode rows are sorted by write
    time, so the check is a separate aggregation over the features and the result stays lazy.
    ``check_unique=False`` skips the check and returns a lazy DataFrame; ties are then broken
    arbitrarily, so use it only when uniqueness is guaranteed upstream.

    ``method="join_row_number"`` is the textbook equi-join on keys with ``feature_time <= t``
    followed by ``row_number()`` per spine row: its intermediate grows with (feature rows per
    key) x (spine rows per key). It is kept as a reference for tests and the benchmark only.

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
    if method != "window":
        raise ConfigError(f"unknown point_in_time_join method {method!r}: use 'window' or 'join_row_number'")
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
    observation = Observation(f"pit_duplicates_{uuid.uuid4().hex}")
    key_names = [f"{_P}k{i}" for i in range(len(keys))]
    example = F.struct(
        *[F.col(n).alias(k) for k, n in zip(keys, key_names, strict=True)],
        F.col(_TIME).alias(feature_time),
        *([F.col(_TIE).alias(created_time)] if created_time else []),
    )
    # Metrics are collected row by row: look only at spine rows and repeats, not at every feature row.
    observed = carried.where((F.col(_KIND) == 1) | F.col(_DUP)).observe(
        observation,
        F.sum(F.col(_DUP).cast("long")).alias("rows"),
        F.min(F.when(F.col(_DUP), example)).alias("example"),
    )
    result = _finish(observed.where(F.col(_KIND) == 1), spine.columns, value_columns, out_names, feature_time, ttl)
    # Materialise once (the job that fills the observation); the caller's write then reads these blocks.
    result = result.localCheckpoint(eager=True)
    found = observation.get
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
