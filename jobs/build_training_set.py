"""spark-submit entry point: a point-in-time training set for a use case and label-date range.

Every input is read at a pinned Delta version (the latest, or --pin TABLE=VERSION, or all the
pins of an earlier build with --from-manifest ID); the result records them with the row count and
a content hash, so the same pins rebuild the same rows.
"""

import argparse
import sys

from pitlake.core import job
from pitlake.core.dates import parse_date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--use-case", required=True, help="e.g. purchase_propensity")
    parser.add_argument("--start", help="first label date, YYYY-MM-DD")
    parser.add_argument("--end", help="last label date (inclusive), YYYY-MM-DD")
    parser.add_argument("--pin", action="append", default=[], help="TABLE=VERSION, e.g. features.customer_activity=12")
    parser.add_argument("--from-manifest", help="rebuild an earlier training set: its id (pins and range)")
    parser.add_argument("--as-of-write", action="store_true", help="only feature rows written by label_time")

    def body(args, settings):
        from pitlake.core.errors import ConfigError
        from pitlake.training_set.build import get_use_case
        from pitlake.training_set.manifest import read_manifest

        use_case = get_use_case(args.use_case)
        pins: dict[str, int] = {}
        as_of_write = args.as_of_write
        start_s, end_s = args.start, args.end
        if args.from_manifest:
            manifest = read_manifest(settings, use_case.name, args.from_manifest)
            pins = manifest.pins()
            start_s, end_s = start_s or manifest.label_start, end_s or manifest.label_end
            as_of_write = as_of_write or manifest.as_of_write
        for pin in args.pin:
            table, sep, version = pin.partition("=")
            if not sep or not version.isdigit():
                raise ConfigError(f"--pin {pin!r}: use TABLE=VERSION, e.g. features.customer_activity=12")
            pins[table] = int(version)
        if not (start_s and end_s):
            raise ConfigError("give --start and --end (label dates), or --from-manifest ID")
        start, end = parse_date(start_s, what="--start"), parse_date(end_s, what="--end")

        from pitlake.core.spark import get_spark
        from pitlake.training_set.build import build
        from pitlake.validation import gate

        spark = get_spark("build_training_set")
        result = build(spark, settings, use_case, start, end, pins=pins, as_of_write=as_of_write)
        print(f"{result.table} {result.training_set_id}: {result.row_count} rows, hash {result.content_hash[:12]}")
        out = result.to_dict()
        from pitlake.core.openlineage import lineage, table_dataset

        out["lineage"] = lineage(
            [table_dataset(table, version) for table, version in sorted(result.pins().items())],
            [table_dataset(result.table, result.delta_version, pitlake_training_set={
                "training_set_id": result.training_set_id, "label_start": result.label_start,
                "label_end": result.label_end, "rows": result.row_count, "content_hash": result.content_hash})],
        )  # fmt: skip
        out["validation"] = [
            gate(spark, settings, result.table, version=result.delta_version, run_id=args.run_id,
                 training_set_id=result.training_set_id)
        ]  # fmt: skip
        return result.training_set_id, out

    return job.run("build_training_set", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
