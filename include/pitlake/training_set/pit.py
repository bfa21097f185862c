"""Point-in-time (as-of) joins of a spine onto a feature table: where the time contract is implemented.

A spine row at time ``t`` takes, per feature table, the row of the same keys with the greatest
``feature_time <= t`` (and ``>= t - ttl`` with a TTL); see :func:`point_in_time_join`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pitlake.core.errors import ConfigError, InputError

__all__ = ["Method", "leakage_violations", "point_in_time_join"]

Method = Literal["interval", "window"]

# Internal column names; the prefix keeps them apart from any user column. The public names here and
# below "shared with the baselines" are used by the reference joins in benchmarks/pit_baselines.py.
PREFIX = "__pit_"
TIME = f"{PREFIX}t"
KIND = f"{PREFIX}kind"  # 0 = feature row, 1 = spine row: at equal times feature rows sort first
SPINE = f"{PREFIX}spine"
FEAT = f"{PREFIX}feat"
MATCH = f"{PREFIX}match"
TIE = f"{PREFIX}tie"  # created_time of feature rows: equal feature times sort by it
_ORDER = f"{PREFIX}order"
_DUP = f"{PREFIX}dup"
_NEXT = f"{PREFIX}next"  # interval join: the next feature time of the same keys

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
       ``feature_time`` are an :class:`~pitlake.core.errors.InputError`, unless ``created_time`` names
       a column: then the greatest ``created_time`` wins (a null one loses to any value).
    5. With a ``ttl``, use it only if ``feature_time >= t - ttl`` (inclusive); an older match is
       dropped, not replaced by anything else (every other candidate is older still).
    6. No candidate left: the feature columns are null.

    Both methods give these results (S spine rows, F feature rows; S_k, F_k those of one key).
    ``"interval"`` (the default) sorts the feature rows by (keys, feature_time, created_time) once,
    gives each the interval ``[feature_time, next feature_time)`` in which it is the latest (a
    ``lead`` window), and sort-merge joins the spine rows into their interval on the keys with
    ``feature_time <= t < next`` and the TTL bound: O(F log F + S log S + Σ_k S_k·F_k) comparisons,
    no intermediate larger than S + F rows. The Σ_k S_k·F_k term dominates for a key with many rows
    on both sides (a global feature under a constant key); use ``"window"`` there. In as-of-write
    mode it runs as ``"window"``. ``"window"`` shuffles spine ∪ features by the keys, sorts them by
    (keys, time, kind) and carries the best feature row forward in a running window (last non-null;
    ``max_by`` on (feature_time, created_time) as of write): O((S + F) log(S + F)), no intermediate
    larger than S + F rows; one task sorts and scans all rows of a key (spilling a large one).

    Eager by default: with ``check_unique=True`` the join runs at call time, so duplicate feature
    rows fail here (an :class:`~pitlake.core.errors.InputError` naming their count and an example),
    not in a later write. They are counted in the same sorted pass (a DataFrame observation; when
    some are found, one aggregation over the features names them) and the result comes back locally
    checkpointed (executor memory and disk), so writing it does not recompute the join; as of write,
    the window method checks in a separate aggregation and stays lazy. ``check_unique=False`` skips
    the check and returns a lazy DataFrame; ties are then broken arbitrarily, so use it only when
    uniqueness is guaranteed upstream (the feature tables' validation suites check it).

    Raises :class:`~pitlake.core.errors.ConfigError` for an unknown ``method``, missing columns,
    non-timestamp time columns, a negative ``ttl`` or output names that clash with spine columns
    (use ``prefix``), and :class:`~pitlake.core.errors.InputError` for duplicate (keys,
    feature_time) rows.
    """
    if method not in ("interval", "window"):
        raise ConfigError(f"unknown point_in_time_join method {method!r}: use 'interval' or 'window'")
    keys = list(keys)
    value_columns = [c for c in features.columns if c not in keys]
    out_names = plan_output(
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
    if method == "interval" and as_of_write is None:
        return _interval_join(
            spine, features, keys, spine_time, feature_time, ttl, created_time, value_columns, out_names, check_unique
        )
    # In as-of-write mode rows sort by write time, so equal feature times are not neighbours: check apart.
    flag_duplicates = check_unique and as_of_write is None
    if check_unique and not flag_duplicates:
        require_unique(features, keys, feature_time, created_time)
    carried = _carry_forward(
        spine, features, keys, spine_time, feature_time, created_time, as_of_write, value_columns, flag_duplicates
    )
    if not flag_duplicates:
        return finish(carried.where(F.col(KIND) == 1), spine.columns, value_columns, out_names, feature_time, ttl)
    # One job does the join and counts duplicates on the way (an observation, no second pass).
    # Metrics are collected row by row: look only at spine rows and repeats, not at every feature row.
    observed, observation = observe_repeats(
        carried.where((F.col(KIND) == 1) | F.col(_DUP)), F.col(_DUP), keys, feature_time, created_time
    )
    result = finish(observed.where(F.col(KIND) == 1), spine.columns, value_columns, out_names, feature_time, ttl)
    fallback = lambda: require_unique(features, keys, feature_time, created_time)  # noqa: E731
    return checked(result, observation, feature_time, created_time, fallback)


def leakage_violations(df: DataFrame, spine_time: str, feature_time_col: str, ttl: timedelta | None = None) -> int:
    """Rows whose matched feature time is after the spine time, or (with ``ttl``) older than ``spine_time - ttl``.

    Rows without a match (null feature time) are not violations. A correct training set gives 0.
    """
    matched, at = col(feature_time_col), col(spine_time)
    bad = matched > at
    if ttl is not None:
        bad = bad | (matched < at - F.lit(ttl))
    return df.where(bad).count()


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

    Returns one row per input row with ``KIND``, ``TIME``, ``SPINE`` and ``MATCH`` (the chosen
    feature struct, before the TTL), plus the key columns, ``TIE`` and ``_DUP`` when
    ``flag_duplicates``.
    """
    key_names = [f"{PREFIX}k{i}" for i in range(len(keys))]
    feat = F.struct(*[col(c) for c in value_columns])
    order = F.struct(col(feature_time), col(created_time)) if created_time else col(feature_time)
    # The instant a feature row becomes usable: its feature_time, or later when it was written later.
    visible = col(feature_time)
    usable = all_not_null([*keys, feature_time])
    if as_of_write:
        visible = F.greatest(visible, col(as_of_write))
        usable = usable & col(as_of_write).isNotNull()
    spine_struct = F.struct(*[col(c) for c in spine.columns])
    spine_type = spine.select(spine_struct).schema.fields[0].dataType
    feat_type = features.select(feat).schema.fields[0].dataType
    order_type = features.select(order).schema.fields[0].dataType
    tie_type = features.select(col(created_time)).schema.fields[0].dataType if created_time else T.NullType()

    # With as_of_write the carried row is the one with the greatest (feature_time, created_time) seen
    # so far (max_by ignores the spine rows, whose ordering is null): a row written late sorts at
    # its write time but still competes on feature_time. Without it, rows sort by exactly that
    # order, so the last feature row seen is the one, and no ordering column needs to travel.
    order_columns = [_ORDER] if as_of_write else []
    spine_side = spine.select(
        *[col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        col(spine_time).alias(TIME),
        F.lit(1).alias(KIND),
        *([F.lit(None).cast(tie_type).alias(TIE)] if created_time else []),
        spine_struct.alias(SPINE),
        *[F.lit(None).cast(order_type).alias(c) for c in order_columns],
        F.lit(None).cast(feat_type).alias(FEAT),
    )
    feature_side = features.where(usable).select(
        *[col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        visible.alias(TIME),
        F.lit(0).alias(KIND),
        *([col(created_time).alias(TIE)] if created_time else []),
        F.lit(None).cast(spine_type).alias(SPINE),
        *[order.alias(c) for c in order_columns],
        feat.alias(FEAT),
    )
    # Feature rows sort before spine rows at the same instant (feature_time == spine time is used);
    # equal (time, created_time) feature rows end up next to each other, which flags duplicates.
    sort_order = [F.col(TIME).asc_nulls_first(), F.col(KIND)]
    if created_time:
        sort_order.append(F.col(TIE).asc_nulls_first())
    by_time = Window.partitionBy(*key_names).orderBy(*sort_order)
    running = by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    best = F.max_by(F.col(FEAT), F.col(_ORDER)) if as_of_write else F.last(F.col(FEAT), ignorenulls=True)
    columns: list[Column | str] = [KIND, TIME, SPINE, best.over(running).alias(MATCH)]
    if flag_duplicates:
        # A feature row whose (time, created_time) equals the row sorted just before it is a repeat: its
        # rank (first row of its peers) differs from its row number. Both share the running frame.
        repeat = F.rank().over(by_time) != F.row_number().over(by_time)
        columns += [*key_names, *([TIE] if created_time else []), ((F.col(KIND) == 0) & repeat).alias(_DUP)]
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
    key_names = [f"{PREFIX}k{i}" for i in range(len(keys))]
    value_names = {c: f"{PREFIX}v{i}" for i, c in enumerate(value_columns)}
    by_time = Window.partitionBy(*key_names).orderBy(
        F.col(TIME).asc(), *([F.col(TIE).asc_nulls_first()] if created_time else [])
    )
    following = F.lead(F.col(TIME)).over(by_time)
    feature_side = (
        features.where(all_not_null([*keys, feature_time]))
        .select(
            *[col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
            col(feature_time).alias(TIME),
            *([col(created_time).alias(TIE)] if created_time else []),
            *[col(c).alias(value_names[c]) for c in value_columns],
        )
        .withColumn(_NEXT, following)
    )
    observation = None
    if check_unique:
        # The earlier of two rows with equal (feature_time, created_time) is a repeat: n equal rows flag n - 1.
        # Only their number is observed (cheap per row); the rare failure then finds count and example apart.
        repeat = F.col(_NEXT) == F.col(TIME)
        if created_time:
            repeat = repeat & F.lead(F.col(TIE)).over(by_time).eqNullSafe(F.col(TIE))
        observation = Observation(f"pit_repeats_{uuid.uuid4().hex}")
        feature_side = feature_side.withColumn(_DUP, repeat).observe(
            observation, F.sum(F.col(_DUP).cast("long")).alias("rows")
        )
    at = F.col(TIME)
    t = col(spine_time)
    condition = (at <= t) & (F.col(_NEXT).isNull() | (t < F.col(_NEXT)))
    for k, n in zip(keys, key_names, strict=True):
        condition = (col(k) == F.col(n)) & condition
    if ttl is not None:
        condition = condition & (at >= t - F.lit(ttl))
    joined = spine.join(feature_side.where(F.col(_NEXT).isNull() | (F.col(_NEXT) > at)), condition, "left")
    result = joined.select(
        *[col(c) for c in spine.columns], *[F.col(value_names[c]).alias(out_names[c]) for c in value_columns]
    )
    if observation is None:
        return result
    result = result.localCheckpoint(eager=True)  # fills the observation; the caller's write reads these blocks
    # No metrics at all: Spark pruned the feature side (an empty spine, say), so nothing was counted.
    found = _observed(observation)
    if found is None or found["rows"]:
        require_unique(features, keys, feature_time, created_time)  # raises with the count and an example
    return result


# --------------------------------------------------------------------------- shared with the baselines


def plan_output(
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
    if any(name.startswith(PREFIX) for name in [*spine.columns, *features.columns]):
        raise ConfigError(f"column names starting with {PREFIX!r} are reserved by point_in_time_join")
    return out


def require_unique(features: DataFrame, keys: list[str], feature_time: str, created_time: str | None) -> None:
    """Raise InputError when usable feature rows repeat (keys, feature_time[, created_time]); one aggregation."""
    group = [*keys, feature_time, *([created_time] if created_time else [])]
    usable = all_not_null([*keys, feature_time])
    counts = features.where(usable).groupBy(*[col(c) for c in group]).count().where(F.col("count") > 1)
    summary = counts.agg(
        F.sum(F.col("count") - 1).alias("rows"),
        F.min(F.struct(*[col(c) for c in group])).alias("example"),
    ).first()
    if summary is not None and summary["rows"]:
        raise _duplicates_error(summary["rows"], summary["example"].asDict(), feature_time, created_time)


def _duplicates_error(rows: int, example: dict[str, object], feature_time: str, created_time: str | None) -> InputError:
    shown = ", ".join(f"{k}={v}" for k, v in example.items())
    what = f"(keys, {feature_time}{', ' + created_time if created_time else ''})"
    fix = "deduplicate the feature table" if created_time else "name a created_time column or deduplicate the table"
    return InputError(f"{rows} feature rows repeat the {what} of another row, e.g. {shown}: {fix}")


def observe_repeats(
    df: DataFrame, is_repeat: Column, keys: list[str], feature_time: str, created_time: str | None
) -> tuple[DataFrame, Observation]:
    """Count the rows flagged as repeated feature rows (and keep the least as an example) while ``df`` runs.

    ``df`` carries the keys as ``PREFIX + "k<i>"``, the feature time as ``TIME``, created_time as ``TIE``."""
    observation = Observation(f"pit_duplicates_{uuid.uuid4().hex}")
    key_names = [f"{PREFIX}k{i}" for i in range(len(keys))]
    example = F.struct(
        *[F.col(n).alias(k) for k, n in zip(keys, key_names, strict=True)],
        F.col(TIME).alias(feature_time),
        *([F.col(TIE).alias(created_time)] if created_time else []),
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


def checked(
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


def finish(
    matched: DataFrame,
    spine_columns: list[str],
    value_columns: list[str],
    out_names: dict[str, str],
    feature_time: str,
    ttl: timedelta | None,
) -> DataFrame:
    """Unpack the spine struct and the matched feature struct (``SPINE``, ``MATCH``), applying the TTL bound."""
    match = F.col(MATCH)
    keep = match.isNotNull() & F.col(TIME).isNotNull()
    if ttl is not None:
        keep = keep & (match[feature_time] >= F.col(TIME) - F.lit(ttl))
    return matched.select(
        *[F.col(SPINE)[c].alias(c) for c in spine_columns],
        *[F.when(keep, match[c]).alias(out_names[c]) for c in value_columns],
    )


def col(name: str) -> Column:
    """A top-level column by its exact name (dots and backticks in names are not paths)."""
    return F.col("`" + name.replace("`", "``") + "`")


def all_not_null(columns: list[str]) -> Column:
    condition = col(columns[0]).isNotNull()
    for c in columns[1:]:
        condition = condition & col(c).isNotNull()
    return condition
