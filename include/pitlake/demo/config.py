"""What every part of the synthetic shop shares: its configuration and how it writes an instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    customers: int = 2000
    epoch: date = date(2026, 1, 1)
    defect_rate: float = 0.01
    sessions_per_day: float = 1.5  # mean visits per customer per day


def iso_instant(ts: datetime) -> str:
    """``ts`` (naive UTC) as the feeds write instants: milliseconds and a ``Z``."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
