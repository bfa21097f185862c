"""Products from the catalog API into the SCD2 bronze.products: exact history rows from a hand-built change
log, bad records quarantined with a reason and counts conserved, and a rerun of a day through injected
faults pulling the same changes from the day's stored cursor and committing the same rows."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from pitlake.core import delta_io
from pitlake.demo.catalog_api import Faults, create_app
from pitlake.demo.config import DemoConfig
from pitlake.ingest import PRODUCTS_QUARANTINE, PRODUCTS_TABLE, ingest_products
from pitlake.ingest.products import cursor_file

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the .timeout. argument with the TestClient")

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)


def change(change_id, product, category="books", price=10.0, available=True, updated_at="2026-01-01T00:00:00.000Z"):
    return {"change_id": change_id, "change": "test", "product_id": product, "name": f"{product} name",
            "category": category, "price": price, "available": available, "launch_date": "2025-12-01",
            "updated_at": updated_at}  # fmt: skip


LOG = {
    D1: [
        change("1-0", "p1", price=10.0),
        change("1-1", "p2", "toys", 20.0),
        change("1-2", None),
        change("1-3", "p3", "antiques"),
        change("1-4", "p4", price=-5.0),
    ],
    D2: [
        change("2-0", "p1", price=12.0, updated_at="2026-01-02T10:00:00.000Z"),
        change("2-1", "p2", "toys", 20.0, available=False, updated_at="2026-01-02T11:00:00.000Z"),
        change("2-2", "p1", price=12.0, updated_at="2026-01-02T10:00:00.000Z"),  # the same version resent
    ],
}
# Reached the API on day 3, after day 2 was pulled: a change of p1 made on day 2 (late).
LATE = [change("3-0", "p1", price=13.0, updated_at="2026-01-02T15:00:00.000Z")]


def api(log: dict[date, list[dict]], faults: Faults | None = None):
    from fastapi.testclient import TestClient

    return TestClient(create_app(DemoConfig(epoch=D1), faults, changes_of=lambda day: log.get(day, [])))


def history(spark, lake):
    rows = delta_io.read(spark, lake.table_path(PRODUCTS_TABLE)).collect()
    return sorted((r.product_id, r.category, r.price, r.available, r.valid_from, r.valid_to, r.is_current,
                   r.ingest_date) for r in rows)  # fmt: skip


def test_catalog_changes_become_scd2_versions_and_a_rerun_through_faults_changes_nothing(spark, lake):
    from pitlake.validation import gate

    arrived = dict(LOG)
    with api(arrived) as client:
        first = ingest_products(spark, lake, D1, client=client, page_size=2)
        second = ingest_products(spark, lake, D2, client=client, page_size=2)
    arrived[D3] = LATE
    with api(arrived) as client:
        third = ingest_products(spark, lake, D3, client=client, page_size=2)
    assert (first.records_in_landing, first.accepted, first.quarantined, first.duplicates_dropped) == (5, 2, 3, 0)
    assert first.quarantined_by_reason == {
        "missing_product_id": 1, "unknown_category": 1, "missing_or_negative_price": 1
    }  # fmt: skip
    assert first.source["pages"] == 3 and first.source["start_cursor"] == f"{D1.toordinal()}:0"
    assert (second.records_in_landing, second.accepted, second.duplicates_dropped) == (3, 2, 1)
    # Each day starts where the previous pull ended, so the late change is pulled (by day 3), not lost.
    assert second.source["start_cursor"] == first.source["end_cursor"] == f"{D2.toordinal()}:0"
    assert third.source["start_cursor"] == second.source["end_cursor"] and third.accepted == 1
    expected = [
        ("p1", "books", 10.0, True, datetime(2026, 1, 1), datetime(2026, 1, 2, 10), False, D1),
        ("p1", "books", 12.0, True, datetime(2026, 1, 2, 10), datetime(2026, 1, 2, 15), False, D2),
        ("p1", "books", 13.0, True, datetime(2026, 1, 2, 15), None, True, D3),  # slotted in by its updated_at
        ("p2", "toys", 20.0, True, datetime(2026, 1, 1), datetime(2026, 1, 2, 11), False, D1),
        ("p2", "toys", 20.0, False, datetime(2026, 1, 2, 11), None, True, D2),
    ]
    assert history(spark, lake) == sorted(expected)
    quarantined = delta_io.read(spark, lake.table_path(PRODUCTS_QUARANTINE)).collect()
    assert sorted((r.reason, r.product_id) for r in quarantined) == [
        ("missing_or_negative_price", "p4"), ("missing_product_id", None), ("unknown_category", "p3")
    ]  # fmt: skip

    # Rerun day 2 through a 500, the previous page again and a 429: from and to the stored cursors, so the
    # same changes (not the late one, which is day 3's now) and the same rows.
    stored = json.loads(cursor_file(lake, D2).read_text())
    landed = (lake.landing / "products" / "date=2026-01-02" / "part-0000.jsonl").read_bytes()
    faults = Faults(plan={1: "500", 3: "duplicate", 4: "429"}, retry_after_s=0)
    with api(arrived, faults) as client:
        rerun = ingest_products(spark, lake, D2, client=client, page_size=2, sleep=lambda _s: None)
    assert rerun.source["start_cursor"] == stored["start_cursor"] == second.source["start_cursor"]
    assert rerun.source["retries"] == {"500 server error": 1, "the previous page again (the cursor did not move)": 1,
                                       "429 too many requests": 1}  # fmt: skip
    assert (lake.landing / "products" / "date=2026-01-02" / "part-0000.jsonl").read_bytes() == landed
    assert rerun.delta_version > second.delta_version and history(spark, lake) == sorted(expected)
    result = gate(spark, lake, PRODUCTS_TABLE, version=rerun.delta_version, run_id="t", interval_start=D1,
                  interval_end=D2)  # fmt: skip
    assert result["success"] and result["suite"] == "bronze_products"
