"""What the tests that start real services share: a fresh home, free ports, the pitlake CLI in a
subprocess, and stopping a process group (also when the test run itself is sent SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pitlake.settings import REPO_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_home(root: Path, jars_dir: Path) -> Path:
    """An empty PITLAKE_HOME under ``root`` whose ``jars`` link to the repository's Delta jars."""
    home = root / "home"
    home.mkdir(parents=True)
    (home / "jars").symlink_to(jars_dir, target_is_directory=True)
    return home


def run_pitlake(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """``python -m pitlake <args>`` from the repository root, output captured, never raising on failure."""
    return subprocess.run(
        [sys.executable, "-m", "pitlake", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (started with ``start_new_session=True``)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_group(proc: subprocess.Popen, term_wait_s: float = 30) -> None:
    """SIGTERM the process group; SIGKILL whatever is left of it (children too) after ``term_wait_s``."""
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=term_wait_s)
    signal_group(proc.pid, signal.SIGKILL)  # stragglers, e.g. spark-submit JVMs left in the group
    if proc.poll() is None:
        proc.wait(timeout=10)


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
