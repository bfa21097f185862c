"""Task failure callback: one short, readable line per failure in the task log."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("pitlake.failures")


def log_failure(context: dict[str, Any]) -> None:
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    cause = str(exc).strip().splitlines()[0] if exc else "unknown cause (see the task log)"
    log.error(
        "pitlake task failed: dag=%s task=%s interval=[%s, %s) try=%s cause=%s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        context.get("data_interval_start"),
        context.get("data_interval_end"),
        getattr(ti, "try_number", "?"),
        cause,
    )
