"""spark-submit entry point: pull arrival days of product catalog changes from the catalog API
(PITLAKE_CATALOG_API_URL) into landing, then ingest them into bronze.products (SCD2).

``--date D`` pulls and ingests one day; ``--start D1 --end D2`` each day of a range in turn in one Spark
session, validated once (a backfill). A rerun of a day pulls from the day's stored start cursor, so it
lands the same changes. A day without changes is normal. The demo's API: ``python -m pitlake catalog-api``.
"""

import sys

from pitlake.ingest import job


def main(argv: list[str] | None = None) -> int:
    return job.main("ingest_products", "bronze.products", argv, empty_days_normal=True)


if __name__ == "__main__":
    sys.exit(main())
