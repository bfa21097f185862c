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
    ),  # 14 wrong type for amount: a string where the schema says number
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
        (14, "wrong_type"),
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


def landing_folder(lake):
    folder = lake.landing / "events" / f"date={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_record_in_landing_is_accounted_for(spark, lake):
    folder = landing_folder(lake)
    (folder / "a.jsonl").write_bytes(ev("r1").encode() + b"\r" + ev("r2").encode() + b"\r")  # \r-only endings
    garbage = ev("g1") + " xyz"
    lines_b = [
        (ev("m1") + ev("m2")).encode(),  # 1: two records on one line
        ev("x1", customer_id=None).encode(),  # 2: quarantined ...
        ev("x1").encode(),  # 3: ... and its corrected resend: accepted, not a duplicate of line 2
        ev("u1").replace('"books"', '"caf\xe9"').encode("latin-1"),  # 4: a byte that is not UTF-8
        ev("n1", "purchase", amount=float("nan")).encode(),  # 5: NaN
        ev("t1", customer_id=7).encode(),  # 6: a number where the schema says string
        garbage.encode(),  # 7: trailing garbage after a valid object
        ev("r1").encode(),  # 8: a duplicate of a.jsonl line 1
        ev(None).encode(),  # 9: no event_id
    ]
    (folder / "b.jsonl").write_bytes(b"\n".join(lines_b) + b"\n")
    (folder / "_SUCCESS").write_bytes(b"")  # an empty marker: read, holds no records

    summary = ingest_events(spark, lake, date(2026, 1, 10))

    bronze = delta_io.read(spark, lake.table_path(EVENTS_TABLE)).collect()
    assert sorted((r.source_file.rsplit("/", 1)[1], r.line_number, r.event_id) for r in bronze) == [
        ("a.jsonl", 1, "r1"),
        ("a.jsonl", 2, "r2"),
        ("b.jsonl", 1, "m1"),
        ("b.jsonl", 1, "m2"),
        ("b.jsonl", 3, "x1"),
    ]
    assert all(r.source_file.startswith("file:///") for r in bronze)
    q = delta_io.read(spark, lake.table_path(EVENTS_QUARANTINE)).collect()
    assert sorted((r.line_number, r.reason, r.raw_line) for r in q) == [
        (2, "missing_customer_id", ev("x1", customer_id=None)),
        (4, "invalid_utf8", ev("u1").replace('"books"', '"caf\\xe9"')),
        (5, "non_finite_number", ev("n1", "purchase", amount=float("nan"))),
        (6, "wrong_type", ev("t1", customer_id=7)),
        (7, "trailing_garbage", garbage),
        (9, "missing_event_id", ev(None)),
    ]
    assert (summary.records_in_landing, summary.rows_read, summary.accepted, summary.quarantined) == (12, 12, 5, 6)
    assert summary.duplicates_dropped == 1
    assert (summary.files, summary.empty_files) == (["a.jsonl", "b.jsonl"], ["_SUCCESS"])


def test_files_the_job_would_not_read_refuse_the_day_by_name(spark, lake):
    folder = landing_folder(lake)
    (folder / "part-0000.jsonl").write_text(ev("e1") + "\n")
    (folder / "_part-0001.jsonl").write_text(ev("e2") + "\n")  # Spark skips names starting with _ or .
    (folder / ".part-0002.jsonl").write_text(ev("e3") + "\n")
    (folder / "part-0003.json").write_text(ev("e4") + "\n")
    with pytest.raises(InputError, match=r"would not read: \.part-0002\.jsonl, _part-0001\.jsonl, part-0003\.json;"):
        ingest_events(spark, lake, date(2026, 1, 10))
    assert not delta_io.table_exists(spark, lake.table_path(EVENTS_TABLE))


def test_an_empty_day_never_erases_an_ingested_day_without_the_flag(spark, lake):
    write_landing(lake, "events", DAY, [ev("e1")])
    ingest_events(spark, lake, date(2026, 1, 10))
    write_landing(lake, "events", DAY, [])  # the day's file is now empty
    with pytest.raises(InputError, match=r"only empty files \(part-0000\.jsonl\) for 2026-01-10 .*--allow-empty"):
        ingest_events(spark, lake, date(2026, 1, 10))
    with pytest.raises(
        InputError, match=r"has no records but .* holds rows ingested for 2026-01-10.*--replace-with-empty"
    ):
        ingest_events(spark, lake, date(2026, 1, 10), allow_empty=True)
    assert [r.event_id for r in delta_io.read(spark, lake.table_path(EVENTS_TABLE)).collect()] == ["e1"]
    summary = ingest_events(spark, lake, date(2026, 1, 10), allow_empty=True, replace_with_empty=True)
    assert (summary.records_in_landing, summary.accepted) == (0, 0)
    assert delta_io.read(spark, lake.table_path(EVENTS_TABLE)).count() == 0


def test_committed_rows_that_do_not_add_up_to_the_landing_count_fail_the_run(spark, lake):
    import dataclasses

    from deltalake import DeltaTable
    from pitlake.ingest.common import LostRecordsError, check_conservation, scan_landing
    from pitlake.ingest.events import EVENT_FIELDS

    write_landing(lake, "events", DAY, [ev("e1"), ev("e2"), "{bad"])
    ingest_events(spark, lake, date(2026, 1, 10))  # its own check passed: 3 records = 2 + 1 + 0
    landing = scan_landing(landing_folder(lake), date(2026, 1, 10), EVENT_FIELDS, allow_empty=False)
    # The committed rows as the tables hold them (read here with delta-rs, not by the job).
    committed = {
        "bronze": DeltaTable(lake.table_path(EVENTS_TABLE)).to_pyarrow_dataset().count_rows(),
        "quarantine": DeltaTable(lake.table_path(EVENTS_QUARANTINE)).to_pyarrow_dataset().count_rows(),
    }
    assert (landing.records, committed) == (3, {"bronze": 2, "quarantine": 1})
    check_conservation(EVENTS_TABLE, date(2026, 1, 10), landing, committed, 0)
    # One record more in landing than the tables hold (as when Spark skipped a line): the run fails.
    with pytest.raises(LostRecordsError, match=r"bronze.events 2026-01-10: 4 records in .* but bronze 2, quarantine 1"):
        check_conservation(EVENTS_TABLE, date(2026, 1, 10), dataclasses.replace(landing, records=4), committed, 0)


def test_product_id_lands_and_a_table_from_before_it_gains_the_column(spark, lake):
    # bronze.events as an earlier pitlake wrote it: no product_id column.
    write_landing(lake, "events", "2026-01-09", [ev("old", event_time="2026-01-09T08:00:00Z")])
    ingest_events(spark, lake, date(2026, 1, 9))
    path = lake.table_path(EVENTS_TABLE)
    old = delta_io.read(spark, path).drop("product_id")
    old.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("event_date").save(path)
    assert "product_id" not in delta_io.read(spark, path).columns
    write_landing(lake, "events", DAY, [ev("new", product_id="p00042"), ev("none")])
    ingest_events(spark, lake, date(2026, 1, 10))
    rows = sorted((r.event_id, r.product_id) for r in delta_io.read(spark, path).collect())
    assert rows == [("new", "p00042"), ("none", None), ("old", None)]
