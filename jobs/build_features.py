"""spark-submit entry point: build a feature view's Delta table for one day or an inclusive range.

--date D   builds day D (feature_time = D+1 00:00) and, unless --no-late, the earlier days whose
           bronze rows D's ingestion changed (late data, within the lateness window).
--start/--end  rebuild an inclusive range (backfill); each day replaces exactly its partition.
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--view", required=True, help="feature view name, e.g. customer_activity (or name:v2)")
    job.add_interval_args(parser, "the data interval's day")
    parser.add_argument("--no-validate", action="store_true", help="skip the validation gate (benchmarks, debugging)")
    parser.add_argument("--no-late", action="store_true", help="with --date: do not rebuild days changed by late data")

    def body(args, settings):
        from pitlake.features import get_view

        view = get_view(args.view)  # unknown view: a one-line error before Spark starts
        start, end = job.interval(args)

        from pitlake.core.spark import get_spark
        from pitlake.features.engine import affected_start, build

        spark = get_spark(f"build_features[{view.name}]")
        if args.date and not args.no_late:
            start = affected_start(spark, settings, view, end)
        result = build(spark, settings, view, start, end)
        print(f"{view.table}: {result.rows_by_date} (delta version {result.delta_version})")
        out = result.to_dict()
        from pitlake.core.openlineage import lineage, table_dataset

        rollups = getattr(view, "rollup_table", None)  # an aggregate view's daily rollups
        rollup = (
            [table_dataset(rollups, result.rollup_version)] if rollups and result.rollup_version is not None else []
        )
        out["lineage"] = lineage(
            [table_dataset(result.source_table, result.source_version)],
            [*rollup, table_dataset(view.table, result.delta_version)],
        )
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
