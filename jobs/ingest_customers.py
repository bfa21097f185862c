"""spark-submit entry point: ingest arrival days of landing customer profile changes into bronze.customers.

``--date D`` ingests one day (what a feature_pipeline run does); ``--start D1 --end D2`` ingests
each day of a range in turn in one Spark session and validates the range once (a backfill).
"""

import sys

from pitlake.ingest import job


def main(argv: list[str] | None = None) -> int:
    return job.main("ingest_customers", "bronze.customers", argv)


if __name__ == "__main__":
    sys.exit(main())
