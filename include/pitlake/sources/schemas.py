"""Column names and Spark SQL types of the bronze tables, known without starting Spark.

Feature definitions are checked against these when they are loaded, so a typo fails at import
time with a message naming the view and field, before any Spark job starts.
"""

from __future__ import annotations

BRONZE_EVENTS_COLUMNS: dict[str, str] = {
    "event_id": "string",
    "event_type": "string",
    "customer_id": "string",
    "event_time": "timestamp",
    "event_date": "date",
    "amount": "double",
    "category": "string",
    "product_id": "string",
    "session_id": "string",
    "ingest_date": "date",
    "source_file": "string",
    "line_number": "bigint",
}

BRONZE_CUSTOMERS_COLUMNS: dict[str, str] = {
    "customer_id": "string",
    "segment": "string",
    "country": "string",
    "loyalty_tier": "string",
    "signup_date": "date",
    "valid_from": "timestamp",
    "valid_to": "timestamp",
    "is_current": "boolean",
    "ingest_date": "date",
    "source_file": "string",
    "line_number": "bigint",
}

BRONZE_PRODUCTS_COLUMNS: dict[str, str] = {
    "product_id": "string",
    "name": "string",
    "category": "string",
    "price": "double",
    "available": "boolean",
    "launch_date": "date",
    "change_id": "string",
    "valid_from": "timestamp",
    "ingest_date": "date",
    "source_file": "string",
    "line_number": "bigint",
    "valid_to": "timestamp",
    "is_current": "boolean",
}

SOURCES: dict[str, dict[str, str]] = {
    "bronze.events": BRONZE_EVENTS_COLUMNS,
    "bronze.customers": BRONZE_CUSTOMERS_COLUMNS,
    "bronze.products": BRONZE_PRODUCTS_COLUMNS,
}

# Sources that may change nothing on a day (a catalog): a day without rows is not a missing ingestion.
SPARSE_SOURCES: frozenset[str] = frozenset({"bronze.products"})
