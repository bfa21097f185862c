"""spark-submit entry point: ingest one arrival day of landing events into bronze.events."""

import argparse
import sys

from pitlake import job
from pitlake.dates import parse_date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", required=True, help="arrival day, YYYY-MM-DD (the data interval start)")
    parser.add_argument("--allow-empty", action="store_true", help="record an empty day when no files arrived")

    def body(args, settings):
        from pitlake.ingest import ingest_events
        from pitlake.spark import get_spark

        day = parse_date(args.date, what="--date")
        summary = ingest_events(get_spark("ingest_events"), settings, day, allow_empty=args.allow_empty)
        print(summary)
        return day.isoformat(), summary.to_dict()

    return job.run("ingest_events", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
