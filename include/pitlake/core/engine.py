"""The warm Spark engine: one long-lived Spark Connect server on 127.0.0.1, one session per task.

A task that starts its own JVM pays for the start and for a cold JIT on every run; on the demo's
few thousand rows that is most of its time. The engine is a Spark Connect server (the connect jar
ships in the pyspark wheel) started once by ``python -m pitlake engine start`` (and by ``make
airflow``, ``make demo`` and the tests when none is running), with the Delta jars, Delta's SQL
extension and catalog, and pitlake's session confs. Every task opens its own Connect session:
temp views, confs and cached data are per session, and released when the task ends.

State under ``$PITLAKE_HOME/engine/``: ``engine.json`` (pid, port, home, master, started_at) and
``engine.log``. The server carries ``spark.pitlake.home`` so that a client can tell an engine of
another ``PITLAKE_HOME`` on the same port from its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pitlake.core import settings as settings_mod
from pitlake.core.errors import PitlakeError
from pitlake.core.settings import Settings

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_HINT = "start it with `python -m pitlake engine start` (or `make engine`)"


class EngineError(PitlakeError):
    """The engine cannot be reached or started. A task failing with it may succeed on retry."""

    retryable = True


@dataclass(frozen=True)
class EngineState:
    pid: int
    port: int
    home: str
    master: str
    started_at: float

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"


def state_file(settings: Settings) -> Path:
    return settings.engine_dir / "engine.json"


def log_file(settings: Settings) -> Path:
    return settings.engine_dir / "engine.log"


def url(settings: Settings) -> str:
    """The Connect URL clients use: ``PITLAKE_SPARK_REMOTE`` if set, else this home's engine."""
    return settings.spark_remote or f"sc://127.0.0.1:{settings.engine_port}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with_state = stat.read_text().rsplit(")", 1)[-1].split()
        return bool(with_state) and with_state[0] != "Z"
    return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_state(settings: Settings) -> EngineState | None:
    path = state_file(settings)
    if not path.exists():
        return None
    try:
        return EngineState(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None


def status(settings: Settings) -> dict[str, Any]:
    """What is known about this home's engine: running, pid, port, url, and a stale pid file."""
    state = read_state(settings)
    if state is None:
        return {"running": False, "port": settings.engine_port, "reason": "no engine started for this PITLAKE_HOME"}
    alive = _pid_alive(state.pid)
    listening = alive and port_open(state.port)
    out: dict[str, Any] = {
        "running": listening,
        "pid": state.pid,
        "port": state.port,
        "url": state.url,
        "master": state.master,
        "log": str(log_file(settings)),
    }
    if alive:
        out["rss_mb"] = _rss_mb(state.pid)
        out["uptime_s"] = round(time.time() - state.started_at, 1)
    if not alive:
        out["reason"] = f"stale pid file: process {state.pid} is gone"
    elif not listening:
        out["reason"] = f"process {state.pid} runs but does not listen on 127.0.0.1:{state.port} (still starting?)"
    return out


def _rss_mb(pid: int) -> float | None:
    """Resident memory of the engine's JVM (and its Python workers) in MiB."""
    total_kb = 0
    pids = [pid, *_children(pid)]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return round(total_kb / 1024, 1) if total_kb else None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            for kid in kids:
                found.append(int(kid))
                found.extend(_children(int(kid)))
    except OSError:
        pass
    return found


def server_command(settings: Settings) -> list[str]:
    """The spark-submit command line of the Connect server (jars, confs, 127.0.0.1, the port)."""
    import pyspark

    from pitlake.core.jvm import BASE_CONF, delta_jar_paths, driver_java_options

    spark_home = Path(pyspark.__file__).parent
    connect_jars = sorted((spark_home / "jars").glob("spark-connect_*.jar"))
    if not connect_jars:
        raise EngineError(f"the Spark Connect server jar is missing under {spark_home / 'jars'}: reinstall pyspark")
    conf = {
        **BASE_CONF,
        "spark.driver.extraJavaOptions": driver_java_options(settings),
        "spark.driver.memory": settings.engine_memory,
        # Local mode: nothing outside this machine talks to the driver. On a cluster the
        # executors connect back to it, on the host's name (SPARK_LOCAL_HOSTNAME).
        **(
            {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
            if settings.engine_master.startswith("local")
            else {}
        ),
        "spark.connect.grpc.binding.address": settings.engine_host,
        "spark.connect.grpc.binding.port": str(settings.engine_port),
        "spark.pitlake.home": str(settings.home),
        # A 365-day backfill opens thousands of sessions: forget closed ones quickly.
        "spark.connect.session.manager.closedSessionsTombstonesSize": "100",
        **settings.spark_conf,
    }
    cmd = [
        str(spark_home / "bin" / "spark-submit"),
        "--master",
        settings.engine_master,
        "--name",
        "pitlake-engine",
        "--class",
        SERVER_CLASS,
        "--jars",
        ",".join([*delta_jar_paths(settings)]),
    ]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd.append(str(connect_jars[0]))
    return cmd


def run_foreground(settings: Settings | None = None) -> None:
    """Replace this process by the engine (a container's main process: compose, Kubernetes)."""
    from pitlake.core.jvm import check_java

    s = settings or settings_mod.load()
    check_java()
    cmd = server_command(s)
    s.engine_dir.mkdir(parents=True, exist_ok=True)
    state = EngineState(pid=os.getpid(), port=s.engine_port, home=str(s.home), master=s.engine_master,
                        started_at=time.time())  # fmt: skip
    state_file(s).write_text(json.dumps(state.__dict__, indent=2))
    env = settings_mod.child_environ()
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, env)


def ensure(settings: Settings | None = None, timeout_s: float = 180) -> EngineState:
    """Start this home's engine unless it already runs; return its state. Idempotent."""
    s = settings or settings_mod.load()
    if s.spark_remote:
        raise EngineError(f"PITLAKE_SPARK_REMOTE={s.spark_remote} points at an engine this home does not manage")
    state = read_state(s)
    if state is not None and _pid_alive(state.pid):
        _wait_listening(s, state, timeout_s)
        return state
    if state is not None:  # stale pid file: the process is gone
        state_file(s).unlink(missing_ok=True)
    if port_open(s.engine_port):
        owner = _engine_home(s.engine_port)
        if owner is not None and owner != str(s.home):
            raise EngineError(
                f"an engine of PITLAKE_HOME={owner} already listens on 127.0.0.1:{s.engine_port}: stop it "
                f"(`PITLAKE_HOME={owner} python -m pitlake engine stop`) or set PITLAKE_ENGINE_PORT to a free port"
            )
        raise EngineError(
            f"port {s.engine_port} on 127.0.0.1 is taken by another process (not this home's engine): "
            "stop it or set PITLAKE_ENGINE_PORT to a free port"
        )
    from pitlake.core.jvm import check_java

    check_java()
    cmd = server_command(s)
    s.engine_dir.mkdir(parents=True, exist_ok=True)
    env = settings_mod.child_environ()
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    with log_file(s).open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    state = EngineState(
        pid=proc.pid, port=s.engine_port, home=str(s.home), master=s.engine_master, started_at=time.time()
    )
    tmp = state_file(s).with_suffix(".tmp")
    tmp.write_text(json.dumps(state.__dict__, indent=2))
    tmp.replace(state_file(s))
    _wait_listening(s, state, timeout_s, proc)
    return state


def _wait_listening(
    settings: Settings, state: EngineState, timeout_s: float, proc: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            state_file(settings).unlink(missing_ok=True)
            raise EngineError(f"the engine exited with code {proc.returncode} while starting: {_log_tail(settings)}")
        if not _pid_alive(state.pid):
            state_file(settings).unlink(missing_ok=True)
            raise EngineError(f"the engine (pid {state.pid}) died while starting: {_log_tail(settings)}")
        if port_open(state.port):
            return
        time.sleep(0.25)
    raise EngineError(
        f"the engine (pid {state.pid}) did not listen on 127.0.0.1:{state.port} within {timeout_s:.0f} s: "
        f"see {log_file(settings)}"
    )


def _log_tail(settings: Settings, lines: int = 3) -> str:
    path = log_file(settings)
    if not path.exists():
        return "(no log)"
    tail = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()][-lines:]
    return " | ".join(tail) + f" (full log: {path})"


def _engine_home(port: int, timeout_s: float = 15.0) -> str | None:
    """The ``spark.pitlake.home`` of the Connect server on ``port``, None if it is not a pitlake engine.

    Asked with no retries and a deadline: a listener that is no Connect server may accept the
    connection and never answer, and that must not hang the caller.
    """
    import threading

    found: list[str | None] = []

    def ask() -> None:
        try:
            from pyspark.sql import SparkSession
            from pyspark.sql.connect.client.retries import DefaultPolicy

            session = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
            session.client.set_retry_policies([DefaultPolicy(max_retries=0)])
            try:
                found.append(session.conf.get("spark.pitlake.home", None))
            finally:
                session.stop()
        except Exception:
            found.append(None)  # anything else on the port is "not an engine"

    asker = threading.Thread(target=ask, name="pitlake-engine-probe", daemon=True)
    asker.start()
    asker.join(timeout_s)
    return found[0] if found else None


def stop(settings: Settings | None = None, timeout_s: float = 30) -> str:
    """Stop this home's engine (SIGTERM, then SIGKILL after ``timeout_s``); say what was done."""
    s = settings or settings_mod.load()
    state = read_state(s)
    if state is None:
        return "no engine runs for this PITLAKE_HOME"
    if not _pid_alive(state.pid):
        state_file(s).unlink(missing_ok=True)
        return f"removed a stale pid file (process {state.pid} was gone)"
    _signal_group(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(state.pid):
        time.sleep(0.2)
    if _pid_alive(state.pid):
        _signal_group(state.pid, signal.SIGKILL)
    state_file(s).unlink(missing_ok=True)
    return f"stopped the engine (pid {state.pid}, port {state.port})"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
