"""Pull one day's product changes from the catalog API, page by page, surviving what HTTP APIs do.

:func:`pull_day` asks for the changes of ``[D 00:00, D+1 00:00)`` from a start cursor, following
``next_cursor`` while ``has_more``. Each request has a timeout; a 429 is retried after its
``Retry-After`` (capped at :data:`MAX_RETRY_AFTER_S`), a 5xx, a timeout, a connection error or a body
that is not the JSON page it should be (a page cut off) after an exponential backoff with jitter, up
to ``attempts`` tries per page. A page that repeats the previous one, or leads back to any cursor
already read, is retried the same way (never followed: it could loop), and a pull stops with one line
after :data:`MAX_PAGES` pages. Items are kept once per ``change_id``: a repeated item is counted, not kept.
Whatever fails for good is a one-line :class:`~pitlake.core.errors.InputError` naming the cursor,
and nothing is written: the caller lands the day's records only after the whole pull succeeded.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pitlake.core.errors import InputError

log = logging.getLogger(__name__)

PAGE_SIZE = 100
TIMEOUT_S = 5.0
ATTEMPTS = 5
BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 30.0
MAX_PAGES = 100_000  # a day's pull that needs more is an API that never ends: stopped with one line
CHANGES = "/v1/products/changes"


@dataclass
class PullReport:
    """What one day's pull did: the cursors it went between, its pages, retries and repeated items."""

    day: str
    start_cursor: str
    end_cursor: str = ""
    pages: int = 0
    requests: int = 0
    retries: dict[str, int] = field(default_factory=dict)  # why -> how many
    repeated_items: int = 0
    records: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


def day_window(day: date) -> tuple[str, str]:
    """``[D 00:00, D+1 00:00)`` as the ISO instants the API takes."""
    start = datetime.combine(day, datetime.min.time())
    return start.isoformat() + "Z", (start + timedelta(days=1)).isoformat() + "Z"


def start_cursor(client: Any, day: date, *, timeout: float = TIMEOUT_S) -> str:
    """The API's cursor for the first change of ``day`` (asked once; the caller stores it)."""
    at, _ = day_window(day)
    try:
        response = client.get("/v1/products/cursor", params={"at": at}, timeout=timeout)
        response.raise_for_status()
        return str(response.json()["cursor"])
    except Exception as err:
        raise InputError(f"catalog API: no start cursor for {day} ({_first(err)}); check that it runs") from None


def pull_day(
    client: Any,
    day: date,
    cursor: str,
    *,
    page_size: int = PAGE_SIZE,
    timeout: float = TIMEOUT_S,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
    seed: int | None = None,
    stop_at: str | None = None,
) -> tuple[list[dict[str, Any]], PullReport]:
    """Every change of ``day`` from ``cursor`` on (see the module), once each, and the pull's report.

    ``client`` is an ``httpx.Client`` on the API's base URL (a FastAPI ``TestClient`` in tests).
    ``stop_at``: the cursor an earlier pull of the day ended at; a rerun stops there, so it replays
    exactly the same changes even when later ones arrived since.
    """
    began = time.perf_counter()
    jitter = random.Random(seed)
    _, until = day_window(day)
    report = PullReport(day=day.isoformat(), start_cursor=cursor)
    seen: set[str] = set()
    visited = {cursor}
    records: list[dict[str, Any]] = []
    while cursor != stop_at:
        if report.pages >= MAX_PAGES:
            raise InputError(f"catalog API: {MAX_PAGES} pages for {day} and still more: check the API's cursors")
        page = _page(client, cursor, until, page_size, timeout, attempts, backoff, sleep, jitter, report, visited)
        report.pages += 1
        for item in page["items"]:
            change = _identity(item)
            if change in seen:
                report.repeated_items += 1
                continue
            seen.add(change)
            records.append(item)
        cursor = page["next_cursor"]
        visited.add(cursor)
        if not page["has_more"]:
            break
    report.end_cursor, report.records = cursor, len(records)
    report.seconds = round(time.perf_counter() - began, 3)
    return records, report


def _identity(item: Any) -> str:
    """A change's identity: its ``change_id``, or the whole record when it has none."""
    change = item.get("change_id") if isinstance(item, dict) else None
    return f"id:{change}" if isinstance(change, str) and change else "record:" + json.dumps(item, sort_keys=True)


def _page(client: Any, cursor: str, until: str, page_size: int, timeout: float, attempts: int, backoff: float,
          sleep: Callable[[float], None], jitter: random.Random, report: PullReport,
          visited: set[str]) -> dict[str, Any]:  # fmt: skip
    """One page from ``cursor``, retried (see the module); an :class:`InputError` when it never comes."""
    for attempt in range(1, attempts + 1):
        report.requests += 1
        try:
            return _request(client, cursor, until, page_size, timeout, visited)
        except _Retry as retry:
            report.retries[retry.reason] = report.retries.get(retry.reason, 0) + 1
            if attempt == attempts:
                raise InputError(
                    f"catalog API: the page after cursor {cursor} failed {attempts} times (last: {retry}); "
                    "nothing was landed: rerun when the API answers (the day's start cursor is kept)"
                ) from None
            wait = retry.wait if retry.wait is not None else min(MAX_BACKOFF_S, backoff * 2 ** (attempt - 1))
            wait = wait if retry.wait is not None else wait * (0.5 + jitter.random())
            log.warning("catalog API: %s at cursor %s; retry %d/%d in %.2f s", retry, cursor, attempt,
                        attempts - 1, wait)  # fmt: skip
            sleep(wait)
    raise AssertionError("unreachable")


def _request(client: Any, cursor: str, until: str, page_size: int, timeout: float, visited: set[str]) -> dict[str, Any]:
    import httpx

    try:
        response = client.get(CHANGES, params={"since": cursor, "until": until, "limit": page_size}, timeout=timeout)
    except httpx.TimeoutException:
        raise _Retry("timeout") from None
    except httpx.TransportError as err:
        raise _Retry(f"connection error: {_first(err)}") from None
    if response.status_code == 429:
        raise _Retry("429 too many requests", _retry_after(response.headers.get("Retry-After")))
    if response.status_code >= 500:
        raise _Retry(f"{response.status_code} server error")
    if response.status_code != 200:
        raise InputError(
            f"catalog API: {response.status_code} for the page after cursor {cursor}: {response.text[:200]}"
        )
    try:
        page = json.loads(response.content)
    except ValueError:
        raise _Retry("a page that is not whole JSON (cut off?)") from None
    if not (
        isinstance(page, dict)
        and isinstance(page.get("items"), list)
        and isinstance(page.get("next_cursor"), str)
        and isinstance(page.get("has_more"), bool)
    ):
        raise _Retry("a page without items, next_cursor and has_more")
    if page["next_cursor"] in visited and (page["has_more"] or page["items"]):
        # A page that leads back to a cursor already read (the same one: a repeated page) would be read
        # again, and again: never followed.
        raise _Retry("the previous page again (the cursor did not move)")
    return page


def _retry_after(value: str | None) -> float | None:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _first(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
