"""Ingestion of landing files into bronze Delta tables, with quarantine and count conservation.

Rules (tested in tests/spark/test_ingest_*.py):

1. A run covers one *arrival* day D: the files under ``landing/<source>/date=D/``.
2. Every non-blank line ends in exactly one place: the bronze table, the quarantine table (with a
   reason, source file and line number), or the duplicate count. ``rows_read = accepted +
   quarantined + duplicates_dropped``.
3. Late events: an event whose ``event_time`` falls up to ``max_lateness_days`` before D is
   accepted into its true ``event_date`` partition and reported in ``late_event_dates`` (those
   feature days need a rebuild); earlier than that it is quarantined as ``too_late``; an event
   time on or after D+1 is quarantined as ``event_time_after_interval``.
4. Duplicates: the first line of an ``event_id`` (by file, then line) wins, within D's files and
   against events already ingested on other days inside the lateness window.
5. Idempotency: bronze rows carry ``ingest_date`` = D and a run replaces exactly
   ``ingest_date = D`` (one Delta commit per table), so a rerun never duplicates.
"""

from pitlake.ingest.common import IngestSummary
from pitlake.ingest.customers import CUSTOMERS_QUARANTINE, CUSTOMERS_TABLE, ingest_customers
from pitlake.ingest.events import EVENTS_QUARANTINE, EVENTS_TABLE, ingest_events

__all__ = [
    "CUSTOMERS_QUARANTINE",
    "CUSTOMERS_TABLE",
    "EVENTS_QUARANTINE",
    "EVENTS_TABLE",
    "IngestSummary",
    "ingest_customers",
    "ingest_events",
]
