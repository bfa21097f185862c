"""Labels (observed horizon) and training sets (PIT join at pinned versions, audit, reproducible hash)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pitlake.features import get_view

from tests.builders import ACTIVITY_DDL, EVENTS_DDL, LABELS_DDL, PROFILE_DDL, event, write_table

T = datetime.fromisoformat
ACTIVITY = get_view("customer_activity")
PROFILE = get_view("customer_profile")


def test_labels_look_forward_exactly_seven_days_and_only_when_observed(spark, lake):
    from pitlake.labels.build import build_labels

    events = [
        event("p1", "page_view", "P", "2026-01-01 10:00:00"),
        event("p2", "purchase", "P", "2026-01-08 10:00:00", 5.0),  # exactly t + 7 days: inside
        event("q1", "page_view", "Q", "2026-01-01 09:00:00"),
        event("q2", "purchase", "Q", "2026-01-08 09:00:01", 5.0),  # one second past the horizon
        event("r1", "purchase", "R", "2026-01-02 08:00:00", 5.0),  # at label_time: not the future
        event("r2", "page_view", "R", "2026-01-02 09:00:00"),
        event("s1", "page_view", "S", "2026-01-02 12:00:00"),
        event("s2", "purchase", "S", "2026-01-03 12:00:00", 5.0),
        event("t1", "page_view", "T", "2026-01-12 12:00:00"),  # bronze reaches 01-12
    ]
    write_table(spark, lake, "bronze.events", events, EVENTS_DDL, mode="append", partition_by="event_date")
    result = build_labels(spark, lake, date(2026, 1, 1), date(2026, 1, 3))
    # Observed until 01-13 minus 3 days of lateness = 01-10: a day d is labelled when d + 8 <= 01-10.
    assert result.observed_until == "2026-01-10"
    assert result.dates_labelled == ["2026-01-01", "2026-01-02"]
    assert result.dates_skipped_unobserved == ["2026-01-03"]
    rows = spark.read.format("delta").load(lake.table_path("labels.purchase_propensity")).collect()
    got = sorted((r.customer_id, r.label_time, str(r.label_date), r.label) for r in rows)
    assert got == [
        ("P", T("2026-01-01 10:00:00"), "2026-01-01", 1),
        ("Q", T("2026-01-01 09:00:00"), "2026-01-01", 0),
        ("R", T("2026-01-02 08:00:00"), "2026-01-02", 0),
        ("S", T("2026-01-02 12:00:00"), "2026-01-02", 1),
    ]
    assert (result.rows, result.positives) == (4, 2)
    again = build_labels(spark, lake, date(2026, 1, 1), date(2026, 1, 3))  # idempotent
    assert again.rows == 4
    assert spark.read.format("delta").load(lake.table_path("labels.purchase_propensity")).count() == 4


def _activity_rows(rows):
    """Feature rows with every feature null except count_page_views_1d, a marker of which row matched."""
    names = ACTIVITY.feature_names()
    out = []
    for cust, ft, marker in rows:
        values = {n: None for n in names} | {"count_page_views_1d": marker}
        t = T(ft)
        out.append((cust, t, (t - timedelta(days=1)).date(), T("2026-02-01 00:00:00"), *values.values(), None))
    return out


def _profile(cust, ft, segment):
    t = T(ft)
    return (cust, t, (t - timedelta(days=1)).date(), T("2026-02-01"), segment, "DE", "gold", 3)


@pytest.fixture()
def small_store(spark, lake):
    write_table(spark, lake, "labels.purchase_propensity", [
        ("A", T("2026-01-05 10:00:00"), date(2026, 1, 5), 1),
        ("A", T("2026-01-06 00:00:00"), date(2026, 1, 6), 0),
        ("B", T("2026-01-05 11:00:00"), date(2026, 1, 5), 0),
        ("C", T("2026-01-05 12:00:00"), date(2026, 1, 5), 1),
    ], LABELS_DDL, mode="append", partition_by="label_date")  # fmt: skip
    write_table(spark, lake, "features.customer_activity", _activity_rows([
        ("A", "2026-01-05 00:00:00", 5),
        ("A", "2026-01-05 10:00:01", 999),  # canary: one second after A's first label
        ("A", "2026-01-06 00:00:00", 6),  # exactly at A's second label_time: taken
        ("A", "2026-01-07 00:00:00", 7),  # canary: after every label
        ("B", "2026-01-03 00:00:00", 3),  # older than the 1-day TTL at B's label
    ]), ACTIVITY_DDL, mode="append", partition_by="feature_date")  # fmt: skip
    write_table(spark, lake, "features.customer_profile", [
        _profile("A", "2026-01-05 00:00:00", "x"),
        _profile("A", "2026-01-06 00:00:00", "y"),
        _profile("B", "2026-01-05 00:00:00", "z"),
    ], PROFILE_DDL, mode="append", partition_by="feature_date")  # fmt: skip
    return lake


def test_training_set_is_point_in_time_with_ttl_and_never_takes_the_canary(spark, small_store):
    from pitlake.training_set.build import build, get_use_case

    result = build(spark, small_store, get_use_case("purchase_propensity"), date(2026, 1, 5), date(2026, 1, 6))
    rows = spark.read.format("delta").load(small_store.table_path("training_sets.purchase_propensity")).collect()
    got = sorted(
        (r.customer_id, r.label_time, r.label, r.count_page_views_1d, r.segment, r.customer_activity__feature_time)
        for r in rows
    )
    assert got == [
        ("A", T("2026-01-05 10:00:00"), 1, 5, "x", T("2026-01-05 00:00:00")),
        ("A", T("2026-01-06 00:00:00"), 0, 6, "y", T("2026-01-06 00:00:00")),
        ("B", T("2026-01-05 11:00:00"), 0, None, "z", None),  # activity row too old for the TTL
        ("C", T("2026-01-05 12:00:00"), 1, None, None, None),  # unknown to both views
    ]
    assert {r.training_set_id for r in rows} == {result.training_set_id}
    assert (result.row_count, result.positives) == (4, 2)
    assert result.leakage_violations == {"customer_activity": 0, "customer_profile": 0}
    assert result.inputs["features.customer_activity"]["version"] == 0
    assert "count_page_views_1d" in result.feature_columns and "segment" in result.feature_columns


def test_same_pins_same_hash_and_new_versions_are_not_seen(spark, small_store):
    from pitlake.training_set.build import build, get_use_case
    from pitlake.training_set.manifest import read_manifest

    use_case = get_use_case("purchase_propensity")
    first = build(spark, small_store, use_case, date(2026, 1, 5), date(2026, 1, 6))
    # New data lands later: a feature row for C.
    write_table(spark, small_store, "features.customer_activity", _activity_rows([("C", "2026-01-05 00:00:00", 42)]),
                ACTIVITY_DDL, mode="append", partition_by="feature_date")  # fmt: skip
    manifest = read_manifest(small_store, use_case.name, first.training_set_id)
    assert manifest == first  # the typed manifest reads back exactly as built
    pins = manifest.pins()
    again = build(spark, small_store, use_case, date(2026, 1, 5), date(2026, 1, 6), pins=pins)
    assert (again.training_set_id, again.content_hash, again.row_count) == (
        first.training_set_id,
        first.content_hash,
        first.row_count,
    )
    latest = build(spark, small_store, use_case, date(2026, 1, 5), date(2026, 1, 6))
    assert latest.inputs["features.customer_activity"]["version"] == 1
    assert latest.training_set_id != first.training_set_id and latest.content_hash != first.content_hash
    table = spark.read.format("delta").load(small_store.table_path("training_sets.purchase_propensity"))
    assert table.where(f"training_set_id = '{first.training_set_id}'").count() == 4  # rebuilt, not duplicated
    c_row = table.where(f"training_set_id = '{latest.training_set_id}' AND customer_id = 'C'").first()
    assert c_row.count_page_views_1d == 42


def test_leakage_audit_names_the_view_and_count(spark):
    from pitlake.core.errors import InputError
    from pitlake.training_set.build import audit_leakage

    df = spark.createDataFrame(
        [
            (T("2026-01-05 10:00:00"), T("2026-01-05 10:00:01"), T("2026-01-05 00:00:00")),
            (T("2026-01-05 10:00:00"), T("2026-01-05 00:00:00"), T("2026-01-05 00:00:00")),
        ],
        "label_time timestamp, customer_activity__feature_time timestamp, customer_profile__feature_time timestamp",
    )
    with pytest.raises(InputError, match="leakage audit failed: 1 rows take feature view 'customer_activity'"):
        audit_leakage(df, [ACTIVITY, PROFILE], "label_time")


def test_missing_inputs_and_empty_spine_are_one_line_errors(spark, small_store, lake):
    from pitlake.core.errors import ConfigError, InputError
    from pitlake.training_set.build import build, get_use_case

    use_case = get_use_case("purchase_propensity")
    with pytest.raises(InputError, match=r"has no rows for 2026-03-01\.\.2026-03-02 at version 0: run build_labels"):
        build(spark, small_store, use_case, date(2026, 3, 1), date(2026, 3, 2))
    with pytest.raises(InputError, match="has no version 9"):
        build(spark, small_store, use_case, date(2026, 1, 5), date(2026, 1, 6), pins={"labels.purchase_propensity": 9})
    with pytest.raises(ConfigError, match="unknown use case 'churn'"):
        get_use_case("churn")


def test_manifest_is_typed_versioned_and_reads_files_written_before_the_version():
    import json

    from pitlake.core.errors import ConfigError, InputError
    from pitlake.training_set.manifest import SCHEMA_VERSION, TrainingSetManifest

    legacy = {  # a manifest as written before schema_version existed
        "training_set_id": "abc",
        "use_case": "purchase_propensity",
        "table": "training_sets.purchase_propensity",
        "label_start": "2026-01-05",
        "label_end": "2026-01-06",
        "as_of_write": False,
        "inputs": {"labels.purchase_propensity": {"path": "/lake/labels/purchase_propensity", "version": 3}},
        "row_count": 4,
        "positives": 2,
        "content_hash": "f00",
        "feature_columns": ["count_page_views_1d", "segment"],
        "label_column": "label",
        "delta_version": 1,
        "manifest_path": "/lake/training_sets/_manifests/purchase_propensity/abc.json",
        "built_at": "2026-03-01T00:00:00+00:00",
        "leakage_violations": {"customer_activity": 0, "customer_profile": 0},
    }
    manifest = TrainingSetManifest.from_dict(legacy)
    assert manifest.schema_version == SCHEMA_VERSION == "1"
    assert manifest.pins() == {"labels.purchase_propensity": 3}
    # On disk: byte for byte what was written before, plus the schema_version key.
    assert manifest.to_json() == json.dumps({**legacy, "schema_version": "1"}, indent=2, sort_keys=True)
    assert TrainingSetManifest.from_dict(json.loads(manifest.to_json())) == manifest
    with pytest.raises(ConfigError, match=r"^training set manifest schema_version '2' is not supported"):
        TrainingSetManifest.from_dict({**legacy, "schema_version": "2"})
    with pytest.raises(InputError, match=r"missing \['row_count'\], unknown \['rows'\]$"):
        TrainingSetManifest.from_dict({k: v for k, v in legacy.items() if k != "row_count"} | {"rows": 4})
