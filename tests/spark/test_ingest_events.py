"""Ingestion of events: one hand-built line per defect kind, exact expected rows."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from pitlake.core import delta_io
from pitlake.core.errors import InputError
from pitlake.ingest import EVENTS_QUARANTINE, EVENTS_TABLE, ingest_events

from tests.builders import write_landing

DAY = "2026-01-10"


def ev(
    event_id,
    event_type="page_view",
    customer_id="c1",
    event_time="2026-01-10T08:00:00.000Z",
    amount=None,
    category="books",
    session_id="s1",
    **extra,
):
    rec = {
        "event_id": event_id,
        "event_type": event_type,
        "customer_id": customer_id,
        "event_time": event_time,
        "amount": amount,
        "category": category,
        "session_id": session_id,
        **extra,
    }
    return json.dumps({k: v for k, v in rec.items() if v is not ...})


LINES = [
    ev("e1"),  # 1 ok
    ev("e2", "purchase", amount=12.5, event_time="2026-01-10T00:00:00Z"),  # 2 ok, at the interval start
    '{"event_id":"e3","event_type":"page_vi',  # 3 malformed
    ev("e4", customer_id=None),  # 4 missing customer
    ev("e5", event_time="yesterday at noon"),  # 5 unparseable time
    ev("e6", "purchase", amount=-3.0),  # 6 negative amount
    ev("e7", "wishlist_add"),  # 7 unknown type
    ev("e1"),  # 8 duplicate of line 1
    ev("e9", event_time="2026-01-08T23:59:59Z"),  # 9 late by 2 days: accepted into 2026-01-08
    ev("e10", event_time="2026-01-06T12:00:00Z"),  # 10 late by 4 days > 3: too_late
    ev("e11", event_time="2026-01-11T00:00:00Z"),  # 11 at the interval end: after the interval
    "",  # blank line: not a row
    ev("e12", "purchase", amount=None),  # 13 purchase without amount: accepted, amount unknown
    json.dumps(
        {
            "event_id": "e13",
            "event_type": "page_view",
            "customer_id": "c2",
            "event_time": "2026-01-10T09:00:00Z",
            "amount": "twelve",
        }
    ),  # 14 wrong type for amount
]


def bronze_rows(spark, lake):
    df = delta_io.read(spark, lake.table_path(EVENTS_TABLE))
    return sorted(
        (r.event_id, r.event_type, r.customer_id, r.event_time, r.event_date, r.amount, r.ingest_date, r.line_number)
        for r in df.collect()
    )


def quarantine_rows(spark, lake):
    df = delta_io.read(spark, lake.table_path(EVENTS_QUARANTINE))
    return sorted((r.line_number, r.reason) for r in df.collect())


def test_each_defect_kind_lands_where_the_rules_say(spark, lake):
    write_landing(lake, "events", DAY, LINES)
    summary = ingest_events(spark, lake, date(2026, 1, 10))

    d10, d8 = date(2026, 1, 10), date(2026, 1, 8)
    assert bronze_rows(spark, lake) == [
        ("e1", "page_view", "c1", datetime(2026, 1, 10, 8), d10, None, d10, 1),
        ("e12", "purchase", "c1", datetime(2026, 1, 10, 8), d10, None, d10, 13),
        ("e2", "purchase", "c1", datetime(2026, 1, 10, 0), d10, 12.5, d10, 2),
        ("e9", "page_view", "c1", datetime(2026, 1, 8, 23, 59, 59), d8, None, d10, 9),
    ]
    assert quarantine_rows(spark, lake) == [
        (3, "malformed_record"),
        (4, "missing_customer_id"),
        (5, "unparseable_event_time"),
        (6, "negative_amount"),
        (7, "unknown_event_type"),
        (10, "too_late"),
        (11, "event_time_after_interval"),
        (14, "malformed_record"),
    ]
    assert summary.rows_read == 13
    assert summary.accepted == 4
    assert summary.duplicates_dropped == 1
    assert summary.quarantined == 8
    assert summary.rows_read == summary.accepted + summary.quarantined + summary.duplicates_dropped
    assert summary.late_event_dates == {"2026-01-08": 1}
    assert summary.delta_version == 0


def test_quarantine_keeps_the_raw_line_and_source_file(spark, lake):
    path = write_landing(lake, "events", DAY, LINES)
    ingest_events(spark, lake, date(2026, 1, 10))
    row = delta_io.read(spark, lake.table_path(EVENTS_QUARANTINE)).where("line_number = 3").first()
    assert row.raw_line == LINES[2]
    assert row.source_file.endswith(str(path.relative_to(lake.home)))


def test_rerun_replaces_the_interval_and_never_duplicates(spark, lake):
    write_landing(lake, "events", DAY, LINES)
    first = ingest_events(spark, lake, date(2026, 1, 10))
    rows_before = bronze_rows(spark, lake)
    second = ingest_events(spark, lake, date(2026, 1, 10))
    assert bronze_rows(spark, lake) == rows_before
    assert quarantine_rows(spark, lake)[0] == (3, "malformed_record")
    assert len(quarantine_rows(spark, lake)) == 8
    assert second.delta_version == first.delta_version + 1
    assert second.accepted == first.accepted


def test_rerun_with_corrected_file_replaces_only_that_day(spark, lake):
    write_landing(lake, "events", "2026-01-09", [ev("d9", event_time="2026-01-09T10:00:00Z")])
    ingest_events(spark, lake, date(2026, 1, 9))
    write_landing(lake, "events", DAY, [ev("a"), ev("b")])
    ingest_events(spark, lake, date(2026, 1, 10))
    write_landing(lake, "events", DAY, [ev("a")])  # upstream re-delivered a corrected day
    ingest_events(spark, lake, date(2026, 1, 10))
    assert [r[0] for r in bronze_rows(spark, lake)] == ["a", "d9"]


def test_an_event_resent_on_a_later_day_is_a_duplicate(spark, lake):
    write_landing(lake, "events", "2026-01-09", [ev("x", event_time="2026-01-09T10:00:00Z")])
    ingest_events(spark, lake, date(2026, 1, 9))
    write_landing(lake, "events", DAY, [ev("x", event_time="2026-01-09T10:00:00Z"), ev("y")])
    summary = ingest_events(spark, lake, date(2026, 1, 10))
    assert (summary.accepted, summary.duplicates_dropped) == (1, 1)
    assert [r[0] for r in bronze_rows(spark, lake)] == ["x", "y"]


def test_line_numbers_are_per_file(spark, lake):
    write_landing(lake, "events", DAY, [ev("a"), "{bad"], part=0)
    write_landing(lake, "events", DAY, ["{bad", ev("b")], part=1)
    ingest_events(spark, lake, date(2026, 1, 10))
    q = delta_io.read(spark, lake.table_path(EVENTS_QUARANTINE)).collect()
    assert sorted((r.source_file.rsplit("/", 1)[1], r.line_number) for r in q) == [
        ("part-0000.jsonl", 2),
        ("part-0001.jsonl", 1),
    ]


def test_missing_landing_folder_is_a_clear_error(spark, lake):
    with pytest.raises(InputError, match=r"no landing files for 2026-01-10 in .*--allow-empty"):
        ingest_events(spark, lake, date(2026, 1, 10))


def test_allow_empty_records_an_empty_day(spark, lake):
    summary = ingest_events(spark, lake, date(2026, 1, 10), allow_empty=True)
    assert (summary.rows_read, summary.accepted, summary.quarantined) == (0, 0, 0)
    assert delta_io.read(spark, lake.table_path(EVENTS_TABLE)).count() == 0
