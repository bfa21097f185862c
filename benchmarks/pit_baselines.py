"""Reference point-in-time joins, kept for the tests and the benchmark (``benchmarks/pit.py``), not shipped.

Both give exactly the results of :func:`pitlake.training_set.pit.point_in_time_join` (same
arguments, same checks through its :func:`~pitlake.training_set.pit.plan_output`, same
:class:`~pitlake.core.errors.InputError` for repeated (keys, feature_time[, created_time]) rows),
by other algorithms (S spine rows, F feature rows, P shuffle partitions):

- :func:`join_row_number_join`: the textbook equi-join on the keys with ``feature_time <= t`` (and
  the TTL bound, and ``computed_at <= t`` as of write), then ``row_number()`` per spine row. Its
  intermediate holds every earlier feature row of the key for every spine row: it grows with
  (spine rows per key) x (feature rows per key). Duplicates are checked by one aggregation first.
- :func:`bucketed_asof_join`: a vectorised as-of merge inside co-partitioned groups. Spine and
  feature rows are unioned (each side's columns packed in one struct) and hash partitioned by the
  keys: one shuffle of S + F rows, no Spark sort. Each partition goes to a Python worker through
  Arrow (``mapInArrow``), which sorts feature rows by (keys, feature_time, created_time) and
  spine ∪ feature rows by (keys, time) with numpy (keys as integer codes, sort keys packed into one
  int64 when they fit), takes a running maximum of the feature rank (the as-of match; as of write,
  feature rows enter at ``max(feature_time, computed_at)`` and compete on their rank) and gathers
  the matched values with Arrow ``take``, so values, nulls and types come back unchanged.
  O((S + F) log(S + F)), but every row crosses the JVM/Python boundary, and a worker holds its
  whole partition (about (S + F) / P rows plus Arrow buffers) in memory without spilling: one huge
  key must fit in one worker. Keys must be integers, booleans, strings (binary collation), binary,
  dates, timestamps or decimals and every column must have an Arrow type (else
  :class:`~pitlake.core.errors.ConfigError`); the Python workers (``PYSPARK_PYTHON``) need numpy and
  pyarrow. Repeats are flagged in the same merge and read through a DataFrame observation, and the
  result comes back locally checkpointed, as the production join does.

This module is not installed with pitlake: the Python workers receive its functions by value
(registered with Spark's cloudpickle below), so they need not import it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

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
    plan_output,
    require_unique,
)
from pyspark import cloudpickle
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["bucketed_asof_join", "join_row_number_join"]

# The merge runs on Python workers (possibly those of a Spark Connect server started elsewhere),
# where the repository root need not be importable: ship this module's functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

_ROW_ID = f"{PREFIX}row_id"
_RANK = f"{PREFIX}rank"
_VISIBLE = f"{PREFIX}visible"  # as of write: when a feature row became usable, max(feature_time, computed_at)


def join_row_number_join(
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
) -> DataFrame:
    """``point_in_time_join`` by join then rank: every earlier feature row of the key, the latest kept (lazy)."""
    keys, value_columns, out_names = _plan(
        spine, features, keys, spine_time, feature_time, ttl, created_time, as_of_write, prefix, feature_time_as
    )
    if check_unique:
        require_unique(features, keys, feature_time, created_time)
    return _join_row_number(
        spine, features, keys, spine_time, feature_time, ttl, created_time, as_of_write, value_columns, out_names
    )


def bucketed_asof_join(
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
) -> DataFrame:
    """``point_in_time_join`` by a per-partition as-of merge in Python workers (numpy, Arrow).

    Raises :class:`~pitlake.core.errors.ConfigError` for key or column types it cannot carry.
    """
    keys, value_columns, out_names = _plan(
        spine, features, keys, spine_time, feature_time, ttl, created_time, as_of_write, prefix, feature_time_as
    )
    unsupported = _asof_supported(spine, features, keys)
    if unsupported is not None:
        raise ConfigError(f"bucketed_asof_join cannot join these tables: {unsupported}; use point_in_time_join")
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
    is_repeat = F.col(KIND) == 2
    observed, observation = observe_repeats(merged, is_repeat, keys, feature_time, created_time)
    final = [*spine.columns, *(out_names[c] for c in value_columns)]
    fallback = lambda: require_unique(features, keys, feature_time, created_time)  # noqa: E731
    result = observed.where(~is_repeat).select(*[col(c) for c in final])
    return checked(result, observation, feature_time, created_time, fallback)


def _plan(
    spine: DataFrame,
    features: DataFrame,
    keys: Sequence[str],
    spine_time: str,
    feature_time: str,
    ttl: timedelta | None,
    created_time: str | None,
    as_of_write: str | None,
    prefix: str,
    feature_time_as: str | None,
) -> tuple[list[str], list[str], dict[str, str]]:
    """(keys, value columns, feature column -> output name), after the production join's checks."""
    keys = list(keys)
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
    return keys, [c for c in features.columns if c not in keys], out_names


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
    key_names = [f"{PREFIX}k{i}" for i in range(len(keys))]
    s = spine.select(
        *[col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        col(spine_time).alias(TIME),
        F.struct(*[col(c) for c in spine.columns]).alias(SPINE),
        F.monotonically_increasing_id().alias(_ROW_ID),
    )
    feat = F.struct(*[col(c) for c in value_columns]).alias(FEAT)
    f = features.where(all_not_null([*keys, feature_time])).select(
        *[col(k).alias(f"{n}_f") for k, n in zip(keys, key_names, strict=True)], feat
    )
    ft = F.col(FEAT)[feature_time]
    cond = [F.col(n) == F.col(f"{n}_f") for n in key_names] + [ft <= F.col(TIME)]
    if ttl is not None:
        cond.append(ft >= F.col(TIME) - F.lit(ttl))
    if as_of_write:
        cond.append(F.col(FEAT)[as_of_write] <= F.col(TIME))
    condition = cond[0]
    for c in cond[1:]:
        condition = condition & c
    ordering = [ft.desc()] + ([F.col(FEAT)[created_time].desc_nulls_last()] if created_time else [])
    ranked = s.join(f, condition, "left").withColumn(
        _RANK, F.row_number().over(Window.partitionBy(_ROW_ID).orderBy(*ordering))
    )
    matched = ranked.where(F.col(_RANK) == 1).select(TIME, SPINE, F.col(FEAT).alias(MATCH))
    return finish(matched, spine.columns, value_columns, out_names, feature_time, None)


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

    Returns the final columns, plus ``KIND`` (1 = spine row, 2 = repeated feature row) and the
    repeated row's keys, ``TIME`` and ``TIE`` when ``flag_duplicates``.
    """
    key_names = [f"{PREFIX}k{i}" for i in range(len(keys))]
    usable = all_not_null([*keys, feature_time])
    spine_struct = F.struct(*[col(c) for c in spine.columns])
    feat = F.struct(*[col(c) for c in value_columns])
    # As of write: the instant a row became usable; null (never written) rows still count as duplicates.
    written = col(as_of_write) if as_of_write else F.lit(None)
    visible = F.when(written.isNotNull(), F.greatest(col(feature_time), written))
    spine_type = spine.select(spine_struct).schema.fields[0].dataType
    feat_type = features.select(feat).schema.fields[0].dataType
    time_type = spine.schema[spine_time].dataType
    tie_type = features.schema[created_time].dataType if created_time else None
    spine_side = spine.select(
        *[col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        col(spine_time).alias(TIME),
        F.lit(1).cast("byte").alias(KIND),
        *([F.lit(None).cast(tie_type).alias(TIE)] if tie_type else []),
        *([F.lit(None).cast(time_type).alias(_VISIBLE)] if as_of_write else []),
        spine_struct.alias(SPINE),
        F.lit(None).cast(feat_type).alias(FEAT),
    )
    feature_side = features.where(usable).select(
        *[col(k).alias(n) for k, n in zip(keys, key_names, strict=True)],
        col(feature_time).alias(TIME),
        F.lit(0).cast("byte").alias(KIND),
        *([col(created_time).alias(TIE)] if created_time else []),
        *([visible.alias(_VISIBLE)] if as_of_write else []),
        F.lit(None).cast(spine_type).alias(SPINE),
        feat.alias(FEAT),
    )
    # One shuffle: every row of a key lands in one partition (AQE may merge small partitions).
    union = spine_side.unionByName(feature_side).repartition(*key_names)
    union_types = {f.name: f.dataType for f in union.schema.fields}
    value_fields = [T.StructField(out_names[c], features.schema[c].dataType, True) for c in value_columns]
    # Every column nullable, as the other methods give them.
    out_fields = [*(T.StructField(f.name, f.dataType, True) for f in spine.schema.fields), *value_fields]
    if flag_duplicates:
        out_fields += [
            T.StructField(KIND, T.ByteType(), False),
            *[T.StructField(n, union_types[n], True) for n in key_names],
            T.StructField(TIME, union_types[TIME], True),
            *([T.StructField(TIE, union_types[TIE], True)] if created_time else []),
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
    kind = _ints(table.column(KIND))
    is_feature = kind == 0
    feature_rows = np.flatnonzero(is_feature)
    spine_rows = np.flatnonzero(~is_feature)
    times, time_null = _ints(table.column(TIME)), _nulls(table.column(TIME))
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
        tie = table.column(TIE).take(feature_rows)
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

    spine_part = table.column(SPINE).take(spine_rows).combine_chunks().flatten()
    indices = pa.array(picked, mask=picked < 0)
    feature_part = table.column(FEAT).take(indices).combine_chunks().flatten()
    columns = [*spine_part, *feature_part]
    names = [*plan.spine_names, *plan.value_names]
    if plan.flag_duplicates:
        n_dup = len(duplicates)
        columns = [pa.concat_arrays([c, pa.nulls(n_dup, c.type)]) for c in columns]
        kinds = np.concatenate([np.ones(len(spine_rows), np.int8), np.full(n_dup, 2, np.int8)])
        columns.append(pa.array(kinds))
        extra = [*plan.key_names, TIME, *([TIE] if plan.has_tie else [])]
        for name in extra:
            column = table.column(name)
            columns.append(
                pa.concat_arrays([pa.nulls(len(spine_rows), column.type), column.take(duplicates).combine_chunks()])
            )
        names += [KIND, *extra]
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
