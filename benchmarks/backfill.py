"""A month of demo days through the Airflow scheduler, against the same days through range jobs.

1. **Scheduler**: a fresh PITLAKE_HOME and Airflow database; the README's command
   ``airflow backfill create --dag-id feature_pipeline --from-date D1 --to-date D30
   --reprocess-behavior failed --max-active-runs 2`` is created, then ``airflow standalone``
   (api-server, scheduler with the WarmLocalExecutor, dag-processor, triggerer) runs it on
   127.0.0.1 with ``feature_pipeline`` unpaused. Wall time from the unpause to the last run's
   end; per day from Airflow's ``dag_run`` rows; per task from ``task_instance`` rows and the
   jobs' own records (body, gate).
2. **Range jobs**: another fresh home, the same days' landing files (``pitlake generate``), then
   one process per stage over the whole range: ``jobs/ingest_events.py --start D1 --end D30``,
   ``jobs/ingest_customers.py`` the same, ``jobs/build_features.py --view V --start D1 --end D30``
   per view; each ingests or builds every day and runs its gate once over the range.

N is 30 (``python -m benchmarks.run backfill --days N`` for another). Both run on one engine
started for the benchmark on a free port (``PITLAKE_SPARK_REMOTE``); its resident memory is read
after the first scheduler day and after the last.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.processes import free_port, run_pitlake, start_pitlake, stop_group
from pitlake.core.settings import REPO_ROOT, child_environ

from benchmarks.run import Context, Section, table

if TYPE_CHECKING:
    from collections.abc import Callable

    from pitlake.core.settings import Settings

FIRST = date(2026, 1, 1)
DAG = "feature_pipeline"


def _home(ctx: Context, name: str) -> Path:
    home = ctx.scratch("backfill") / f"{name}-{int(time.time())}"
    home.mkdir(parents=True)
    (home / "jars").symlink_to((REPO_ROOT / ".pitlake" / "jars").resolve(), target_is_directory=True)
    return home


def _env(home: Path, remote: str, customers: int | None) -> dict[str, str]:
    env = {k: v for k, v in child_environ().items() if not k.startswith(("PITLAKE_", "AIRFLOW", "MLFLOW_"))}
    env |= {"PITLAKE_HOME": str(home), "PITLAKE_SPARK_REMOTE": remote, "HOME": str(home)}
    if customers:
        env["PITLAKE_DEMO_CUSTOMERS"] = str(customers)
    return env


def _runs(db: Path) -> list[tuple[str, str, str | None, str | None]]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        try:
            return con.execute(
                "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = ? ORDER BY logical_date",
                (DAG,),
            ).fetchall()
        except sqlite3.OperationalError:
            return []


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace(" ", "T")[:26])


def _memory(settings: Settings) -> dict[str, float | None]:
    """The engine's resident memory, and its Java heap after a full GC (the live set) and committed.

    RSS alone cannot tell a leak from the heap growing towards its maximum: the JVM keeps heap it
    once committed. ``jcmd`` (the JDK's; None without one) forces a full GC and reads the heap.
    """
    import re
    import shutil

    from pitlake.core import engine

    info = engine.status(settings)
    out: dict[str, float | None] = {"rss": info.get("rss_mb"), "heap_used": None, "heap_committed": None}
    jcmd, pid = shutil.which("jcmd"), info.get("pid")
    if jcmd and pid:
        try:
            subprocess.run([jcmd, str(pid), "GC.run"], capture_output=True, timeout=120, check=True)
            heap = subprocess.run([jcmd, str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return out
        found = re.search(r"total (\d+)K, used (\d+)K", heap.stdout)
        if found:
            out["heap_committed"], out["heap_used"] = int(found[1]) / 1024, int(found[2]) / 1024
    return out


def _scheduler(
    ctx: Context, days: int, customers: int | None, remote: str, memory: Callable[[], dict[str, float | None]]
) -> dict[str, Any]:
    home = _home(ctx, "scheduler")
    port = free_port()
    env = _env(home, remote, customers) | {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    }
    last = FIRST + timedelta(days=days - 1)
    # The backfill is created before the services start: the benchmark times its runs, not the UI.
    for args in (
        ["db", "migrate"],
        ["dags", "reserialize"],
        ["backfill", "create", "--dag-id", DAG, "--from-date", FIRST.isoformat(), "--to-date", last.isoformat(),
         "--reprocess-behavior", "failed", "--max-active-runs", "2"],
    ):  # fmt: skip
        done = run_pitlake(["airflow", "--", *args], env, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    db = home / "airflow" / "airflow.db"
    log = home / "standalone.log"
    proc = start_pitlake(["airflow", "--", "standalone"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"airflow standalone did not come up; log: {log}")
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(2)
        unpause = urllib.request.Request(
            f"{base}/api/v2/dags/{DAG}",
            data=json.dumps({"is_paused": False}).encode(),
            headers={"Content-Type": "application/json"},
            method="PATCH",
        )
        urllib.request.urlopen(unpause, timeout=60).close()
        started = time.monotonic()
        memory_first = None
        while True:
            found = _runs(db)
            failed = [r for r in found if r[1] == "failed"]
            if failed:
                raise SystemExit(f"backfill runs failed: {failed[:3]}; logs under {home / 'airflow' / 'logs'}")
            succeeded = [r for r in found if r[1] == "success"]
            if succeeded and memory_first is None:
                memory_first = memory()
            if len(found) == days and len(succeeded) == days:
                break
            if time.monotonic() - started > 6 * 3600:
                raise SystemExit(f"backfill not done after 6 h; log: {log}")
            time.sleep(10)
        wall = time.monotonic() - started
    finally:
        stop_group(proc, term_wait_s=60)
    found = _runs(db)
    run_s = [(_ts(r[3]) - _ts(r[2])).total_seconds() for r in found if r[2] and r[3]]
    return {
        "home": home,
        "wall": wall,
        "run_s": run_s,
        "memory_first": memory_first or {},
        "memory_last": memory(),
        "tasks": _tasks(home, db),
    }


def _tasks(home: Path, db: Path) -> list[list[object]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        rows = con.execute(
            "SELECT task_id, (julianday(end_date) - julianday(start_date)) * 86400 FROM task_instance "
            "WHERE dag_id = ? AND state = 'success'",
            (DAG,),
        ).fetchall()
    seconds: dict[str, list[float]] = defaultdict(list)
    for task, s in rows:
        seconds[task].append(float(s))
    timings: dict[str, list[dict[str, float]]] = defaultdict(list)
    for path in (home / "runs" / "airflow" / DAG).glob("*/*.json"):
        record = json.loads(path.read_text())
        if "timing" in record:
            timings[path.name.split(".")[0]].append(record["timing"])
    out = []
    for task in sorted(seconds):
        jobs = timings.get(task, [])
        body = sum(j["body_s"] for j in jobs) / len(jobs) if jobs else None
        gates = [j["gate_s"] for j in jobs if "gate_s" in j]
        gate = sum(gates) / len(gates) if gates else None
        out.append(
            [
                task,
                len(seconds[task]),
                sum(seconds[task]) / len(seconds[task]),
                f"{body:.1f}" if body is not None else "-",
                f"{gate:.1f}" if gate is not None else "-",
                f"{gate / (body - gate):.2f}" if gate is not None and body and body > gate else "-",
            ]
        )
    return out


def _range_jobs(ctx: Context, days: int, customers: int | None, remote: str) -> dict[str, Any]:
    from pitlake.features import VIEWS

    home = _home(ctx, "range")
    env = _env(home, remote, customers)
    last = FIRST + timedelta(days=days - 1)
    span = ["--start", FIRST.isoformat(), "--end", last.isoformat()]
    began = time.monotonic()
    generated = run_pitlake(["generate", *span], env, timeout=3600)
    if generated.returncode != 0:
        raise SystemExit(f"pitlake generate failed:\n{generated.stderr[-2000:]}")
    generate_s = time.monotonic() - began
    steps: list[tuple[str, list[str]]] = [("ingest_events", []), ("ingest_customers", [])]
    steps += [("build_features", ["--view", v.name]) for v in VIEWS]
    rows = []
    for job, extra in steps:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "jobs" / f"{job}.py"), *extra, *span],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=6 * 3600, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"{job} {' '.join(extra)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        record = json.loads([x for x in done.stdout.splitlines() if x.startswith("PITLAKE_RESULT ")][-1][15:])
        timing = record.get("timing", {})
        rows.append([f"{job} {' '.join(extra)}".strip(), seconds, timing.get("body_s"), timing.get("gate_s")])
    return {"wall": time.monotonic() - began, "generate_s": generate_s, "rows": rows}


def run(ctx: Context) -> Section:
    from pitlake.core import engine

    days = 5 if ctx.quick else (ctx.days or 30)
    customers = 200 if ctx.quick else None
    port = free_port()
    engine_settings = dataclasses.replace(ctx.settings, engine_port=port, engine="connect", spark_remote=None)
    state = engine.ensure(engine_settings)
    try:
        sched = _scheduler(ctx, days, customers, state.url, lambda: _memory(engine_settings))
        ranged = _range_jobs(ctx, days, customers, state.url)
    finally:
        engine.stop(engine_settings)
    per_day = sched["wall"] / days
    run_s = sorted(sched["run_s"])
    first, last = sched["memory_first"], sched["memory_last"]
    rss_line = ""
    if first.get("rss") and last.get("rss"):
        growth = 100 * (last["rss"] / first["rss"] - 1)
        rss_line = (
            f"\n\nThe engine's resident memory: {first['rss']:.0f} MB after the first day, "
            f"{last['rss']:.0f} MB after day {days} ({growth:+.0f}%; target within 10%)."
        )
    if first.get("heap_used") and last.get("heap_used"):
        rss_line += (
            f" Its Java heap after a full GC (`jcmd GC.run`, the live set): {first['heap_used']:.0f} MB after "
            f"the first day, {last['heap_used']:.0f} MB after day {days} "
            f"({100 * (last['heap_used'] / first['heap_used'] - 1):+.0f}%); heap committed "
            f"{first['heap_committed']:.0f} -> {last['heap_committed']:.0f} MB."
        )
    paths: list[list[object]] = [
        ["scheduler: `airflow backfill create` (2 runs at a time)", sched["wall"], per_day, "<= 900 s for 30 days"],
        ["range jobs: one process per stage (with landing generation)", ranged["wall"], ranged["wall"] / days, "-"],
    ]
    body = (
        f"{days} demo days ({customers or 2000} customers) from {FIRST}, on one warm engine (`local[*]`, 2 cores).\n\n"
        + table(["path", "wall s", "s per day", "target"], paths)
        + f"\n\nScheduler runs: median {run_s[len(run_s) // 2]:.0f} s from start to end (two overlap). "
        "Per task (mean over the runs; body and gate from the job's own record):\n\n"
        + table(["task", "runs", "task s", "job body s", "of which gate s", "gate / rest of body"], sched["tasks"])
        + f"\n\nRange jobs (landing generation {ranged['generate_s']:.0f} s first):\n\n"
        + table(["job", "process s", "body s", "gate s"], ranged["rows"])
        + rss_line
    )
    return Section("Backfill: scheduler against range jobs", body)
