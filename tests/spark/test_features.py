"""Feature views: definition validation, every aggregation and window on hand-built events,
profile as-of on the boundary, backfill equivalence and idempotent reruns."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pytest
from pitlake.features import (
    AggregateView,
    Aggregation,
    DaysSince,
    Entity,
    FeatureDefinitionError,
    Ratio,
    SnapshotView,
    get_view,
)
from pitlake.features.customer import customer_activity_v1

from tests.builders import CUSTOMERS_DDL, EVENTS_DDL, event, write_table

ACTIVITY = customer_activity_v1
T = datetime.fromisoformat


# Day D = 2026-01-10: feature_time = 2026-01-11 00:00; windows 1d [01-10, 01-11), 7d [01-04, 01-11),
# 28d [2025-12-14, 01-11). Events exactly on a window's start are in; at feature_time they are out.
EVENTS = [
    event("a1", "page_view", "A", "2026-01-10 00:00:00"),  # 1d, 7d, 28d
    event("a2", "page_view", "A", "2026-01-04 00:00:00"),  # 7d, 28d
    event("a3", "page_view", "A", "2026-01-03 23:59:59"),  # 28d
    event("a4", "page_view", "A", "2025-12-14 00:00:00"),  # 28d (its first instant)
    event("a5", "page_view", "A", "2025-12-13 23:59:59"),  # outside every window
    event("a6", "page_view", "A", "2026-01-11 00:00:00"),  # at feature_time: next day's
    event("a7", "add_to_cart", "A", "2026-01-05 09:00:00", category="garden"),
    event("a8", "purchase", "A", "2026-01-05 10:00:00", 10.0, "books"),
    event("a9", "purchase", "A", "2026-01-05 11:00:00", None, "toys"),  # null amount
    event("a10", "add_to_cart", "A", "2025-12-20 08:00:00"),
    event("a11", "purchase", "A", "2025-12-20 09:00:00", 30.0, "books"),
    event("b1", "purchase", "B", "2025-11-01 12:00:00", 5.0),  # inactive > 28 days, bought once
    event("c1", "page_view", "C", "2026-01-11 00:00:00", ingest=date(2026, 1, 12)),  # arrives a day late
    event("d1", "page_view", "D", "2025-12-13 23:59:59"),  # too old, never bought: no row
]

FEATURES = ACTIVITY.feature_names()


def _rows(spark, settings, table, day=None, drop=("computed_at",)):
    df = spark.read.format("delta").load(settings.table_path(table))
    if day:
        df = df.where(f"feature_date = '{day}'")
    out = [{k: v for k, v in r.asDict().items() if k not in drop} for r in df.collect()]
    return sorted(out, key=lambda r: (str(r.get("feature_date")), str(r.get("customer_id"))))


def _features(row):
    return {k: row[k] for k in FEATURES}


def test_every_aggregation_and_window_on_the_boundaries(spark, lake):
    from pitlake.features.engine import build

    write_table(spark, lake, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    result = build(spark, lake, ACTIVITY, date(2026, 1, 10), date(2026, 1, 10))
    rows = {r["customer_id"]: r for r in _rows(spark, lake, "features.customer_activity", "2026-01-10")}
    assert sorted(rows) == ["A", "B"]
    assert rows["A"]["feature_time"] == T("2026-01-11 00:00:00")
    assert _features(rows["A"]) == {
        "count_page_views_1d": 1,
        "count_page_views_7d": 2,
        "count_page_views_28d": 4,
        "count_add_to_carts_1d": 0,
        "count_add_to_carts_7d": 1,
        "count_add_to_carts_28d": 2,
        "count_purchases_7d": 2,
        "count_purchases_28d": 3,
        "sum_purchase_amount_7d": 10.0,
        "sum_purchase_amount_28d": 40.0,
        "avg_purchase_amount_28d": 20.0,  # the null amount is not averaged
        "count_distinct_categories_28d": 3,  # books, garden, toys
        "days_since_last_purchase": 5,
        "cart_to_purchase_ratio_28d": 1.5,
    }
    assert rows["A"]["last_purchase_time"] == T("2026-01-05 11:00:00")
    assert _features(rows["B"]) == {
        "count_page_views_1d": 0,
        "count_page_views_7d": 0,
        "count_page_views_28d": 0,
        "count_add_to_carts_1d": 0,
        "count_add_to_carts_7d": 0,
        "count_add_to_carts_28d": 0,
        "count_purchases_7d": 0,
        "count_purchases_28d": 0,
        "sum_purchase_amount_7d": 0.0,
        "sum_purchase_amount_28d": 0.0,
        "avg_purchase_amount_28d": None,
        "count_distinct_categories_28d": 0,
        "days_since_last_purchase": 70,
        "cart_to_purchase_ratio_28d": None,
    }
    assert result.rows_by_date == {"2026-01-10": 2}
    assert result.notes and "taken from bronze.events" in result.notes[0]


def test_empty_day_late_arrival_and_state_carried_forward(spark, lake):
    from pitlake.features.engine import affected_start, build

    write_table(spark, lake, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    build(spark, lake, ACTIVITY, date(2026, 1, 10), date(2026, 1, 10))
    # 01-12 ingested C's 01-11 event late: building 01-12 starts at 01-11.
    start = affected_start(spark, lake, ACTIVITY, date(2026, 1, 12))
    assert start == date(2026, 1, 11)
    result = build(spark, lake, ACTIVITY, start, date(2026, 1, 12))
    assert result.notes == []  # 01-10 was built: state carried from its rows
    day11 = {r["customer_id"]: r for r in _rows(spark, lake, "features.customer_activity", "2026-01-11")}
    day12 = {r["customer_id"]: r for r in _rows(spark, lake, "features.customer_activity", "2026-01-12")}
    assert sorted(day11) == ["A", "B", "C"] and sorted(day12) == ["A", "B", "C"]
    assert day11["C"]["count_page_views_1d"] == 1 and day12["C"]["count_page_views_1d"] == 0  # 01-12 is empty
    assert day12["A"]["count_page_views_1d"] == 0
    assert day12["A"]["count_page_views_7d"] == 2  # a6 (01-11 00:00) and a1 (01-10 00:00); a2 left on 01-11
    assert day12["A"]["days_since_last_purchase"] == 7
    assert day12["B"]["days_since_last_purchase"] == 72


def test_backfill_range_equals_day_by_day_and_reruns_are_identical(spark, lake, tmp_path):
    from pitlake.features.engine import build

    other = dataclasses.replace(lake, home=tmp_path / "other")
    write_table(spark, lake, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    write_table(spark, other, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    build(spark, lake, ACTIVITY, date(2026, 1, 8), date(2026, 1, 12))
    for day in range(8, 13):
        build(spark, other, ACTIVITY, date(2026, 1, day), date(2026, 1, day))
    ranged = _rows(spark, lake, "features.customer_activity")
    daily = _rows(spark, other, "features.customer_activity")
    # A and B every day, C from its first event (01-11), D while 12-13 23:59:59 is inside 28 days.
    assert [(str(r["feature_date"]), r["customer_id"]) for r in ranged] == [
        ("2026-01-08", "A"), ("2026-01-08", "B"), ("2026-01-08", "D"),
        ("2026-01-09", "A"), ("2026-01-09", "B"), ("2026-01-09", "D"),
        ("2026-01-10", "A"), ("2026-01-10", "B"),
        ("2026-01-11", "A"), ("2026-01-11", "B"), ("2026-01-11", "C"),
        ("2026-01-12", "A"), ("2026-01-12", "B"), ("2026-01-12", "C"),
    ]  # fmt: skip
    assert ranged == daily
    assert _rows(spark, lake, "features.customer_activity_daily") == _rows(
        spark, other, "features.customer_activity_daily"
    )
    build(spark, lake, ACTIVITY, date(2026, 1, 10), date(2026, 1, 10))  # rerun one day
    assert _rows(spark, lake, "features.customer_activity") == ranged


def test_build_for_a_day_bronze_has_not_reached_is_a_one_line_error(spark, lake):
    from pitlake.core.errors import InputError
    from pitlake.features.engine import build

    with pytest.raises(InputError, match=r"bronze\.events does not exist yet"):
        build(spark, lake, ACTIVITY, date(2026, 1, 10), date(2026, 1, 10))
    write_table(spark, lake, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    with pytest.raises(InputError, match=r"no data for 2026-01-13 \(latest ingested day: 2026-01-12\)") as err:
        build(spark, lake, ACTIVITY, date(2026, 1, 13), date(2026, 1, 13))
    assert "\n" not in str(err.value)


def _version(cust, segment, start, end, tier="bronze"):
    return (cust, segment, "DE", tier, date(2025, 12, 31), T(start), T(end) if end else None, end is None,
            T(start).date(), "f", 1)  # fmt: skip


def test_profile_as_of_with_changes_on_the_boundary(spark, lake):
    from pitlake.features.engine import build

    rows = [
        _version("X", "new", "2026-01-01 00:00:00", "2026-01-11 00:00:00"),
        _version("X", "regular", "2026-01-11 00:00:00", None, "silver"),  # exactly at feature_time of 01-10
        _version("Y", "new", "2026-01-01 00:00:00", "2026-01-10 23:59:59"),
        _version("Y", "vip", "2026-01-10 23:59:59", None, "gold"),  # a second before it
        _version("Z", "new", "2026-01-11 00:00:00", None),  # not yet known on 01-10
    ]
    write_table(spark, lake, "bronze.customers", rows, CUSTOMERS_DDL, mode="error")
    profile = get_view("customer_profile")
    result = build(spark, lake, profile, date(2026, 1, 10), date(2026, 1, 11))
    assert result.rows_by_date == {"2026-01-10": 2, "2026-01-11": 3}
    got = [
        (str(r["feature_date"]), r["customer_id"], r["segment"], r["loyalty_tier"], r["tenure_days"])
        for r in _rows(spark, lake, "features.customer_profile")
    ]
    assert got == [
        ("2026-01-10", "X", "new", "bronze", 10),
        ("2026-01-10", "Y", "vip", "gold", 10),
        ("2026-01-11", "X", "regular", "silver", 11),
        ("2026-01-11", "Y", "vip", "gold", 11),
        ("2026-01-11", "Z", "new", "bronze", 11),
    ]


# --- definitions: validated when declared, before Spark does anything --------------------------

BASE = dict(
    name="v", version=1, entity=Entity("customer", ("customer_id",)), source="bronze.events",
    description="d", owner="o", ttl=timedelta(days=1),
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aggregations": (Aggregation("sum", "spend", column="amont", windows=("7d",)),)}, "unknown column 'amont'"),
        ({"aggregations": (Aggregation("count", "x", where={"evnt_type": "a"}, windows=("7d",)),)}, "'evnt_type'"),
        ({"aggregations": (Aggregation("count", "x", windows=("36h",)),)}, "'36h' is not a whole number of days"),
        ({"aggregations": (Aggregation("count", "x", windows=("7d", "7d")),)}, "duplicate feature name 'count_x_7d'"),
        ({"aggregations": (Aggregation("sum", "x", column="category", windows=("7d",)),)}, "not numeric"),
        ({"aggregations": (Aggregation("days_since_last", "x", windows=("7d",)),)}, "declare no window"),
        ({"aggregations": ()}, "declare at least one"),
        ({"source": "bronze.evnts"}, "unknown table 'bronze.evnts'"),
        ({"ttl": timedelta(hours=12)}, "ttl: must be a positive whole number of days"),
        ({"entity": Entity("c", ("cust",))}, "entity.keys: unknown column 'cust'"),
        (
            {
                "aggregations": (Aggregation("count", "x", windows=("7d",)),),
                "ratios": (Ratio("r", "count_x_7d", "count_y_7d"),),
            },
            "'count_y_7d' is not a feature of this view",
        ),
    ],
)
def test_aggregate_view_definition_errors_name_the_view_and_field(change, message):
    fields = {**BASE, "aggregations": (Aggregation("count", "x", windows=("7d",)),), **change}
    with pytest.raises(FeatureDefinitionError, match="feature view 'v' v1: ") as err:
        AggregateView(**fields)
    assert message in str(err.value)


def test_snapshot_view_definition_errors():
    base = {**BASE, "source": "bronze.customers"}
    with pytest.raises(FeatureDefinitionError, match="attributes: unknown column 'segmnt'"):
        SnapshotView(**base, attributes=("segmnt",))
    with pytest.raises(FeatureDefinitionError, match="'segment' is not a date column"):
        SnapshotView(**base, days_since=(DaysSince("tenure_days", "segment"),))


def test_registry_lookup():
    assert get_view("customer_activity") is customer_activity_v1
    assert get_view("customer_activity:v1") is customer_activity_v1
    with pytest.raises(FeatureDefinitionError, match="unknown feature view 'customer_actvity'; known views: "):
        get_view("customer_actvity")
    with pytest.raises(FeatureDefinitionError, match="has no version 3"):
        get_view("customer_activity", 3)


def test_custom_transform_adds_declared_outputs(spark, lake):
    from pitlake.features.engine import build
    from pyspark.sql import functions as F

    def views_per_cart(df):
        return df.withColumn("views_per_cart_7d", F.col("count_page_views_7d") / F.greatest(F.lit(1), "count_c_7d"))

    view = AggregateView(
        **{**BASE, "name": "custom"},
        aggregations=(
            Aggregation("count", "page_views", where={"event_type": "page_view"}, windows=("7d",)),
            Aggregation("count", "c", where={"event_type": "add_to_cart"}, windows=("7d",)),
        ),
        transform=views_per_cart,
        transform_outputs=("views_per_cart_7d",),
    )
    write_table(spark, lake, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    build(spark, lake, view, date(2026, 1, 10), date(2026, 1, 10))
    rows = {r["customer_id"]: r for r in _rows(spark, lake, "features.custom")}
    assert rows["A"]["views_per_cart_7d"] == 2.0
    assert sorted(rows) == ["A"]  # no all-history feature: B (inactive) gets no row
