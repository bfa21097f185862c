"""One writer at a time moves a registered model's aliases: an exclusive lock per model.

The lock is ``fcntl.flock`` on ``PITLAKE_HOME/registry/locks/<model>.lock``. ``PITLAKE_HOME`` is the
one folder every pitlake process shares (on a laptop, and the ``lake`` volume every Airflow service
mounts in docker-compose), so the gate of ``train_model`` and a ``promote_model`` run on any of
them queue for it. The kernel releases it when its holder dies, so a killed task never leaves it
held; the holder writes its pid, host and start time into the file for the message of a waiter that
gives up.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pitlake.core.dates import utc_now
from pitlake.core.errors import PitlakeError
from pitlake.core.names import check_name
from pitlake.core.settings import Settings

WAIT_S = 120.0


class RegistryBusyError(PitlakeError):
    """Another process held the model's lock for longer than the wait: retry the task."""

    retryable = True


def lock_path(settings: Settings, model: str) -> Path:
    return settings.home / "registry" / "locks" / f"{check_name(model, 'model name')}.lock"


@contextmanager
def registry_lock(settings: Settings, model: str, wait_s: float = WAIT_S) -> Iterator[Path]:
    """Hold ``model``'s alias lock for the block; :class:`RegistryBusyError` after ``wait_s`` of waiting."""
    path = lock_path(settings, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    raise RegistryBusyError(
                        f"the aliases of {model} are being moved by another process ({holder}) for more than "
                        f"{wait_s:.0f} s; retry once it finishes (its lock: {path})"
                    ) from None
                time.sleep(0.05)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {utc_now().isoformat()}\n")
            fh.flush()
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
