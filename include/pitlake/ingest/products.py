"""The product catalog's HTTP API → ``landing/products/date=D/`` → the SCD2 ``bronze.products`` (one MERGE
commit per run) and ``quarantine.products``.

:func:`pull_products` pulls day D's changes (:mod:`pitlake.ingest.catalog_client`): from the cursor where
D-1's pull ended (so a change that reached the API after that pull is not lost between days), else the
API's cursor for D's start; both ends are stored under ``$PITLAKE_HOME/cursors/products/``, and a rerun of
D replays exactly that stretch of the log, whatever arrived since. The records land as one JSON Lines
file (replacing the day's earlier pull) once the whole pull succeeded, with its report beside the cursor.
A change that reached the API late lands with the day that pulled it and slots into the history by its
``updated_at``, as a late profile change does.
:func:`ingest_products` pulls, then ingests the landed day the way customers are ingested: every record
accepted, quarantined with a reason, or a counted duplicate, checked against the driver's own count.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.dates import utc_now
from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.ingest.catalog_client import PullReport, pull_day, start_cursor
from pitlake.ingest.common import IngestSummary
from pitlake.ingest.scd2 import VersionedSource, ingest_versions
from pitlake.sources.vocabulary import CATEGORIES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

PRODUCTS_TABLE = "bronze.products"
PRODUCTS_QUARANTINE = "quarantine.products"
PRODUCT_FIELDS = {
    "change_id": "string",
    "change": "string",
    "product_id": "string",
    "name": "string",
    "category": "string",
    "price": "number",
    "available": "boolean",
    "launch_date": "string",
    "updated_at": "string",
}


def cursor_file(settings: Settings, day: date) -> Path:
    return settings.home / "cursors" / "products" / f"date={day.isoformat()}.json"


def _read_cursors(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise InputError(
            f"{path} is not the JSON pitlake writes: delete it to ask the API for the day's start"
        ) from None
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Written whole or not at all (a temporary file, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(data, indent=2))
    os.replace(staged, path)


def pull_products(settings: Settings, day: date, client: Any = None, **pull: Any) -> PullReport:
    """Pull ``day``'s changes from the catalog API into ``landing/products/date=<day>/`` (see the module).

    ``client``: an ``httpx.Client`` on the API (default: one on ``settings.catalog_api_url``); ``pull``:
    :func:`~pitlake.ingest.catalog_client.pull_day`'s options (page size, timeout, attempts, ...).
    """
    import httpx

    stored = _read_cursors(cursor_file(settings, day))
    previous = _read_cursors(cursor_file(settings, day - timedelta(days=1)))
    own = client is None
    client = client or httpx.Client(base_url=settings.catalog_api_url)
    try:
        # A rerun starts (and stops) where the day's first pull did; a new day where the previous one
        # ended, so a change that arrived after that pull is not lost between days; else the API is asked.
        start = stored.get("start_cursor") or previous.get("end_cursor") or start_cursor(client, day)
        _write_json(cursor_file(settings, day), {**stored, "start_cursor": start})
        records, report = pull_day(client, day, start, stop_at=stored.get("end_cursor"), **pull)
    finally:
        if own:
            client.close()
    folder = settings.landing / "products" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder.parent / f".date={day.isoformat()}.pulling"  # outside the day's folder: never read
    staged.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    landed = folder / "part-0000.jsonl"
    os.replace(staged, landed)
    for old in folder.glob("*.jsonl"):
        if old != landed:
            old.unlink()
    _write_json(cursor_file(settings, day), report.to_dict() | {"pulled_at": utc_now().isoformat()})
    log.info("catalog API %s: %d changes in %d pages (%d requests, retries %s), cursor %s -> %s", day,
             report.records, report.pages, report.requests, report.retries, report.start_cursor,
             report.end_cursor)  # fmt: skip
    return report


def _derive(parsed: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return parsed.withColumn("valid_from", F.col("updated_at").try_cast("timestamp")).withColumn(
        "launch", F.col("launch_date").try_cast("date")
    )


def _checks() -> list[tuple[str, Column]]:
    from pyspark.sql import functions as F

    return [
        ("unknown_category", ~F.col("category").isin(*CATEGORIES) | F.col("category").isNull()),
        ("missing_or_negative_price", F.col("price").isNull() | (F.col("price") < 0)),
        ("missing_availability", F.col("available").isNull()),
        ("unparseable_launch_date", F.col("launch_date").isNotNull() & F.col("launch").isNull()),
    ]


def _columns() -> list[Column | str]:
    from pyspark.sql import functions as F

    return ["name", "category", "price", "available", F.col("launch").alias("launch_date"), "change_id"]


PRODUCTS = VersionedSource(
    source="products", table=PRODUCTS_TABLE, quarantine=PRODUCTS_QUARANTINE, fields=PRODUCT_FIELDS,
    key="product_id", derive=_derive, checks=_checks, columns=_columns,
)  # fmt: skip


def ingest_products(
    spark: SparkSession,
    settings: Settings,
    day: date,
    *,
    allow_empty: bool = True,
    replace_with_empty: bool = False,
    client: Any = None,
    **pull: Any,
) -> IngestSummary:
    """Pull ``day``'s product changes and ingest them into the SCD2 ``bronze.products``.

    A day without changes is normal for a catalog (``allow_empty``); one that empties a day which
    held versions still needs ``replace_with_empty``.
    """
    report = pull_products(settings, day, client, **pull)
    summary = ingest_versions(
        spark, settings, day, PRODUCTS, allow_empty=allow_empty, replace_with_empty=replace_with_empty
    )
    summary = replace(summary, source=report.to_dict())
    log.info("%s", summary)
    return summary
