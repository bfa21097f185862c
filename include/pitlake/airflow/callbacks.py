"""Task failure callback: one short, readable line per failure in the task log."""

from __future__ import annotations

import logging
from datetime import timedelta
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


def default_args(*, retries: int, retry_delay: timedelta, max_retry_delay: timedelta, **extra: Any) -> dict[str, Any]:
    """Every pitlake DAG's task defaults: owner, retries with exponential backoff, the failure line,
    and a bound on a try's time (``PITLAKE_TASK_TIMEOUT_MINUTES``): a try that hangs is stopped and retried."""
    from pitlake.core.settings import load

    minutes = load().task_timeout_minutes
    return {
        "owner": "pitlake",
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_retry_delay,
        "on_failure_callback": log_failure,
        "execution_timeout": timedelta(minutes=minutes) if minutes else None,
        **extra,
    }
