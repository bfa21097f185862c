"""spark-submit entry point: ingest one arrival day of customer-profile changes into the SCD2 bronze.customers."""

import argparse
import sys

from pitlake import job
from pitlake.dates import parse_date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", required=True, help="arrival day, YYYY-MM-DD (the data interval start)")
    parser.add_argument("--allow-empty", action="store_true", help="record an empty day when no files arrived")

    def body(args, settings):
        from pitlake.ingest import ingest_customers
        from pitlake.spark import get_spark

        day = parse_date(args.date, what="--date")
        from pitlake.validation import gate

        spark = get_spark("ingest_customers")
        summary = ingest_customers(spark, settings, day, allow_empty=args.allow_empty)
        print(summary)
        result = summary.to_dict()
        result["validation"] = [
            gate(spark, settings, "bronze.customers", version=summary.delta_version, run_id=args.run_id,
                 interval_start=day, interval_end=day)
        ]  # fmt: skip
        return day.isoformat(), result

    return job.run("ingest_customers", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
