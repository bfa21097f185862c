"""Ingestion of landing files into bronze Delta tables, with quarantine and count conservation.

Rules (tested in tests/spark/test_ingest_*.py):

1. A run covers one *arrival* day D: every file under ``landing/<source>/date=D/``. Data files are
   ``*.jsonl``; an empty file of any name (a ``_SUCCESS`` marker) holds no records; any other file
   (another suffix, a name starting with ``_`` or ``.``, which Spark would skip) refuses the day with
   its name. A day with no records needs ``--allow-empty``, and erasing rows already ingested for D
   with it needs ``--replace-with-empty`` as well.
2. Every record (:mod:`pitlake.ingest.records`: lines split at ``\r\n``, ``\r`` or ``\n``, several
   JSON objects on one line are several records) ends in exactly one place: the bronze table, the
   quarantine table (with a reason, source file and line number), or the duplicate count. The job
   counts the records of the files' bytes on the driver, independently of Spark, and fails unless
   ``records_in_landing = rows committed for D + duplicates_dropped``. Bytes that are not UTF-8,
   ``NaN``/``Infinity``, a value of the wrong JSON type and trailing garbage after an object are
   quarantined (``invalid_utf8``, ``non_finite_number``, ``wrong_type``, ``trailing_garbage``),
   never altered on the way in. Fields the schema does not name are ignored.
3. Late events: an event whose ``event_time`` falls up to ``max_lateness_days`` before D is
   accepted into its true ``event_date`` partition and reported in ``late_event_dates`` (those
   feature days need a rebuild); earlier than that it is quarantined as ``too_late``; an event
   time on or after D+1 is quarantined as ``event_time_after_interval``.
4. Duplicates: the first valid record of an ``event_id`` (by file, then line) wins, within D's files
   and against events already ingested on other days inside the lateness window; a quarantined
   record never makes a later valid one (a corrected resend) a duplicate.
5. Products arrive from an HTTP API, not a file drop: ``ingest_products`` pulls the day's changes
   into landing first (:mod:`pitlake.ingest.products`), then the rules above apply.
6. Idempotency: bronze rows carry ``ingest_date`` = D and a run replaces exactly
   ``ingest_date = D`` (one Delta commit per table), so a rerun never duplicates.
"""

from pitlake.ingest.common import IngestSummary
from pitlake.ingest.customers import CUSTOMERS_QUARANTINE, CUSTOMERS_TABLE, ingest_customers
from pitlake.ingest.events import EVENTS_QUARANTINE, EVENTS_TABLE, ingest_events
from pitlake.ingest.products import PRODUCTS_QUARANTINE, PRODUCTS_TABLE, ingest_products

__all__ = [
    "CUSTOMERS_QUARANTINE",
    "CUSTOMERS_TABLE",
    "EVENTS_QUARANTINE",
    "EVENTS_TABLE",
    "PRODUCTS_QUARANTINE",
    "PRODUCTS_TABLE",
    "IngestSummary",
    "ingest_customers",
    "ingest_events",
    "ingest_products",
]
