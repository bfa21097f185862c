"""Local service processes, as the benchmarks and the service tests start them: a free port on
127.0.0.1, the pitlake CLI in a subprocess, and stopping a process group by its id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

from pitlake.core.settings import REPO_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def start_pitlake(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m pitlake <args>`` in the background, output to ``log``, leading a process group of its
    own (so :func:`stop_group` stops it with every child: api-server, scheduler, task runners)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pitlake", *args],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
