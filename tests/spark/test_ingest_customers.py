"""SCD2 ingestion of customer profiles: exact history rows, late changes, reruns, quarantine."""

from __future__ import annotations

import json
from datetime import date, datetime

from pitlake.core import delta_io
from pitlake.ingest import CUSTOMERS_QUARANTINE, CUSTOMERS_TABLE, ingest_customers

from tests.builders import write_landing


def prof(cid, tier, updated_at, segment="consumer", country="DE", signup_date="2025-06-01"):
    return json.dumps(
        {
            "customer_id": cid,
            "segment": segment,
            "country": country,
            "loyalty_tier": tier,
            "signup_date": signup_date,
            "updated_at": updated_at,
        }
    )


def history(spark, lake):
    df = delta_io.read(spark, lake.table_path(CUSTOMERS_TABLE))
    return sorted(
        (r.customer_id, r.loyalty_tier, r.valid_from, r.valid_to, r.is_current, r.ingest_date) for r in df.collect()
    )


D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)


def test_scd2_history_with_a_late_change_and_rerun(spark, lake):
    write_landing(
        lake,
        "customers",
        "2026-01-01",
        [prof("a", "none", "2026-01-01T00:00:00Z"), prof("b", "gold", "2026-01-01T00:00:00Z")],
    )
    write_landing(lake, "customers", "2026-01-02", [prof("a", "bronze", "2026-01-02T10:00:00Z")])
    # Day 3's file carries a change of 'a' that happened on day 1 (late) and a new one of 'b'.
    write_landing(
        lake,
        "customers",
        "2026-01-03",
        [prof("a", "silver", "2026-01-01T12:00:00Z"), prof("b", "silver", "2026-01-03T00:00:00Z")],
    )
    for day in (D1, D2, D3):
        ingest_customers(spark, lake, day)
    expected = [
        ("a", "bronze", datetime(2026, 1, 2, 10), None, True, D2),
        ("a", "none", datetime(2026, 1, 1), datetime(2026, 1, 1, 12), False, D1),
        ("a", "silver", datetime(2026, 1, 1, 12), datetime(2026, 1, 2, 10), False, D3),
        ("b", "gold", datetime(2026, 1, 1), datetime(2026, 1, 3), False, D1),
        ("b", "silver", datetime(2026, 1, 3), None, True, D3),
    ]
    assert history(spark, lake) == expected
    ingest_customers(spark, lake, D3)  # rerun: same history
    assert history(spark, lake) == expected
    # A corrected day-3 file without the late change: 'a' goes back to two versions.
    write_landing(lake, "customers", "2026-01-03", [prof("b", "silver", "2026-01-03T00:00:00Z")])
    ingest_customers(spark, lake, D3)
    assert history(spark, lake) == [
        ("a", "bronze", datetime(2026, 1, 2, 10), None, True, D2),
        ("a", "none", datetime(2026, 1, 1), datetime(2026, 1, 2, 10), False, D1),
        ("b", "gold", datetime(2026, 1, 1), datetime(2026, 1, 3), False, D1),
        ("b", "silver", datetime(2026, 1, 3), None, True, D3),
    ]


def test_bad_profiles_are_quarantined_and_counts_conserved(spark, lake):
    write_landing(
        lake,
        "customers",
        "2026-01-01",
        [
            prof("a", "none", "2026-01-01T00:00:00Z"),
            prof("a", "none", "2026-01-01T00:00:00Z"),  # exact resend
            '{"customer_id":"b","segment":',
            prof(None, "gold", "2026-01-01T00:00:00Z"),
            prof("c", "platinum-plus", "2026-01-01T00:00:00Z"),
            prof("d", "gold", "soon"),
            prof("e", "gold", "2026-01-02T00:00:00Z"),
            prof("f", "gold", "2026-01-01T05:00:00Z", signup_date="last spring"),
        ],
    )
    summary = ingest_customers(spark, lake, D1)
    assert [r[0] for r in history(spark, lake)] == ["a"]
    q = delta_io.read(spark, lake.table_path(CUSTOMERS_QUARANTINE)).collect()
    assert sorted((r.line_number, r.reason) for r in q) == [
        (3, "malformed_record"),
        (4, "missing_customer_id"),
        (5, "unknown_loyalty_tier"),
        (6, "unparseable_updated_at"),
        (7, "updated_at_after_interval"),
        (8, "unparseable_signup_date"),
    ]
    assert (summary.rows_read, summary.accepted, summary.quarantined, summary.duplicates_dropped) == (8, 1, 6, 1)


def test_a_corrected_resend_after_a_quarantined_profile_is_accepted(spark, lake):
    bad = prof("a", "diamond", "2026-01-01T08:00:00Z")  # an unknown tier: quarantined
    write_landing(lake, "customers", "2026-01-01", [bad, prof("a", "gold", "2026-01-01T08:00:00Z")])
    summary = ingest_customers(spark, lake, D1)
    assert history(spark, lake) == [("a", "gold", datetime(2026, 1, 1, 8), None, True, D1)]
    q = delta_io.read(spark, lake.table_path(CUSTOMERS_QUARANTINE)).collect()
    assert [(r.line_number, r.reason, r.raw_line) for r in q] == [(1, "unknown_loyalty_tier", bad)]
    assert (summary.records_in_landing, summary.accepted, summary.quarantined, summary.duplicates_dropped) == (
        2, 1, 1, 0,
    )  # fmt: skip
