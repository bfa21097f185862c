"""What the point-in-time joins (:mod:`pitlake.training_set.pit`) and the reference joins of
``benchmarks/pit_baselines.py`` share: the internal column names, the argument checks that plan the
output columns, the repeated-feature-row checks, and the final unpacking with the TTL bound."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pitlake.core.errors import ConfigError, InputError

# Internal column names; the prefix keeps them apart from any user column.
PREFIX = "__pit_"
TIME = f"{PREFIX}t"
KIND = f"{PREFIX}kind"  # 0 = feature row, 1 = spine row: at equal times feature rows sort first
SPINE = f"{PREFIX}spine"
FEAT = f"{PREFIX}feat"
MATCH = f"{PREFIX}match"
TIE = f"{PREFIX}tie"  # created_time of feature rows: equal feature times sort by it

_TIME_TYPES = (T.TimestampType, T.TimestampNTZType)


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


def observed_metrics(observation: Observation) -> dict[str, Any] | None:
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

    Without metrics (see :func:`observed_metrics`) ``fallback`` checks the features apart (one aggregation)."""
    # The caller's write then reads these blocks.
    result = result.localCheckpoint(eager=True)
    found = observed_metrics(observation)
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
