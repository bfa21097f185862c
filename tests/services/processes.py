"""What the tests that start real services share: a fresh home, free ports, the pitlake CLI in a
subprocess, and stopping a process group (also when the test run itself is sent SIGTERM)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pitlake.core.processes import free_port, run_pitlake, signal_group, start_pitlake, stop_group

__all__ = [
    "free_port",
    "new_home",
    "run_pitlake",
    "signal_group",
    "start_pitlake",
    "stop_group",
    "teardown_on_sigterm",
]


def new_home(root: Path, jars_dir: Path) -> Path:
    """An empty PITLAKE_HOME under ``root`` whose ``jars`` link to the repository's Delta jars."""
    home = root / "home"
    home.mkdir(parents=True)
    (home / "jars").symlink_to(jars_dir, target_is_directory=True)
    return home


@contextmanager
def teardown_on_sigterm() -> Iterator[None]:
    """Turn a SIGTERM (CI cancelling, ``timeout``) into SystemExit, so that ``finally`` blocks stop services."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
