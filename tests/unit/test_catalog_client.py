"""Pulling a day of product changes from the catalog API (pitlake.ingest.catalog_client against
pitlake.demo.catalog_api): every change exactly once through paging and injected faults (a 500, a 429
with Retry-After, a page cut off, the previous page again, a page overlapping the previous one, a
timeout on a real server), and one line when the API never answers."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date

import pytest
from pitlake.core.errors import InputError
from pitlake.demo.catalog_api import Faults, create_app
from pitlake.demo.config import DemoConfig
from pitlake.demo.products import generate_products
from pitlake.ingest.catalog_client import pull_day, start_cursor

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the .timeout. argument with the TestClient")

CFG = DemoConfig()
EPOCH = CFG.epoch  # 200 products, one record each (3 of them with a defect)


def client(faults: Faults | None = None):
    from fastapi.testclient import TestClient

    return TestClient(create_app(CFG, faults))


def test_a_day_is_paged_through_once_from_its_start_cursor():
    expected = generate_products(CFG, EPOCH)[0]
    with client() as api:
        cursor = start_cursor(api, EPOCH)
        records, report = pull_day(api, EPOCH, cursor, page_size=30)
    assert cursor == f"{EPOCH.toordinal()}:0"
    assert records == expected and len(records) == 200
    assert (report.pages, report.requests, report.retries, report.repeated_items) == (7, 7, {}, 0)
    assert report.end_cursor == f"{EPOCH.toordinal() + 1}:0"  # the next day's first change
    # The next day starts where this one ended; its pull stops at its own end.
    day2 = date.fromordinal(EPOCH.toordinal() + 1)
    with client() as api:
        records, report = pull_day(api, day2, report.end_cursor, page_size=30)
    assert records == generate_products(CFG, day2)[0] and report.start_cursor == f"{EPOCH.toordinal() + 1}:0"


def test_faults_are_retried_and_no_change_is_lost_or_doubled():
    faults = Faults(plan={2: "500", 3: "429", 5: "truncated", 7: "duplicate", 9: "overlap"}, retry_after_s=2)
    waits: list[float] = []
    with client(faults) as api:
        records, report = pull_day(api, EPOCH, f"{EPOCH.toordinal()}:0", page_size=30, sleep=waits.append, seed=1)
    assert records == generate_products(CFG, EPOCH)[0]
    assert report.retries == {
        "500 server error": 1,
        "429 too many requests": 1,
        "a page that is not whole JSON (cut off?)": 1,
        "the previous page again (the cursor did not move)": 1,
    }
    assert report.repeated_items == 3  # the overlapping page's first three, already pulled
    # 7 pages of 30 (the overlap's three repeats still fit in them) and 4 retried requests.
    assert (report.pages, report.requests, faults.requests) == (7, 11, 11)
    assert waits[1] == 2.0  # the 429's Retry-After, exactly
    backoffs = [waits[0], waits[2], waits[3]]  # first retries of their pages: 0.5 s x jitter in [0.5, 1.5)
    assert all(0.25 <= w < 0.75 for w in backoffs), backoffs


def test_a_page_that_never_comes_is_one_line_and_a_client_error_is_not_retried():
    faults = Faults(plan={n: "500" for n in range(2, 10)})
    with client(faults) as api, pytest.raises(InputError) as failed:
        pull_day(api, EPOCH, f"{EPOCH.toordinal()}:0", page_size=50, attempts=3, sleep=lambda _s: None)
    assert str(failed.value) == (
        f"catalog API: the page after cursor {EPOCH.toordinal()}:50 failed 3 times (last: 500 server error); "
        "nothing was landed: rerun when the API answers (the day's start cursor is kept)"
    )
    with client() as api, pytest.raises(InputError, match=r"^catalog API: 400 for the page after cursor nope: "):
        pull_day(api, EPOCH, "nope", sleep=lambda _s: None)


def test_a_slow_answer_times_out_and_is_retried_on_a_real_server():
    import httpx
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    faults = Faults(plan={1: "slow"}, slow_s=1.5)
    server = uvicorn.Server(uvicorn.Config(create_app(CFG, faults), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as api:
            records, report = pull_day(api, EPOCH, f"{EPOCH.toordinal()}:0", page_size=100, timeout=0.5,
                                       sleep=lambda _s: None)  # fmt: skip
        assert report.retries == {"timeout": 1} and len(records) == 200
        with pytest.raises(InputError, match=r"^catalog API: no start cursor for 2026-01-01 \("):
            start_cursor(httpx.Client(base_url="http://127.0.0.1:9"), EPOCH, timeout=0.5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Canned:
    """An API that answers every page from a list of (items, next_cursor, has_more), by request number."""

    def __init__(self, pages):
        self.pages, self.requests = pages, 0

    def get(self, path, params, timeout):
        import httpx

        items, next_cursor, has_more = self.pages[min(self.requests, len(self.pages) - 1)]
        self.requests += 1
        return httpx.Response(200, json={"items": items, "next_cursor": next_cursor, "has_more": has_more})


def test_a_cursor_that_leads_back_is_never_followed_and_records_without_an_id_are_kept_once():
    looping = Canned([([], "c0", True)])  # an empty page that says there is more, from the same cursor
    with pytest.raises(InputError, match=r"failed 3 times \(last: the previous page again"):
        pull_day(looping, EPOCH, "c0", attempts=3, sleep=lambda _s: None)
    assert looping.requests == 3
    back = Canned([([{"change_id": "a"}], "c1", True), ([{"change_id": "b"}], "c0", True)])
    with pytest.raises(InputError, match="the previous page again"):
        pull_day(back, EPOCH, "c0", attempts=2, sleep=lambda _s: None)
    anonymous = {"product_id": "p1", "price": 3.0}  # no change_id: the record itself is its identity
    overlap = Canned([([anonymous], "c1", True), ([anonymous, {"product_id": "p2"}], "c2", False)])
    records, report = pull_day(overlap, EPOCH, "c0", sleep=lambda _s: None)
    assert records == [anonymous, {"product_id": "p2"}] and report.repeated_items == 1


def test_a_rerun_stops_at_the_cursor_the_first_pull_ended_at():
    with client() as api:
        records, report = pull_day(
            api, EPOCH, f"{EPOCH.toordinal()}:0", page_size=30, stop_at=f"{EPOCH.toordinal()}:60"
        )
    assert records == generate_products(CFG, EPOCH)[0][:60] and report.pages == 2


def test_a_fault_plan_names_only_faults_the_api_can_play():
    with pytest.raises(ValueError, match=r"unknown fault kind\(s\) \['503'\]; known: 500, 429, truncated"):
        Faults(plan={1: "503"})
