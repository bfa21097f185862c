"""The Airflow Assets of the lake: one per Delta table, named like the table."""

from __future__ import annotations

from airflow.sdk import Asset


def table_asset(table: str) -> Asset:
    layer, name = table.split(".")
    return Asset(name=table, uri=f"pitlake://lake/{layer}/{name}", group="pitlake")


BRONZE_EVENTS = table_asset("bronze.events")
BRONZE_CUSTOMERS = table_asset("bronze.customers")
BRONZE_PRODUCTS = table_asset("bronze.products")
