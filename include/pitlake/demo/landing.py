"""Demo data generation driven by settings (used by the job, the DAG and ``make demo``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pitlake.core.dates import day_range, parse_date
from pitlake.core.settings import Settings
from pitlake.demo.generator import DemoConfig, write_day


def demo_config(settings: Settings) -> DemoConfig:
    return DemoConfig(
        seed=settings.demo_seed,
        customers=settings.demo_customers,
        epoch=parse_date(settings.demo_start, what="PITLAKE_DEMO_START"),
        defect_rate=settings.defect_rate,
    )


def generate_range(settings: Settings, start: date, end: date) -> dict[str, Any]:
    cfg = demo_config(settings)
    days = []
    for day in day_range(start, end):
        report = write_day(cfg, settings.landing, day)
        days.append(
            {
                "day": day.isoformat(),
                "event_lines": report.event_lines,
                "customer_lines": report.customer_lines,
                "defects": report.defects,
            }
        )
    return {"landing": str(settings.landing), "days": days}
