"""spark-submit entry point: a use case's labels (the purchase-propensity spine, or the recommender's
labelled candidates) for an inclusive label-date range.

Days whose 7-day horizon is not yet fully observed in bronze (lateness window included) are
skipped and listed in the result, never labelled from a partial horizon.
"""

import argparse
import sys

from pitlake.core import job
from pitlake.core.dates import parse_date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", required=True, help="first label date, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last label date (inclusive), YYYY-MM-DD")
    parser.add_argument("--use-case", default="purchase_propensity", help="e.g. product_recommendations")

    def body(args, settings):
        from pitlake.core.errors import ConfigError

        start, end = parse_date(args.start, what="--start"), parse_date(args.end, what="--end")
        if end < start:
            raise ConfigError(f"--end {end} is before --start {start}: swap them")
        from pitlake.core.spark import get_spark
        from pitlake.labels.build import build_labels

        spark = get_spark("build_labels")
        result = build_labels(spark, settings, start, end, args.use_case)
        print(f"{result.table}: {result.rows} rows, {result.positives} positive, days {result.dates_labelled}")
        out = result.to_dict()
        from pitlake.core.openlineage import lineage, table_dataset

        out["lineage"] = lineage(
            [table_dataset(result.source_table, result.source_version)],
            [table_dataset(result.table, result.delta_version)],  # none when no day could be labelled
        )
        out["validation"] = []
        if result.delta_version is not None and result.dates_labelled:
            from pitlake.validation import gate

            out["validation"].append(
                gate(spark, settings, result.table, version=result.delta_version, run_id=args.run_id,
                     interval_start=parse_date(result.dates_labelled[0]),
                     interval_end=parse_date(result.dates_labelled[-1]))
            )  # fmt: skip
        return f"{start.isoformat()}_{end.isoformat()}", out

    return job.run("build_labels", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
