"""spark-submit entry point: OPTIMIZE and VACUUM every Delta table of the lake.

VACUUM never deletes a file that a Delta version pinned by a registered model version still reads:
for such a table the retention is widened to its oldest pinned commit and the table's log and
tombstone retention are raised to match. ``--dry-run`` changes nothing and lists what would happen.
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retain-hours", type=float, default=168.0, help="VACUUM retention in hours (default 168)")
    parser.add_argument(
        "--dry-run", nargs="?", const="true", default="false", choices=["true", "false"],
        help="change nothing; report what VACUUM would delete (--dry-run, or --dry-run=true/false)",
    )  # fmt: skip

    parser.add_argument(
        "--allow-short-retention", nargs="?", const="true", default="false", choices=["true", "false"],
        help="allow --retain-hours below Delta's default (168): only when no job writes or reads the lake",
    )  # fmt: skip

    def body(args, settings):
        from pitlake.maintenance.compact import check_retention, run_maintenance

        allow_short = args.allow_short_retention == "true"
        check_retention(args.retain_hours, allow_short)  # one line before Spark starts
        from pitlake.core.spark import get_spark

        dry_run = args.dry_run == "true"
        result = run_maintenance(
            get_spark("maintenance"), settings, retain_hours=args.retain_hours, dry_run=dry_run,
            allow_short_retention=allow_short,
        )  # fmt: skip
        for name, t in result["tables"].items():
            print(
                f"{name}: v{t['version_before']} -> v{t['version_after']}, retain {t['retain_hours']:g}h, "
                f"pinned {t['pinned_versions'] or 'none'}, files {t['data_files_before']} -> {t['data_files_after']}"
            )
        return "dry_run" if dry_run else "latest", result

    return job.run("maintenance", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
