"""The product catalog's HTTP API → ``landing/products/date=D/`` → the SCD2 ``bronze.products`` (one MERGE
commit per run) and ``quarantine.products``.

:func:`pull_products` pulls day D's changes (:mod:`pitlake.ingest.catalog_client`) from the day's start
cursor, which it stores under ``$PITLAKE_HOME/cursors/products/`` the first time: a rerun of D asks for
exactly the same changes, whatever happened at the API since. The records land as one JSON Lines file
(replacing the day's earlier pull) once the whole pull succeeded, with its report beside the cursor.
:func:`ingest_products` pulls, then ingests the landed day the way customers are ingested: every record
accepted, quarantined with a reason, or a counted duplicate, checked against the driver's own count.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core import delta_io
from pitlake.core.dates import utc_now
from pitlake.core.settings import Settings
from pitlake.ingest.catalog_client import PullReport, pull_day, start_cursor
from pitlake.ingest.common import IngestSummary, commit_quarantine, counts, first_reason, parsed_landing
from pitlake.ingest.scd2 import commit_versions
from pitlake.sources.vocabulary import CATEGORIES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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


def pull_products(settings: Settings, day: date, client: Any = None, **pull: Any) -> PullReport:
    """Pull ``day``'s changes from the catalog API into ``landing/products/date=<day>/`` (see the module).

    ``client``: an ``httpx.Client`` on the API (default: one on ``settings.catalog_api_url``); ``pull``:
    :func:`~pitlake.ingest.catalog_client.pull_day`'s options (page size, timeout, attempts, ...).
    """
    import httpx

    stored = cursor_file(settings, day)
    own = client is None
    client = client or httpx.Client(base_url=settings.catalog_api_url)
    try:
        start = json.loads(stored.read_text())["start_cursor"] if stored.exists() else start_cursor(client, day)
        records, report = pull_day(client, day, start, **pull)
    finally:
        if own:
            client.close()
    folder = settings.landing / "products" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder.parent / f".date={day.isoformat()}.pulling"
    staged.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    for old in folder.glob("*.jsonl"):
        old.unlink()
    os.replace(staged, folder / "part-0000.jsonl")
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps(report.to_dict() | {"pulled_at": utc_now().isoformat()}, indent=2))
    log.info("catalog API %s: %d changes in %d pages (%d requests, retries %s), cursor %s -> %s", day,
             report.records, report.pages, report.requests, report.retries, report.start_cursor,
             report.end_cursor)  # fmt: skip
    return report


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
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    report = pull_products(settings, day, client, **pull)
    interval_end = F.lit(f"{(day + timedelta(days=1)).isoformat()} 00:00:00").cast("timestamp")
    landing, parsed = parsed_landing(
        spark, settings, "products", PRODUCTS_TABLE, day, PRODUCT_FIELDS,
        allow_empty=allow_empty, replace_with_empty=replace_with_empty,
    )  # fmt: skip
    parsed = parsed.withColumn("valid_from", F.col("updated_at").try_cast("timestamp")).withColumn(
        "launch", F.col("launch_date").try_cast("date")
    )
    reason = F.coalesce(F.col("defect"), first_reason(
        [
            ("malformed_record", F.col("_corrupt_record").isNotNull()),
            ("missing_product_id", F.col("product_id").isNull() | (F.trim("product_id") == "")),
            ("unparseable_updated_at", F.col("valid_from").isNull()),
            ("updated_at_after_interval", F.col("valid_from") >= interval_end),
            ("unknown_category", ~F.col("category").isin(*CATEGORIES) | F.col("category").isNull()),
            ("missing_or_negative_price", F.col("price").isNull() | (F.col("price") < 0)),
            ("missing_availability", F.col("available").isNull()),
            ("unparseable_launch_date", F.col("launch_date").isNotNull() & F.col("launch").isNull()),
        ]
    ))  # fmt: skip
    classified = parsed.withColumn("reason", reason)
    valid = F.col("reason").isNull()
    first = Window.partitionBy(F.col("product_id"), F.col("valid_from"), valid).orderBy(
        "source_file", "line_number", "record_in_line"
    )
    classified = classified.withColumn(
        "is_duplicate", F.when(valid, F.row_number().over(first) > 1).otherwise(F.lit(False))
    ).cache()
    path = settings.table_path(PRODUCTS_TABLE)
    try:
        rows_read = classified.count()
        accepted_n, by_reason, duplicates = counts(classified)
        new = classified.where(valid & ~F.col("is_duplicate")).select(
            "product_id", "name", "category", "price", "available", F.col("launch").alias("launch_date"),
            "change_id", "valid_from", F.lit(day).alias("ingest_date"), "source_file", "line_number",
        )  # fmt: skip
        version = commit_versions(spark, path, new, "product_id", day)
        q_version = commit_quarantine(
            spark, settings, (PRODUCTS_TABLE, PRODUCTS_QUARANTINE), day, landing, classified.where(~valid),
            "product_id", delta_io.Commit(version, None), duplicates,
        )  # fmt: skip
    finally:
        classified.unpersist()
    summary = IngestSummary(
        table=PRODUCTS_TABLE,
        ingest_date=day.isoformat(),
        rows_read=rows_read,
        accepted=accepted_n,
        quarantined=sum(by_reason.values()),
        duplicates_dropped=duplicates,
        quarantined_by_reason=by_reason,
        delta_version=version,
        quarantine_version=q_version,
        records_in_landing=landing.records,
        files=[p.name for p in landing.files],
        empty_files=landing.empty_files,
        source=report.to_dict(),
    )
    log.info("%s", summary)
    return summary
