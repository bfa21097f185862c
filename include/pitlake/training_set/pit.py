"""Point-in-time (as-of) joins of a spine onto a feature table: where the time contract is implemented.

A spine row at time ``t`` takes, per feature table, the row of the same keys with the greatest
``feature_time <= t`` (and ``>= t - ttl`` with a TTL); see :func:`point_in_time_join`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pitlake.core.errors import ConfigError
from pitlake.training_set.pit_frame import (
    FEAT,
    KIND,
    MATCH,
    PREFIX,
    SPINE,
    TIE,
    TIME,
    all_not_null,
    checked,
    col,
    finish,
    observe_repeats,
    observed_metrics,
    plan_output,
    require_unique,
)

__all__ = ["Method", "leakage_violations", "point_in_time_join"]

Method = Literal["interval", "window"]

# Internal column names of the joins below (the shared ones are in pit_frame).
_ORDER = f"{PREFIX}order"
_DUP = f"{PREFIX}dup"
_NEXT = f"{PREFIX}next"  # interval join: the next feature time of the same keys


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
    found = observed_metrics(observation)
    if found is None or found["rows"]:
        require_unique(features, keys, feature_time, created_time)  # raises with the count and an example
    return result
