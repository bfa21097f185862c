"""The frame of ``jobs/ingest_events.py`` and ``jobs/ingest_customers.py``: each arrival day of the
interval in turn in one Spark session, then one validation gate over the interval at the last
committed version."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pitlake.core import job
from pitlake.core.settings import Settings


def main(stage: str, table: str, argv: Sequence[str] | None, *, empty_days_normal: bool = False) -> int:
    """``jobs/ingest_<x>.py``: ingest each arrival day of the interval in turn in one Spark session,
    then one validation gate over the whole interval at the last committed version.

    ``empty_days_normal``: a day without records needs no ``--allow-empty`` (a catalog's changes).
    """
    parser = argparse.ArgumentParser(description=f"ingest arrival days of landing files into {table}")
    job.add_interval_args(parser, "arrival day")
    parser.add_argument("--allow-empty", action="store_true", help="record an empty day when no records arrived")
    parser.add_argument(
        "--replace-with-empty",
        action="store_true",
        help="with --allow-empty: erase the rows already ingested for a day whose landing now has no records",
    )

    def body(args: argparse.Namespace, settings: Settings) -> tuple[str, dict[str, Any]]:
        start, end = job.interval(args)  # a bad date: one line before Spark starts
        from pitlake import ingest
        from pitlake.core.dates import day_range
        from pitlake.core.spark import get_spark
        from pitlake.validation import gate

        ingest_day = getattr(ingest, stage)
        spark = get_spark(stage)
        summaries = []
        for day in day_range(start, end):
            summary = ingest_day(
                spark,
                settings,
                day,
                allow_empty=args.allow_empty or empty_days_normal,
                replace_with_empty=args.replace_with_empty,
            )
            print(summary, flush=True)
            summaries.append(summary.to_dict())
        last = summaries[-1]
        result = dict(last)
        if start != end:
            result = {"table": table, "delta_version": last["delta_version"], "days": summaries}
        result["lineage"] = _lineage(settings, table, summaries)
        result["validation"] = [
            gate(spark, settings, table, version=last["delta_version"], run_id=args.run_id,
                 interval_start=start, interval_end=end)
        ]  # fmt: skip
        return (start.isoformat() if start == end else f"{start.isoformat()}..{end.isoformat()}"), result

    return job.run(stage, parser, body, argv)


def _lineage(settings: Settings, table: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each arrival day's landing folder in; the bronze table and its quarantine out, at the last versions."""
    from pitlake.core.openlineage import FILE_NAMESPACE, lineage, other_dataset, table_dataset

    source = table.split(".", 1)[1]
    landing = [
        other_dataset(FILE_NAMESPACE, str(settings.landing / source / f"date={s['ingest_date']}"),
                      pitlake_landing={"files": len(s["files"]), "records": s["records_in_landing"]})
        for s in summaries
    ]  # fmt: skip
    pulls = [s["source"] for s in summaries if s.get("source")]
    if pulls:  # pulled from an HTTP API (products): the API's changes between the cursors came in
        landing.append(other_dataset("http", f"{settings.catalog_api_url}/v1/products/changes",
                                     pitlake_pull={"start_cursor": pulls[0]["start_cursor"],
                                                   "end_cursor": pulls[-1]["end_cursor"],
                                                   "records": sum(p["records"] for p in pulls)}))  # fmt: skip
    last = summaries[-1]
    quarantine = last.get("quarantine_version")
    outputs = [table_dataset(table, last["delta_version"])]
    if quarantine is not None and quarantine >= 0:
        outputs.append(table_dataset(f"quarantine.{source}", quarantine))
    return lineage(landing, outputs)
