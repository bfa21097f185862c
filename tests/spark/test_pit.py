"""Point-in-time join: exact hand-written cases, then property tests against a brute-force oracle."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pitlake.core.errors import ConfigError, InputError
from pitlake.training_set.build import ViewInput, build_training_set
from pitlake.training_set.pit import leakage_violations, point_in_time_join
from pyspark.sql import functions as F

from benchmarks.pit_baselines import bucketed_asof_join, join_row_number_join

# The bucketed as-of merge runs Python workers: they must be this interpreter (with pyarrow), read at session start.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# Every exact case runs with both production methods and the bucketed as-of baseline; the join-then-rank
# baseline where it is noted. The baselines live in benchmarks/pit_baselines.py, not in the package.
METHODS = ["interval", "bucketed_asof", "window"]
BASELINES = {"bucketed_asof": bucketed_asof_join, "join_row_number": join_row_number_join}

SPINE_SCHEMA = "sid int, customer_id string, label_time timestamp"
FEATURE_SCHEMA = "customer_id string, feature_time timestamp, spend double"
US = timedelta(microseconds=1)


def t(day: int, hour: int = 0) -> datetime:
    """2026-01-<day> <hour>:00 UTC."""
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def utc(value: Any) -> Any:
    # Collected timestamps are naive local time: make them comparable with the UTC inputs.
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def rows(df: Any, *columns: str) -> list[tuple[Any, ...]]:
    out = [tuple(utc(r[c]) for c in columns) for r in df.select(*columns).collect()]
    return sorted(out, key=lambda row: tuple((v is None, v if v is not None else 0) for v in row))


def join(spine: Any, features: Any, *, method: str, **kwargs: Any) -> Any:
    """``point_in_time_join`` with a production ``method``, or the baseline of that name."""
    if method in BASELINES:
        return BASELINES[method](spine, features, **kwargs)
    return point_in_time_join(spine, features, method=method, **kwargs)


def pit(spark: Any, spine: list[tuple[Any, ...]], features: list[tuple[Any, ...]], **kwargs: Any) -> Any:
    spine_schema = kwargs.pop("spine_schema", SPINE_SCHEMA)
    feature_schema = kwargs.pop("feature_schema", FEATURE_SCHEMA)
    return join(
        spark.createDataFrame(spine, spine_schema),
        spark.createDataFrame(features, feature_schema),
        keys=["customer_id"],
        spine_time="label_time",
        feature_time="feature_time",
        **kwargs,
    )


# --------------------------------------------------------------------------- exact cases


@pytest.mark.parametrize("method", [*METHODS, "join_row_number"])
def test_equal_time_is_used_and_later_rows_never(spark: Any, method: str) -> None:
    spine = [(1, "a", t(5)), (2, "b", t(5, 12))]
    features = [
        ("a", t(4), 4.0),
        ("a", t(5), 5.0),  # feature_time == label_time: used
        ("a", t(5) + US, 99.0),  # canary, one microsecond after the label time
        ("b", t(5), 50.0),
        ("b", t(6), 99.0),  # canary, a day after
    ]
    result = pit(spark, spine, features, method=method)
    assert result.columns == ["sid", "customer_id", "label_time", "feature_time", "spend"]
    assert rows(result, "sid", "feature_time", "spend") == [(1, t(5), 5.0), (2, t(5), 50.0)]


@pytest.mark.parametrize("method", [*METHODS, "join_row_number"])
def test_ttl_bound_is_inclusive(spark: Any, method: str) -> None:
    spine = [(1, "a", t(5)), (2, "b", t(5)), (3, "c", t(5))]
    features = [
        ("a", t(4), 1.0),  # exactly label_time - ttl: kept
        ("b", t(4) - US, 2.0),  # one microsecond older: dropped, and nothing else is taken
        ("b", t(3), 3.0),
        ("c", t(5), 4.0),
    ]
    result = pit(spark, spine, features, ttl=timedelta(days=1), method=method)
    assert rows(result, "sid", "feature_time", "spend") == [(1, t(4), 1.0), (2, None, None), (3, t(5), 4.0)]


@pytest.mark.parametrize("method", METHODS)
def test_zero_ttl_takes_only_exact_times(spark: Any, method: str) -> None:
    spine = [(1, "a", t(5)), (2, "b", t(5))]
    features = [("a", t(5), 1.0), ("b", t(5) - US, 2.0)]
    result = pit(spark, spine, features, ttl=timedelta(0), method=method)
    assert rows(result, "sid", "spend") == [(1, 1.0), (2, None)]


@pytest.mark.parametrize("method", METHODS)
def test_null_key_null_time_and_missing_key_get_nulls(spark: Any, method: str) -> None:
    spine = [(1, None, t(5)), (2, "a", None), (3, "zzz", t(5)), (4, "a", t(5))]
    features = [(None, t(1), 9.0), ("a", t(1), 1.0)]  # a null-keyed feature row never matches
    result = pit(spark, spine, features, method=method)
    assert rows(result, "sid", "customer_id", "feature_time", "spend") == [
        (1, None, None, None),
        (2, "a", None, None),
        (3, "zzz", None, None),
        (4, "a", t(1), 1.0),
    ]


@pytest.mark.parametrize("method", METHODS)
def test_empty_feature_table_keeps_every_spine_row(spark: Any, method: str) -> None:
    spine = [(1, "a", t(5)), (2, "b", t(6))]
    result = pit(spark, spine, [], method=method)
    assert rows(result, "sid", "feature_time", "spend") == [(1, None, None), (2, None, None)]


@pytest.mark.parametrize("method", METHODS)
def test_empty_spine_gives_empty_result(spark: Any, method: str) -> None:
    result = pit(spark, [], [("a", t(1), 1.0)], method=method)
    assert result.count() == 0
    assert result.columns == ["sid", "customer_id", "label_time", "feature_time", "spend"]


@pytest.mark.parametrize("method", METHODS)
def test_duplicate_spine_rows_stay_duplicates(spark: Any, method: str) -> None:
    spine = [(1, "a", t(5)), (1, "a", t(5)), (1, "a", t(5)), (2, "a", t(2))]
    features = [("a", t(1), 1.0), ("a", t(3), 3.0)]
    result = pit(spark, spine, features, method=method)
    assert rows(result, "sid", "spend") == [(1, 3.0), (1, 3.0), (1, 3.0), (2, 1.0)]


@pytest.mark.parametrize(
    ("method", "as_of_write"),
    [(m, w) for m in METHODS for w in (None, "computed_at")] + [("join_row_number", None)],
)
def test_duplicate_feature_times_raise_with_count_and_example(spark: Any, method: str, as_of_write: str) -> None:
    spine = [(1, "a", t(5))]
    features = [
        ("b", t(2), 1.0, t(2)),
        ("b", t(2), 2.0, t(3)),
        ("b", t(2), 3.0, t(4)),
        ("c", t(1), 1.0, t(1)),
        ("c", t(1), 1.0, t(1)),
        ("a", t(1), 1.0, t(1)),
    ]
    with pytest.raises(InputError) as err:
        pit(
            spark,
            spine,
            features,
            feature_schema="customer_id string, feature_time timestamp, spend double, computed_at timestamp",
            method=method,
            as_of_write=as_of_write,
        )
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("3 feature rows repeat the (keys, feature_time)")
    assert "customer_id=b" in message
    assert "created_time" in message  # says how to fix it


@pytest.mark.parametrize("method", [*METHODS, "join_row_number"])
def test_created_time_resolves_equal_feature_times(spark: Any, method: str) -> None:
    schema = "customer_id string, feature_time timestamp, spend double, created_at timestamp"
    spine = [(1, "a", t(5)), (2, "b", t(5))]
    features = [
        ("a", t(4), 1.0, t(4, 1)),
        ("a", t(4), 2.0, t(4, 3)),  # latest created_time wins
        ("a", t(4), 3.0, t(4, 2)),
        ("b", t(4), 4.0, None),  # a null created_time loses to any value
        ("b", t(4), 5.0, t(1)),
    ]
    result = pit(spark, spine, features, feature_schema=schema, created_time="created_at", method=method)
    assert rows(result, "sid", "spend", "created_at") == [(1, 2.0, t(4, 3)), (2, 5.0, t(1))]


@pytest.mark.parametrize("method", METHODS)
def test_created_time_ties_still_raise(spark: Any, method: str) -> None:
    schema = "customer_id string, feature_time timestamp, spend double, created_at timestamp"
    features = [("a", t(4), 1.0, t(4)), ("a", t(4), 2.0, t(4))]
    with pytest.raises(InputError, match=r"^1 feature rows repeat the \(keys, feature_time, created_at\)"):
        pit(spark, [(1, "a", t(5))], features, feature_schema=schema, created_time="created_at", method=method)


@pytest.mark.parametrize("method", METHODS)
def test_repeats_raise_even_when_the_spine_is_empty(spark: Any, method: str) -> None:
    # Spark drops the feature side of a join with an empty spine, so the check cannot ride on the join.
    features = [("a", t(4), 1.0), ("a", t(4), 2.0), ("b", t(4), 2.0)]
    expected = r"^1 feature rows repeat the \(keys, feature_time\) of another row, e\.g\. customer_id=a,"
    with pytest.raises(InputError, match=expected):
        pit(spark, [], features, method=method)


@pytest.mark.parametrize("method", [*METHODS, "join_row_number"])
def test_as_of_write_ignores_rows_written_after_the_spine_time(spark: Any, method: str) -> None:
    schema = "customer_id string, feature_time timestamp, spend double, computed_at timestamp"
    spine = [(1, "a", t(5)), (2, "a", t(7)), (3, "b", t(7)), (4, "c", t(9))]
    features = [
        ("a", t(3), 3.0, t(3, 1)),
        ("a", t(4), 4.0, t(6)),  # backfilled on day 6: invisible on day 5, used on day 7
        ("b", t(4), 40.0, t(4)),
        ("b", t(2), 20.0, t(6)),  # an older day rewritten later: visible, but not the latest feature_time
        ("c", t(8), 80.0, None),  # never written (null computed_at): never used
        ("c", t(1), 10.0, t(1)),
    ]
    result = pit(spark, spine, features, feature_schema=schema, as_of_write="computed_at", method=method)
    assert rows(result, "sid", "feature_time", "spend") == [
        (1, t(3), 3.0),
        (2, t(4), 4.0),
        (3, t(4), 40.0),
        (4, t(1), 10.0),
    ]
    without = pit(spark, spine, features, feature_schema=schema, method=method)  # the leak it prevents
    assert rows(without, "sid", "spend") == [(1, 4.0), (2, 4.0), (3, 40.0), (4, 80.0)]


@pytest.mark.parametrize("method", METHODS)
def test_as_of_write_with_ttl_and_created_time(spark: Any, method: str) -> None:
    schema = "customer_id string, feature_time timestamp, spend double, computed_at timestamp"
    spine = [(1, "a", t(5)), (2, "a", t(9))]
    features = [
        ("a", t(4), 1.0, t(4)),
        ("a", t(4), 2.0, t(8)),  # a correction of the same day, written on day 8
    ]
    result = pit(
        spark,
        spine,
        features,
        feature_schema=schema,
        as_of_write="computed_at",
        created_time="computed_at",
        ttl=timedelta(days=3),
        method=method,
    )
    assert rows(result, "sid", "spend") == [(1, 1.0), (2, None)]  # day 9: day 4 is beyond the TTL


@pytest.mark.parametrize("method", METHODS)
def test_multiple_keys_and_prefix(spark: Any, method: str) -> None:
    spine = spark.createDataFrame(
        [(1, "a", 1, t(5)), (2, "a", 2, t(5)), (3, None, 1, t(5))], "sid int, shop string, sku int, at timestamp"
    )
    features = spark.createDataFrame(
        [("a", 1, t(4), 10), ("a", 2, t(3), 20), ("a", 2, t(6), 99), (None, 1, t(1), 77)],
        "shop string, sku int, at timestamp, units int",
    )
    result = join(
        spine, features, keys=["shop", "sku"], spine_time="at", feature_time="at", prefix="inv_", method=method
    )
    assert result.columns == ["sid", "shop", "sku", "at", "inv_at", "inv_units"]
    assert rows(result, "sid", "inv_at", "inv_units") == [(1, t(4), 10), (2, t(3), 20), (3, None, None)]


@pytest.mark.parametrize("method", METHODS)
def test_feature_time_as_renames_the_matched_time(spark: Any, method: str) -> None:
    result = pit(spark, [(1, "a", t(5))], [("a", t(4), 1.0)], feature_time_as="spend_as_of", method=method)
    assert result.columns == ["sid", "customer_id", "label_time", "spend_as_of", "spend"]


def test_column_clash_is_a_config_error(spark: Any) -> None:
    with pytest.raises(ConfigError, match=r"\['label_time'\] already exist in the spine: pass prefix="):
        point_in_time_join(
            spark.createDataFrame([(1, "a", t(5))], SPINE_SCHEMA),
            spark.createDataFrame([("a", t(4))], "customer_id string, label_time timestamp"),
            keys=["customer_id"],
            spine_time="label_time",
            feature_time="label_time",
        )


def test_bad_arguments_are_config_errors(spark: Any) -> None:
    spine = spark.createDataFrame([(1, "a", t(5))], SPINE_SCHEMA)
    features = spark.createDataFrame([("a", t(4), 1.0)], FEATURE_SCHEMA)
    common = {"spine_time": "label_time", "feature_time": "feature_time"}
    with pytest.raises(ConfigError, match="features has no column 'shop'"):
        point_in_time_join(spine.withColumn("shop", spine.sid), features, keys=["shop"], **common)
    with pytest.raises(ConfigError, match="not a timestamp"):
        point_in_time_join(
            spine.withColumn("label_time", spine.label_time.cast("date")), features, keys=["customer_id"], **common
        )
    with pytest.raises(ConfigError, match="time columns mix"):
        point_in_time_join(
            spine.withColumn("label_time", spine.label_time.cast("timestamp_ntz")),
            features,
            keys=["customer_id"],
            **common,
        )
    with pytest.raises(ConfigError, match="ttl must be zero or positive"):
        point_in_time_join(spine, features, keys=["customer_id"], ttl=timedelta(days=-1), **common)


def test_build_training_set_joins_views_without_multiplying_rows(spark: Any) -> None:
    spine = spark.createDataFrame([(1, "a", t(5)), (1, "a", t(5)), (2, "b", t(5)), (3, "c", t(2))], SPINE_SCHEMA)
    spend = spark.createDataFrame(
        [("a", t(d), float(d), t(d, 1)) for d in range(1, 5)] + [("b", t(1), 1.5, t(1, 1))],
        "customer_id string, feature_time timestamp, spend double, computed_at timestamp",
    )
    visits = spark.createDataFrame(
        [("a", t(5), 7, t(5)), ("b", t(3), 3, t(3)), ("c", t(3), 9, t(3))],
        "customer_id string, feature_time timestamp, visits int, computed_at timestamp",
    )
    views = [
        ViewInput(df=spend, keys=["customer_id"], name="spend_v1", ttl=timedelta(days=2)),
        ViewInput(df=visits, keys=["customer_id"], name="visits_v1", prefix="v_"),
    ]
    result = build_training_set(spine, views, spine_time="label_time")
    assert result.columns == [
        "sid",
        "customer_id",
        "label_time",
        "spend_v1__feature_time",
        "spend",
        "computed_at",
        "visits_v1__feature_time",
        "v_visits",
        "v_computed_at",
    ]
    assert rows(result, "sid", "spend_v1__feature_time", "spend", "visits_v1__feature_time", "v_visits") == [
        (1, t(4), 4.0, t(5), 7),
        (1, t(4), 4.0, t(5), 7),
        (2, None, None, t(3), 3),  # spend of b is 4 days old: beyond the 2-day TTL
        (3, None, None, None, None),  # c's only visit row is dated after its label
    ]
    for view in views:
        assert leakage_violations(result, "label_time", f"{view.name}__feature_time", view.ttl) == 0

    as_of = build_training_set(spine, views, spine_time="label_time", as_of_write="computed_at")
    assert "spend_v1__computed_at" in as_of.columns and "visits_v1__computed_at" in as_of.columns
    # visits of a on day 5 were written at 00:00 on day 5: visible at label time 00:00.
    assert rows(as_of, "sid", "spend", "v_visits") == [(1, 4.0, 7), (1, 4.0, 7), (2, None, 3), (3, None, None)]


def test_build_training_set_names_the_view_in_errors(spark: Any) -> None:
    spine = spark.createDataFrame([(1, "a", t(5))], SPINE_SCHEMA)
    dup = spark.createDataFrame([("a", t(1), 1.0), ("a", t(1), 2.0)], FEATURE_SCHEMA)
    with pytest.raises(InputError, match=r"^feature view 'spend_v1': 1 feature rows repeat"):
        build_training_set(spine, [ViewInput(df=dup, keys=["customer_id"], name="spend_v1")], spine_time="label_time")
    ok = spark.createDataFrame([("a", t(1), 1.0)], FEATURE_SCHEMA)
    same_name = [ViewInput(df=ok, keys=["customer_id"], name="x"), ViewInput(df=ok, keys=["customer_id"], name="x")]
    with pytest.raises(ConfigError, match="unique"):
        build_training_set(spine, same_name, spine_time="label_time")
    clash = [ViewInput(df=ok, keys=["customer_id"], name="x"), ViewInput(df=ok, keys=["customer_id"], name="y")]
    with pytest.raises(ConfigError, match=r"^feature view 'y': feature columns \['spend'\] already exist"):
        build_training_set(spine, clash, spine_time="label_time")


def test_leakage_violations_counts_future_and_stale_matches(spark: Any) -> None:
    df = spark.createDataFrame(
        [
            (t(5), t(5)),  # ok: equal
            (t(5), t(5) + US),  # leak: after the label time
            (t(5), t(4)),  # ok: exactly at the TTL
            (t(5), t(4) - US),  # stale with a 1-day TTL
            (t(5), None),  # no match: fine
        ],
        "label_time timestamp, ft timestamp",
    )
    assert leakage_violations(df, "label_time", "ft") == 1
    assert leakage_violations(df, "label_time", "ft", ttl=timedelta(days=1)) == 2


# --------------------------------------------------------------------------- property tests

BASE = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = ["a", "b", "c", None]


def instant(hour: int, micro: int) -> datetime:
    return BASE + timedelta(hours=hour, microseconds=micro)


# Few distinct instants, so equal times (and one-microsecond neighbours) are common.
instants = st.builds(instant, st.integers(0, 8), st.sampled_from([0, 0, 1]))
maybe_instants = st.one_of(st.none(), instants)
ttls = st.sampled_from([None, timedelta(0), timedelta(hours=1), timedelta(hours=1, microseconds=1), timedelta(hours=3)])


def oracle(
    spine: list[tuple[Any, ...]],
    features: list[tuple[Any, ...]],
    ttl: timedelta | None,
    use_created: bool,
    as_of_write: bool,
) -> tuple[int, list[tuple[Any, ...]]]:
    """Brute force: (repeated feature rows, [(sid, matched feature_time, fid) per spine row])."""
    usable = [f for f in features if f[0] is not None and f[1] is not None]
    seen: dict[tuple[Any, ...], int] = {}
    for f in usable:
        identity = (f[0], f[1], f[3]) if use_created else (f[0], f[1])
        seen[identity] = seen.get(identity, 0) + 1
    repeats = sum(n - 1 for n in seen.values())
    out = []
    for sid, key, at in spine:
        best = None
        if key is not None and at is not None:
            for f in usable:
                if f[0] != key or f[1] > at:
                    continue
                if as_of_write and (f[4] is None or f[4] > at):
                    continue
                rank = (f[1], (f[3] is not None, f[3] or BASE) if use_created else 0)
                if best is None or rank > best[0]:
                    best = (rank, f)
        if best is not None and ttl is not None and best[1][1] < at - ttl:
            best = None
        out.append((sid, best[1][1] if best else None, best[1][2] if best else None))
    return repeats, out


@pytest.mark.parametrize("method", [*METHODS, "join_row_number"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spine_rows=st.lists(st.tuples(st.sampled_from(KEYS), maybe_instants), max_size=12),
    feature_rows=st.lists(
        st.tuples(st.sampled_from(KEYS), maybe_instants, maybe_instants, st.integers(0, 12)), max_size=25
    ),
    ttl=ttls,
    mode=st.sampled_from(["plain", "created_time", "as_of_write", "both"]),
)
def test_matches_brute_force_oracle(
    spark: Any,
    spine_rows: list[tuple[Any, Any]],
    feature_rows: list[tuple[Any, Any, Any, int]],
    ttl: timedelta | None,
    mode: str,
    method: str,
) -> None:
    use_created = mode in ("created_time", "both")
    as_of_write = mode in ("as_of_write", "both")
    spine = [(i, key, at) for i, (key, at) in enumerate(spine_rows)]
    # (key, feature_time, fid, created_at, computed_at): computed_at a few hours after feature_time.
    features = [
        (key, ft, fid, created, None if ft is None or delay == 12 else ft + timedelta(hours=delay // 3))
        for fid, (key, ft, created, delay) in enumerate(feature_rows)
    ]
    repeats, expected = oracle(spine, features, ttl, use_created, as_of_write)
    call = lambda: join(  # noqa: E731
        spark.createDataFrame(spine, SPINE_SCHEMA),
        spark.createDataFrame(
            features,
            "customer_id string, feature_time timestamp, fid int, created_at timestamp, computed_at timestamp",
        ),
        keys=["customer_id"],
        spine_time="label_time",
        feature_time="feature_time",
        ttl=ttl,
        created_time="created_at" if use_created else None,
        as_of_write="computed_at" if as_of_write else None,
        method=method,
    )
    if repeats:
        with pytest.raises(InputError, match=rf"^{repeats} feature rows repeat"):
            call()
        return
    assert rows(call(), "sid", "feature_time", "fid") == sorted(
        expected, key=lambda row: tuple((v is None, v if v is not None else 0) for v in row)
    )


# --------------------------------------------------------------------------- key types and time zones vs the oracle

KEY_CASES = {
    "string": ("k string", lambda i: f"key-{i}"),
    "long, huge range": ("k bigint", lambda i: (i - 2) * (1 << 61)),
    "date": ("k date", lambda i: datetime(2020, 1, 1 + i).date()),
    "binary": ("k binary", lambda i: bytes([i, 0])),
    "boolean": ("k boolean", lambda i: i % 2 == 0),
    "decimal": ("k decimal(10,2)", lambda i: Decimal(i) / 4),
    "string and int": ("k string, k2 int", lambda i: (f"s{i % 2}", i // 2)),
}


def spine_and_features(spark: Any, key_schema: str, make_key: Any, time_type: str) -> tuple[Any, Any, list[str]]:
    """A few keys, instants around the 2026 US daylight-saving switch, nulls in keys, times and values.

    Feature times differ per key index, so keys that collide (booleans) still have unique feature times.
    """
    keys = [c.split()[0] for c in key_schema.split(", ")]
    as_tuple = lambda i: make_key(i) if isinstance(make_key(i), tuple) else (make_key(i),)  # noqa: E731
    base = datetime(2026, 3, 7, 12)  # naive: read as wall-clock time of the session time zone
    spine, features = [], []
    for i in range(5):
        key = as_tuple(i)
        for h in range(0, 48, 5):
            spine.append((len(spine), *key, base + timedelta(hours=h + i)))
        for h in range(0, 48, 7):
            value = None if h == 14 else h  # a null inside an int feature column
            features.append((*key, base + timedelta(hours=h, minutes=i), value, float(h) if h != 21 else None))
    spine += [(100, *(None,) * len(keys), base), (101, *as_tuple(0), None)]
    if len(keys) > 1:
        spine.append((102, as_tuple(0)[0], None, base + timedelta(days=1)))
    features += [(*(None,) * len(keys), base, 7, 7.0), (*as_tuple(1), None, 8, 8.0)]
    spine_df = spark.createDataFrame(spine, f"sid int, {key_schema}, at timestamp").withColumn(
        "at", F.col("at").cast(time_type)
    )
    feature_df = spark.createDataFrame(features, f"{key_schema}, ft timestamp, n int, x double").withColumn(
        "ft", F.col("ft").cast(time_type)
    )
    return spine_df, feature_df, keys


def oracle_rows(spine_rows: list[Any], feature_rows: list[Any], keys: list[str], ttl: timedelta, naive: bool) -> Any:
    """The expected result of joining collected spine and feature rows (columns ``sid, *keys, at`` and
    ``*keys, ft, n, x``), by :func:`oracle`, as :func:`rows` gives it: sorted, timestamps through :func:`utc`.

    The oracle sees the inputs as Spark holds them: instants for ``timestamp`` (so a daylight-saving
    switch of the session time zone counts), wall-clock values for ``timestamp_ntz`` (``naive``).
    """
    as_time = (lambda v: v) if naive else utc

    def key(row: Any) -> tuple[Any, ...] | None:
        values = tuple(bytes(v) if isinstance(v, bytearray) else v for v in (row[k] for k in keys))
        return None if any(v is None for v in values) else values

    spine = [(r["sid"], key(r), as_time(r["at"])) for r in spine_rows]
    features = [(key(r), as_time(r["ft"]), fid, None, None) for fid, r in enumerate(feature_rows)]
    repeats, matches = oracle(spine, features, ttl, use_created=False, as_of_write=False)
    assert repeats == 0
    out = []
    for r, (sid, _, fid) in zip(spine_rows, matches, strict=True):
        assert sid == r["sid"]
        matched = (None, None, None) if fid is None else tuple(feature_rows[fid][c] for c in ("ft", "n", "x"))
        out.append(tuple(utc(v) for v in (*r, *matched)))
    return sorted(out, key=lambda row: tuple((v is None, v if v is not None else 0) for v in row))


@pytest.mark.parametrize("key_case", list(KEY_CASES))
@pytest.mark.parametrize(
    ("zone", "time_type"),
    [("UTC", "timestamp"), ("America/New_York", "timestamp"), ("America/New_York", "timestamp_ntz")],
)
def test_every_method_matches_the_oracle_for_key_types_and_time_zones(
    spark: Any, key_case: str, zone: str, time_type: str
) -> None:
    ttl = timedelta(hours=10)
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        spine, features, keys = spine_and_features(spark, *KEY_CASES[key_case], time_type)
        results = {
            method: join(spine, features, keys=keys, spine_time="at", feature_time="ft", ttl=ttl, method=method)
            for method in METHODS
        }
        columns = [*spine.columns, "ft", "n", "x"]
        collected = {method: rows(df, *columns) for method, df in results.items()}
        expected = oracle_rows(
            spine.select("sid", *keys, "at").collect(), features.collect(), keys, ttl, time_type == "timestamp_ntz"
        )
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    # Spine columns, then every feature column but the keys, with the inputs' types.
    fields = [*spine.schema.fields, *(f for f in features.schema.fields if f.name not in keys)]
    for method, df in results.items():
        assert [(f.name, f.dataType) for f in df.schema.fields] == [(f.name, f.dataType) for f in fields], method
        assert collected[method] == expected, method
    assert results["bucketed_asof"].schema == results["window"].schema  # nullability included
    ft = columns.index("ft")
    assert any(r[ft] is not None for r in expected)  # some rows match...
    assert any(r[ft] is None for r in expected)  # ...some do not (TTL, null keys or times)...
    assert any(r[ft] is not None and r[ft + 1] is None for r in expected)  # ...and a matched value can be null


def test_point_in_time_join_offers_only_the_production_methods(spark: Any) -> None:
    spine = spark.createDataFrame([(1, "a", t(5))], SPINE_SCHEMA)
    features = spark.createDataFrame([("a", t(4), 1.0)], FEATURE_SCHEMA)
    common: dict[str, Any] = {"keys": ["customer_id"], "spine_time": "label_time", "feature_time": "feature_time"}
    for method in BASELINES:  # benchmark baselines, no longer methods of the package
        with pytest.raises(
            ConfigError, match=rf"^unknown point_in_time_join method '{method}': use 'interval' or 'window'$"
        ):
            point_in_time_join(spine, features, method=method, **common)


def test_bucketed_asof_rejects_float_keys(spark: Any) -> None:
    spine = spark.createDataFrame([(1, 0.0, t(5)), (2, float("nan"), t(5))], "sid int, k double, at timestamp")
    features = spark.createDataFrame([(-0.0, t(4), 1), (float("nan"), t(3), 2)], "k double, ft timestamp, n int")
    common: dict[str, Any] = {"keys": ["k"], "spine_time": "at", "feature_time": "ft"}
    with pytest.raises(ConfigError, match=r"bucketed_asof_join cannot join these tables: key 'k' is double"):
        bucketed_asof_join(spine, features, **common)
    assert rows(point_in_time_join(spine, features, **common), "sid", "ft", "n")  # the production join takes them
