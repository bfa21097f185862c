"""The demo's product catalog API (FastAPI): the catalog's change log, paged behind an opaque cursor.

* ``GET /v1/products/cursor?at=<ISO instant>`` → ``{"cursor": c}``: the position of the first change at
  or after ``at`` (changes are ordered by ``updated_at``, then ``change_id``);
* ``GET /v1/products/changes?since=<cursor>&until=<ISO instant>&limit=<n>`` → ``{"items": [...],
  "next_cursor": c, "has_more": bool}``: up to ``n`` changes from ``since`` on that happened before
  ``until``; ``next_cursor`` resumes after the last item.

A cursor is ``<day ordinal>:<index>``, a position in the change log of :mod:`pitlake.demo.products`;
the log is computed per day on demand, so the API holds no state. :class:`Faults` makes chosen
``/changes`` requests fail the ways real APIs do (a 500, a 429 with ``Retry-After``, a page cut off
mid-body, the previous page again, a page overlapping the previous one, a slow answer), for the
ingestion's tests. ``python -m pitlake
catalog-api`` serves it on ``PITLAKE_CATALOG_API_URL``'s host and port (127.0.0.1:8765 by default).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from pitlake.demo.config import DemoConfig
from pitlake.demo.products import generate_products

MAX_LIMIT = 500
FAULT_KINDS = ("500", "429", "truncated", "duplicate", "overlap", "slow")


@dataclass
class Faults:
    """``/changes`` request number (1-based, counted by the app) → the fault it gets instead of its answer."""

    plan: dict[int, str] = field(default_factory=dict)
    retry_after_s: int = 1
    slow_s: float = 3.0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        unknown = sorted({kind for kind in self.plan.values() if kind not in FAULT_KINDS})
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}")

    def next(self) -> tuple[int, str | None]:
        with self._lock:
            self.requests += 1
            fault = self.plan.get(self.requests)
            return self.requests, fault


def parse_cursor(cursor: str) -> tuple[int, int]:
    try:
        ordinal, index = (int(part) for part in cursor.split(":"))
    except ValueError:
        raise ValueError(f"cursor {cursor!r} is not one this API issued") from None
    if index < 0 or ordinal < 1:
        raise ValueError(f"cursor {cursor!r} is not one this API issued")
    return ordinal, index


def create_app(
    cfg: DemoConfig, faults: Faults | None = None, changes_of: Callable[[date], list[dict[str, Any]]] | None = None
) -> Any:
    """The API for the catalog of ``cfg`` (the demo's seed and epoch); ``faults`` and ``changes_of`` (a
    day's change records, oldest first, instead of the generator's) for tests."""
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import JSONResponse, Response

    faults = faults or Faults()
    app = FastAPI(title="pitlake demo catalog API", version="1")
    app.state.faults = faults
    previous: dict[str, bytes] = {}

    @lru_cache(maxsize=64)
    def day_log(ordinal: int) -> list[dict[str, Any]]:
        day = date.fromordinal(ordinal)
        return changes_of(day) if changes_of is not None else generate_products(cfg, day)[0]

    def instant(value: str, name: str) -> str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(400, f"{name} {value!r} is not an ISO instant") from None
        if parsed.tzinfo is not None:  # the log is in UTC; a naive instant is taken as UTC
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # the log's own format: compared as text

    def peek(ordinal: int, index: int, last_day: int, until_text: str) -> bool:
        """Whether a change before ``until`` follows the position."""
        while ordinal <= last_day:
            log = day_log(ordinal)
            if index < len(log):
                return bool(log[index]["updated_at"] < until_text)
            ordinal, index = ordinal + 1, 0
        return False

    @app.get("/v1/products/cursor")
    def cursor(at: str) -> dict[str, str]:
        at_text = instant(at, "at")
        day = max(date.fromisoformat(at_text[:10]), cfg.epoch)
        items = day_log(day.toordinal())
        index = next((i for i, r in enumerate(items) if r["updated_at"] >= at_text), len(items))
        return {"cursor": f"{day.toordinal()}:{index}"}

    @app.get("/v1/products/changes")
    def changes(since: str, until: str, limit: int = Query(100, ge=1, le=MAX_LIMIT)) -> Response:
        number, fault = faults.next()
        if fault == "500":
            return JSONResponse({"error": "internal error (injected)"}, status_code=500)
        if fault == "429":
            return JSONResponse({"error": "slow down (injected)"}, status_code=429,
                                headers={"Retry-After": str(faults.retry_after_s)})  # fmt: skip
        if fault == "duplicate" and "body" in previous:
            return Response(previous["body"], media_type="application/json")
        if fault == "slow":
            time.sleep(faults.slow_s)
        overlap = 3 if fault == "overlap" else 0  # offset paging that shifted: the page starts 3 items back
        try:
            ordinal, index = parse_cursor(since)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        until_text = instant(until, "until")
        if ordinal < cfg.epoch.toordinal():  # nothing changed before the epoch
            ordinal, index = cfg.epoch.toordinal(), 0
        index = max(0, index - overlap)
        # The last day with an instant before `until`: a cursor never moves into a day the window does not
        # reach (its log may still grow), so the next pull starts exactly where this one ended.
        last_day = date.fromisoformat(until_text[:10]).toordinal() - (until_text[11:] == "00:00:00.000Z")
        items: list[dict[str, Any]] = []
        while len(items) < limit and ordinal <= last_day:
            log = day_log(ordinal)
            if index >= len(log):
                ordinal, index = ordinal + 1, 0
            elif log[index]["updated_at"] >= until_text:
                break
            else:
                items.append(log[index])
                index += 1
        has_more = peek(ordinal, index, last_day, until_text)
        body = json.dumps({"items": items, "next_cursor": f"{ordinal}:{index}", "has_more": has_more}).encode()
        previous["body"] = body
        if fault == "truncated":
            return Response(body[: len(body) // 2], media_type="application/json")
        return Response(body, media_type="application/json", headers={"X-Request-Number": str(number)})

    return app


def serve(cfg: DemoConfig, host: str, port: int) -> None:
    """Serve the API until interrupted (``python -m pitlake catalog-api``)."""
    import uvicorn

    uvicorn.run(create_app(cfg), host=host, port=port, log_level="warning")


def answering(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a catalog API answers at ``url`` now."""
    import httpx

    try:
        return httpx.get(
            f"{url}/v1/products/cursor", params={"at": "2026-01-01T00:00:00Z"}, timeout=timeout_s
        ).is_success
    except httpx.HTTPError:
        return False


@contextmanager
def running(cfg: DemoConfig, url: str, faults: Faults | None = None) -> Iterator[str]:
    """The API on ``url`` (127.0.0.1 and a port) for the block, in a thread of this process; when one already
    answers there (``make catalog-api``, compose), that one is used and left running. Yields ``url``."""
    from urllib.parse import urlsplit

    import uvicorn

    if faults is None and answering(url):
        yield url
        return
    parts = urlsplit(url)
    config = uvicorn.Config(create_app(cfg, faults), host=parts.hostname or "127.0.0.1", port=parts.port or 80,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="catalog-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo catalog API did not start on {url}: is the port taken?")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
