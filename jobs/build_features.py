"""spark-submit entry point: build a feature view's Delta table for one day or an inclusive range.

--date D   builds day D (feature_time = D+1 00:00) and, unless --no-late, the earlier days whose
           bronze rows D's ingestion changed (late data, within the lateness window).
--start/--end  rebuild an inclusive range (backfill); each day replaces exactly its partition.
"""

import argparse
import sys

from pitlake import job
from pitlake.dates import parse_date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--view", required=True, help="feature view name, e.g. customer_activity (or name:v2)")
    parser.add_argument("--date", help="the data interval's day, YYYY-MM-DD")
    parser.add_argument("--start", help="first day of a backfill range, YYYY-MM-DD")
    parser.add_argument("--end", help="last day of a backfill range (inclusive), YYYY-MM-DD")
    parser.add_argument("--no-validate", action="store_true", help="skip the validation gate (benchmarks, debugging)")
    parser.add_argument("--no-late", action="store_true", help="with --date: do not rebuild days changed by late data")

    def body(args, settings):
        from pitlake.errors import ConfigError
        from pitlake.features import get_view

        view = get_view(args.view)  # unknown view: a one-line error before Spark starts
        if args.date and (args.start or args.end):
            raise ConfigError("give either --date or --start/--end, not both")
        if args.date:
            start = end = parse_date(args.date, what="--date")
        elif args.start and args.end:
            start, end = parse_date(args.start, what="--start"), parse_date(args.end, what="--end")
            if end < start:
                raise ConfigError(f"--end {end} is before --start {start}: swap them")
        else:
            raise ConfigError("give --date D, or --start D1 --end D2 for a range")

        from pitlake.features.engine import affected_start, build
        from pitlake.spark import get_spark

        spark = get_spark(f"build_features[{view.name}]")
        if args.date and not args.no_late:
            start = affected_start(spark, settings, view, end)
        result = build(spark, settings, view, start, end)
        print(f"{view.table}: {result.rows_by_date} (delta version {result.delta_version})")
        out = result.to_dict()
        if not args.no_validate:
            from pitlake.validation import gate

            out["validation"] = [
                gate(spark, settings, view.table, version=result.delta_version, run_id=args.run_id,
                     interval_start=start, interval_end=end)
            ]  # fmt: skip
        return f"{view.name}-{end.isoformat()}", out

    return job.run("build_features", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
