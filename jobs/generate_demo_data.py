"""Write the synthetic shop's landing files for a day or a range (deterministic from the seed)."""

import argparse
import sys

from pitlake.core import job
from pitlake.core.dates import parse_date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", help="last day, inclusive (default: --start)")

    def body(args, settings):
        from pitlake.demo.landing import generate_range

        start = parse_date(args.start, what="--start")
        end = parse_date(args.end, what="--end") if args.end else start
        result = generate_range(settings, start, end)
        return f"{start}_{end}", result

    return job.run("generate_demo_data", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
