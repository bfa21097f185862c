"""Validation gates: a good table per suite passes; each fault class trips the right expectation with the
right count, and the gate's one-line message says so. Tables are hand-built: 7 history days (2026-01-01..07)
and the validated day 2026-01-08."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tests.builders import ACTIVITY_DDL, CUSTOMERS_DDL, EVENTS_DDL, LABELS_DDL, save_delta, write_table

T = datetime.fromisoformat
DAY = date(2026, 1, 8)
HISTORY = [date(2026, 1, 1) + timedelta(days=i) for i in range(7)]
KINDS = ("page_view", "add_to_cart", "purchase")


def _events(day, n=10, prefix=None):
    """``n`` valid events on ``day``: page view / add to cart / purchase in turn, purchases with an amount."""
    rows = []
    for i in range(n):
        kind = KINDS[i % 3]
        t = datetime.combine(day, datetime.min.time()) + timedelta(hours=1 + i)
        amount = 5.0 + i if kind == "purchase" else None
        eid = f"{prefix or day.isoformat()}-{i}"
        rows.append((eid, kind, f"c{i % 4}", t, day, amount, "books", "s1", day, "f.jsonl", i + 1, "p00001"))
    return rows


def _with(row, **changes):
    names = [c.split()[0] for c in EVENTS_DDL.split(", ")]
    values = dict(zip(names, row, strict=True)) | changes
    return tuple(values.values())


def _events_table(spark, lake, today):
    rows = [r for d in HISTORY for r in _events(d)] + today
    write_table(spark, lake, "bronze.events", rows, EVENTS_DDL, mode="overwrite", partition_by="event_date")


def _validate(spark, lake, table, version=0, day=DAY, **kwargs):
    from pitlake.validation import validate_table

    return validate_table(
        spark, lake, table, version=version, interval_start=day, interval_end=day, run_id="test", **kwargs
    )


def _failure(spark, lake, table, **kwargs):
    from pitlake.validation import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        _validate(spark, lake, table, **kwargs)
    return err.value, str(err.value)


def _result(report, expectation, column):
    found = [r for r in report.results if r.expectation == expectation and r.column == column]
    assert found, f"{expectation}({column}) not in the suite"
    return found


def _failed(report):
    return sorted((r.expectation, r.column, r.severity) for r in report.results if not r.success)


# --------------------------------------------------------------------------- bronze.events


def test_good_events_pass_and_every_result_is_persisted(spark, lake):
    from pitlake.validation import RESULTS_TABLE

    _events_table(spark, lake, _events(DAY))
    report = _validate(spark, lake, "bronze.events")
    assert report.success and _failed(report) == []
    assert report.suite == "bronze_events" and report.delta_version == 0 and report.rows == 10
    assert report.interval == ("2026-01-08", "2026-01-08")
    assert report.notes == ()
    # The suite carries the checks the design asks for (hand-listed, not read from the code).
    present = {(r.expectation, r.column, r.severity) for r in report.results}
    assert {
        ("expect_column_max_to_be_between", "event_time", "critical"),
        ("expect_column_distinct_values_to_contain_set", "event_date", "critical"),
        ("expect_table_row_count_to_be_between", None, "critical"),
        ("expect_table_row_count_to_be_between", None, "warning"),
        ("expect_table_columns_to_match_set", None, "critical"),
        ("expect_column_values_to_not_be_null", "event_id", "critical"),
        ("expect_column_values_to_be_unique", "event_id", "critical"),
        ("expect_column_values_to_be_in_set", "event_type", "critical"),
        ("expect_column_values_to_be_in_set", "category", "warning"),
        ("expect_column_values_to_be_between", "amount", "critical"),
    } <= present
    band = _result(report, "expect_table_row_count_to_be_between", None)
    assert [r.observed_value for r in band] == [10, 10]
    # JSON: the report plus GX's own result.
    saved = json.loads(Path(report.json_path).read_text())
    assert Path(report.json_path).parent == lake.gx_dir / "results" / "bronze_events"
    assert saved["result_id"] == report.result_id and saved["success"] is True
    assert len(saved["results"]) == len(report.results) == len(saved["gx_result"]["results"])
    # ops.validation_results: one row per expectation, one commit.
    rows = spark.read.format("delta").load(lake.table_path(RESULTS_TABLE)).collect()
    assert len(rows) == len(report.results)
    assert {(r.result_id, r.suite, r.table_name, r.delta_version, r.run_id) for r in rows} == {
        (report.result_id, "bronze_events", "bronze.events", 0, "test")
    }
    assert {(r.interval_start, r.interval_end) for r in rows} == {(DAY, DAY)}
    assert all(r.expectation_success for r in rows)
    # Data Docs: static HTML, the run's page and the index.
    assert report.docs_path and report.docs_path.endswith(".html") and Path(report.docs_path).is_file()
    assert Path(report.docs_path).is_relative_to(lake.gx_dir / "data_docs")
    assert (lake.gx_dir / "data_docs" / "index.html").is_file()
    summary = report.summary()
    assert summary.startswith("PASSED: suite bronze_events on bronze.events v0")
    assert summary.splitlines()[-1] == f"data docs: {report.docs_path}"


def test_null_key_fails_and_is_persisted_before_raising(spark, lake):
    from pitlake.validation import RESULTS_TABLE

    today = _events(DAY)
    today[2] = _with(today[2], event_id=None)
    today[5] = _with(today[5], event_id=None)
    _events_table(spark, lake, today)
    err, message = _failure(spark, lake, "bronze.events")
    assert message.startswith(
        "validation gate failed: suite bronze_events, expect_column_values_to_not_be_null(event_id) "
        "found 2 of 10 rows unexpected (critical); report: "
    )
    assert "\n" not in message
    assert _failed(err.report) == [("expect_column_values_to_not_be_null", "event_id", "critical")]
    assert Path(err.report.json_path).is_file() and message.endswith(err.report.json_path)
    rows = spark.read.format("delta").load(lake.table_path(RESULTS_TABLE)).where("NOT expectation_success").collect()
    assert [(r.expectation, r.column, r.unexpected_count, r.element_count, r.success) for r in rows] == [
        ("expect_column_values_to_not_be_null", "event_id", 2, 10, False)
    ]


def test_duplicate_event_id(spark, lake):
    today = _events(DAY)
    today[7] = _with(today[7], event_id=today[3][0])
    _events_table(spark, lake, today)
    err, message = _failure(spark, lake, "bronze.events")
    assert "expect_column_values_to_be_unique(event_id) found 2 of 10 rows unexpected (critical)" in message
    assert _failed(err.report) == [("expect_column_values_to_be_unique", "event_id", "critical")]


def test_negative_amount(spark, lake):
    today = _events(DAY, n=12)  # purchases at 2, 5, 8, 11
    for i in (2, 5, 11):
        today[i] = _with(today[i], amount=-1.0)
    _events_table(spark, lake, today)
    err, message = _failure(spark, lake, "bronze.events")
    assert "suite bronze_events, expect_column_values_to_be_between(amount) found 3 of 12 rows unexpected" in message
    assert _failed(err.report) == [("expect_column_values_to_be_between", "amount", "critical")]


def test_unknown_event_type_stops_unknown_category_warns(spark, lake):
    today = _events(DAY)
    today[0] = _with(today[0], event_type="refund")
    today[4] = _with(today[4], category="crypto")
    today[6] = _with(today[6], category="crypto")
    _events_table(spark, lake, today)
    err, message = _failure(spark, lake, "bronze.events")
    assert "expect_column_values_to_be_in_set(event_type) found 1 of 10 rows unexpected (critical)" in message
    assert _failed(err.report) == [
        ("expect_column_values_to_be_in_set", "category", "warning"),
        ("expect_column_values_to_be_in_set", "event_type", "critical"),
    ]
    category = _result(err.report, "expect_column_values_to_be_in_set", "category")[0]
    assert (category.unexpected_count, category.element_count) == (2, 10)
    assert "category" not in message  # a warning is recorded, never the reason for the stop


def test_missing_day_fails_freshness(spark, lake):
    _events_table(spark, lake, [])
    err, message = _failure(spark, lake, "bronze.events")
    assert message.startswith(
        "validation gate failed: suite bronze_events, expect_column_max_to_be_between(event_time) observed None, "
        "expected >= 2026-01-08T00:00:00 and < 2026-01-09T00:00:00 (critical); 2 more critical: "
        "expect_column_distinct_values_to_contain_set(event_date), expect_table_row_count_to_be_between(table); "
        "report: "
    )
    failed = _failed(err.report)
    assert ("expect_column_max_to_be_between", "event_time", "critical") in failed
    assert ("expect_column_distinct_values_to_contain_set", "event_date", "critical") in failed
    low = [r for r in _result(err.report, "expect_table_row_count_to_be_between", None) if r.severity == "critical"]
    assert [(r.success, r.observed_value) for r in low] == [(False, 0)]


def _outcomes(report):
    return [
        (r.expectation, r.column, r.severity, r.success, r.unexpected_count, r.element_count, r.observed_value)
        for r in report.results
    ]


@pytest.mark.parametrize("day_rows", ["faulty", "empty"])
def test_the_pandas_and_spark_engines_agree_row_for_row(spark, lake, day_rows):
    """A day with one of each fault, and an empty day: the in-process (pandas) gate and the Spark gate
    give the same outcome for every expectation, counts and observed values included."""
    today = []
    if day_rows == "faulty":
        today = _events(DAY, n=12)  # purchases at 2, 5, 8, 11
        today[0] = _with(today[0], event_id=None)
        today[1] = _with(today[1], event_id=today[4][0])
        today[2] = _with(today[2], amount=-1.0)
        today[5] = _with(today[5], amount=None)
        today[3] = _with(today[3], event_type="refund")
        today[6] = _with(today[6], category="crypto")
        today[7] = _with(today[7], event_time=T("2026-01-09T00:00:00"))
        today[9] = _with(today[9], ingest_date=date(2026, 1, 7))
        today[10] = _with(today[10], customer_id=None)
    _events_table(spark, lake, today)
    local, _ = _failure(spark, lake, "bronze.events", local=True)
    remote, _ = _failure(spark, lake, "bronze.events", local=False)
    assert _outcomes(local.report) == _outcomes(remote.report)
    engines = [json.loads(Path(e.report.json_path).read_text())["gx_result"]["meta"] for e in (local, remote)]
    assert [m.get("pitlake_engine", "spark") for m in engines] == [
        "pandas (schema and type checks on the Spark schema)",
        "spark",
    ]
    if day_rows == "faulty":
        assert _failed(local.report) == [
            ("expect_column_max_to_be_between", "event_time", "critical"),  # the event at 2026-01-09 00:00
            ("expect_column_pair_values_a_to_be_greater_than_b", "ingest_date,event_date", "critical"),
            ("expect_column_values_to_be_between", "amount", "critical"),
            ("expect_column_values_to_be_between", "event_time", "critical"),
            ("expect_column_values_to_be_in_set", "category", "warning"),
            ("expect_column_values_to_be_in_set", "event_type", "critical"),
            ("expect_column_values_to_be_unique", "event_id", "critical"),
            ("expect_column_values_to_not_be_null", "amount", "warning"),
            ("expect_column_values_to_not_be_null", "customer_id", "critical"),
            ("expect_column_values_to_not_be_null", "event_id", "critical"),
        ]
        unique = _result(local.report, "expect_column_values_to_be_unique", "event_id")[0]
        assert (unique.unexpected_count, unique.element_count) == (2, 12)  # the null id is no duplicate


def test_a_slice_over_the_local_bound_is_validated_by_spark(spark, lake, monkeypatch):
    import pitlake.validation.runner as runner

    monkeypatch.setattr(runner, "LOCAL_MAX_ROWS", 9)
    _events_table(spark, lake, _events(DAY))
    report = _validate(spark, lake, "bronze.events")
    assert report.success and report.rows == 10
    meta = json.loads(Path(report.json_path).read_text())["gx_result"]["meta"]
    assert "pitlake_engine" not in meta


def test_the_docs_index_is_rebuilt_on_a_failure_or_when_stale_and_every_page_at_once(spark, lake):
    import os

    from pitlake.validation import build_docs_index

    today = _events(DAY)
    _events_table(spark, lake, today)
    index = lake.gx_dir / "data_docs" / "index.html"
    first = _validate(spark, lake, "bronze.events")
    assert index.is_file() and Path(first.docs_path).is_file()
    stamp = lake.gx_dir / "data_docs" / ".index_built"
    os.utime(index, (0, 0))
    second = _validate(spark, lake, "bronze.events")  # passed, index fresh: its page only
    assert Path(second.docs_path).is_file() and index.stat().st_mtime == 0
    os.utime(stamp, (0, 0))  # older than DOCS_INDEX_EVERY_S
    _validate(spark, lake, "bronze.events")
    assert index.stat().st_mtime > 0
    os.utime(index, (0, 0))
    today[0] = _with(today[0], event_id=None)
    write_table(
        spark,
        lake,
        "bronze.events",
        [r for d in HISTORY for r in _events(d)] + today,
        EVENTS_DDL,
        mode="overwrite",
        partition_by="event_date",
    )
    _failure(spark, lake, "bronze.events", version=1)  # a failed run: someone is about to look
    assert index.stat().st_mtime > 0
    os.utime(index, (0, 0))
    assert build_docs_index(lake) == str(index) and index.stat().st_mtime > 0
    assert Path(second.docs_path).parent.name in index.read_text()  # the run the gate did not index is listed now


def test_missing_column_fails_the_schema_check_without_crashing(spark, lake):
    rows = [r for d in [*HISTORY, DAY] for r in _events(d)]
    df = spark.createDataFrame(rows, EVENTS_DDL).drop("category")
    save_delta(df, lake.table_path("bronze.events"), mode="error", partition_by="event_date")
    err, message = _failure(spark, lake, "bronze.events")
    assert message.startswith(
        "validation gate failed: suite bronze_events, expect_table_columns_to_match_set(table) found columns "
        "missing: category (critical); 1 more critical: expect_column_values_to_be_of_type(category); report: "
    )
    assert _failed(err.report) == [
        ("expect_column_values_to_be_in_set", "category", "warning"),
        ("expect_column_values_to_be_of_type", "category", "critical"),
        ("expect_table_columns_to_match_set", None, "critical"),
    ]


def test_a_tenth_of_the_usual_volume(spark, lake):
    _events_table(spark, lake, _events(DAY, n=1))
    err, message = _failure(spark, lake, "bronze.events")
    # Trailing median 10 rows/day: critical below 30% (3 rows), warning outside [5, 20].
    assert message.startswith(
        "validation gate failed: suite bronze_events, expect_table_row_count_to_be_between(table) observed 1, "
        "expected >= 3 (critical); report: "
    )
    assert _failed(err.report) == [
        ("expect_table_row_count_to_be_between", None, "critical"),
        ("expect_table_row_count_to_be_between", None, "warning"),
    ]


def test_no_history_skips_the_band_with_a_note(spark, lake):
    write_table(spark, lake, "bronze.events", _events(DAY), EVENTS_DDL, mode="overwrite", partition_by="event_date")
    report = _validate(spark, lake, "bronze.events")
    assert report.success
    assert not [r for r in report.results if r.expectation == "expect_table_row_count_to_be_between"]
    assert report.notes == ("row-count band skipped: 0 day(s) with rows in the 7 days before 2026-01-08 (needs 3)",)


def test_misuse_says_what_to_do(spark, lake):
    from pitlake.core.errors import ConfigError, InputError
    from pitlake.validation import validate_table

    with pytest.raises(ConfigError, match=r"no validation suite for 'gold\.events'"):
        validate_table(spark, lake, "gold.events", version=0)
    with pytest.raises(InputError, match="does not exist"):
        validate_table(spark, lake, "bronze.events", version=0, interval_start=DAY, interval_end=DAY)
    write_table(spark, lake, "bronze.events", _events(DAY), EVENTS_DDL, mode="overwrite", partition_by="event_date")
    with pytest.raises(ConfigError, match="needs an interval"):
        validate_table(spark, lake, "bronze.events", version=0)


# --------------------------------------------------------------------------- bronze.customers


def test_good_customers_pass(spark, lake):
    rows = []
    for n, day in enumerate([*HISTORY, DAY]):
        for i in range(4):
            t = datetime.combine(day, datetime.min.time()) + timedelta(hours=2 + i)
            tier = ("none", "bronze", "silver", "gold")[i]
            rows.append((f"c{n}{i}", "consumer", "DE", tier, date(2025, 1, 1), t, None, True, day, "f", i + 1))
    write_table(spark, lake, "bronze.customers", rows, CUSTOMERS_DDL, mode="overwrite", partition_by="ingest_date")
    report = _validate(spark, lake, "bronze.customers")
    assert report.success and _failed(report) == [] and report.suite == "bronze_customers"
    tier = _result(report, "expect_column_values_to_be_in_set", "loyalty_tier")[0]
    assert (tier.severity, tier.unexpected_count, tier.element_count) == ("critical", 0, 4)


# --------------------------------------------------------------------------- features


def _activity(day, customer, amount_28d=40.0):
    ft = datetime.combine(day + timedelta(days=1), datetime.min.time())
    computed = ft + timedelta(hours=1)
    counts = (1, 3, 9, 0, 1, 4, 1, 2)
    return (customer, ft, day, computed, *counts, 10.0, amount_28d, 20.0, 3, 5, 0.5, ft - timedelta(days=5))


# 35 feature days before DAY: the 28-day windows are full from the 28th (2025-12-31), so the reference
# window holds 8 full-window days.
ACTIVITY_HISTORY = [DAY - timedelta(days=i) for i in range(35, 0, -1)]


def _activity_table(spark, lake, today, history=ACTIVITY_HISTORY, amounts=None):
    amounts = amounts or {}
    rows = [_activity(d, c, amounts.get(d, 40.0)) for d in history for c in "ABCDE"] + today
    write_table(
        spark, lake, "features.customer_activity", rows, ACTIVITY_DDL, mode="overwrite", partition_by="feature_date"
    )


def test_good_features_pass_with_reference_bounds(spark, lake):
    _activity_table(spark, lake, [_activity(DAY, c) for c in "ABCDE"])
    report = _validate(spark, lake, "features.customer_activity")
    assert report.success and _failed(report) == [] and report.suite == "features_customer_activity"
    unique = _result(report, "expect_compound_columns_to_be_unique", "customer_id,feature_time")[0]
    assert (unique.severity, unique.unexpected_count, unique.element_count) == ("critical", 0, 5)
    drift = _result(report, "expect_column_mean_to_be_between", "sum_purchase_amount_28d")
    assert [(r.severity, r.observed_value) for r in drift] == [("warning", 40.0), ("critical", 40.0)]
    assert len(_result(report, "expect_column_mean_to_be_between", "count_page_views_28d")) == 1  # warning only


def test_duplicate_feature_row(spark, lake):
    _activity_table(spark, lake, [_activity(DAY, c) for c in "ABCDEA"])
    err, message = _failure(spark, lake, "features.customer_activity")
    assert (
        "suite features_customer_activity, expect_compound_columns_to_be_unique(customer_id,feature_time) "
        "found 2 of 6 rows unexpected (critical)" in message
    )
    assert ("expect_compound_columns_to_be_unique", "customer_id,feature_time", "critical") in _failed(err.report)


def test_shifted_feature_distribution(spark, lake):
    _activity_table(spark, lake, [_activity(DAY, c, amount_28d=400.0) for c in "ABCDE"])
    err, message = _failure(spark, lake, "features.customer_activity")
    # Reference: 40.0 every day; warning band 40 +- 2, critical [20, 80].
    assert message.startswith(
        "validation gate failed: suite features_customer_activity, "
        "expect_column_mean_to_be_between(sum_purchase_amount_28d) observed 400, expected >= 20 and <= 80 (critical); "
    )
    assert _failed(err.report) == [
        ("expect_column_mean_to_be_between", "sum_purchase_amount_28d", "critical"),
        ("expect_column_mean_to_be_between", "sum_purchase_amount_28d", "warning"),
    ]


def test_warm_up_skips_the_drift_of_a_window_not_yet_full(spark, lake):
    # A new table's 28-day sum rises day by day as its window fills: 2, 5, 9, then 20 on its 4th day.
    # Against those 3 days the critical bound would be 2 x 9 = 18, a false stop on the 4th day.
    history = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    ramp = dict(zip(history, (2.0, 5.0, 9.0), strict=True))
    _activity_table(spark, lake, [_activity(date(2026, 1, 4), c, 20.0) for c in "ABCDE"], history, ramp)
    report = _validate(spark, lake, "features.customer_activity", day=date(2026, 1, 4))
    assert report.success and _failed(report) == []
    assert (
        "drift checks of sum_purchase_amount_28d skipped: warm-up, the table starts on 2026-01-01 and its "
        "28-day window is full from 2026-01-28" in report.notes
    )
    drifts = {r.column for r in report.results if r.expectation == "expect_column_mean_to_be_between"}
    # 1-day windows are full from day one; days_since_last has no window (a warning-only check).
    assert drifts == {"count_page_views_1d", "count_add_to_carts_1d", "days_since_last_purchase"}


def test_after_warm_up_the_reference_holds_only_full_window_days(spark, lake):
    # The table starts 2025-12-04; until its 28-day window is full (2025-12-31) the sum ramps from 1.
    # Only the 8 full-window days (40.0) are the reference: 15 is below half of 40 and stops the run.
    # Had the ramp counted, the lowest daily mean would be 1 and 15 would pass.
    ramp = {d: 1.0 + i for i, d in enumerate(ACTIVITY_HISTORY[:27])}
    _activity_table(spark, lake, [_activity(DAY, c, 15.0) for c in "ABCDE"], amounts=ramp)
    err, message = _failure(spark, lake, "features.customer_activity")
    assert "expect_column_mean_to_be_between(sum_purchase_amount_28d) observed 15, expected >= 20 and <= 80 " in message
    drift = _result(err.report, "expect_column_mean_to_be_between", "sum_purchase_amount_28d")
    assert [(r.severity, r.success) for r in drift] == [("warning", False), ("critical", False)]


# --------------------------------------------------------------------------- labels


def _labels(day, positives, n=10):
    t0 = datetime.combine(day, datetime.min.time())
    return [(f"c{i}", t0 + timedelta(hours=8, minutes=i), day, 1 if i < positives else 0) for i in range(n)]


def test_labels_pass_and_an_all_positive_day_fails_the_rate(spark, lake):
    history = [r for d in HISTORY for r in _labels(d, positives=3)]
    write_table(
        spark,
        lake,
        "labels.purchase_propensity",
        [*history, *_labels(DAY, 3)],
        LABELS_DDL,
        mode="overwrite",
        partition_by="label_date",
    )
    report = _validate(spark, lake, "labels.purchase_propensity")
    assert report.success and _failed(report) == [] and report.suite == "labels_purchase_propensity"

    write_table(
        spark,
        lake,
        "labels.purchase_propensity",
        [*history, *_labels(DAY, 10)],
        LABELS_DDL,
        mode="overwrite",
        partition_by="label_date",
    )
    err, message = _failure(spark, lake, "labels.purchase_propensity", version=1)
    # Reference rate 0.3 every day: critical band [0.15, 0.6] (twice the highest daily rate).
    assert "expect_column_mean_to_be_between(label) observed 1, expected >= 0.15 and <= 0.6 (critical)" in message
    assert _failed(err.report) == [
        ("expect_column_mean_to_be_between", "label", "critical"),
        ("expect_column_mean_to_be_between", "label", "warning"),
    ]


# --------------------------------------------------------------------------- training sets


def _training_rows(leak_first=False):
    rows = []
    for i, (cust, label) in enumerate([("A", 1), ("B", 0), ("C", 1), ("D", 0)]):
        label_time = T("2026-01-08 10:00:00") + timedelta(minutes=i)
        activity_time = T("2026-01-08 00:00:00")
        if leak_first and i == 0:
            activity_time = T("2026-01-09 00:00:00")  # the next day's row: after label_time
        activity = _activity(DAY - timedelta(days=1), cust)[4:18]
        profile = ("consumer", "DE", "gold", 30)
        rows.append((cust, label_time, DAY, label, activity_time, *activity, T("2026-01-08 00:00:00"), *profile, "ts1"))
    return rows


TRAINING_DDL = (
    "customer_id string, label_time timestamp, label_date date, label int, customer_activity__feature_time timestamp, "
    + ", ".join(ACTIVITY_DDL.split(", ")[4:18])
    + ", customer_profile__feature_time timestamp, segment string, country string, loyalty_tier string, "
    "tenure_days int, training_set_id string"
)


def test_training_set_passes_and_a_leaked_future_row_fails(spark, lake):
    from pitlake.validation import validate_table

    table = "training_sets.purchase_propensity"
    write_table(spark, lake, table, _training_rows(), TRAINING_DDL, mode="overwrite", partition_by="training_set_id")
    report = validate_table(spark, lake, table, version=0, training_set_id="ts1")
    assert report.success and _failed(report) == [] and report.suite == "training_sets_purchase_propensity"
    assert report.interval is None and report.training_set_id == "ts1"
    leakage = [r for r in report.results if r.check == "leakage"]
    assert sorted((r.column, r.severity) for r in leakage) == [
        ("label_time,customer_activity__feature_time", "critical"),
        ("label_time,customer_profile__feature_time", "critical"),
    ]

    write_table(
        spark,
        lake,
        table,
        _training_rows(leak_first=True),
        TRAINING_DDL,
        mode="overwrite",
        partition_by="training_set_id",
    )
    from pitlake.validation import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        validate_table(spark, lake, table, version=1, training_set_id="ts1")
    assert (
        "suite training_sets_purchase_propensity, "
        "expect_column_pair_values_a_to_be_greater_than_b(label_time,customer_activity__feature_time) "
        "found 1 of 4 rows unexpected (critical)" in str(err.value)
    )
    assert _failed(err.value.report) == [
        ("expect_column_pair_values_a_to_be_greater_than_b", "label_time,customer_activity__feature_time", "critical")
    ]
