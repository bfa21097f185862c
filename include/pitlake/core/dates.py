"""Parsing and iterating the calendar days that data intervals are made of."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from pitlake.core.errors import ConfigError


def parse_date(value: str, *, what: str = "date") -> date:
    """Parse ``YYYY-MM-DD`` or raise a one-line :class:`ConfigError`."""
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise ConfigError(f"{what} {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-01-15") from None


def day_range(start: date, end: date) -> Iterator[date]:
    """Every day from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ConfigError(f"end date {end} is before start date {start}: swap them")
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def day_start(day: date) -> datetime:
    """``day`` 00:00 UTC as a naive datetime (Spark TimestampType values are UTC here)."""
    return datetime.combine(day, time.min)


def utc_now() -> datetime:
    """Wall-clock time, naive UTC; only for ``computed_at``/audit columns, never for data intervals."""
    return datetime.now(UTC).replace(tzinfo=None)
