"""The DAG files' parse times, and ``make demo`` end to end on this machine with where its time goes.

The demo runs as ``python -m pitlake demo`` in a fresh PITLAKE_HOME (its own Airflow database and
MLflow store), exactly what ``make demo`` runs after ``make install``. Its time is split three ways:

1. the demo's phases (``runs/demo_timings.json``, written by the demo itself): Airflow's database
   migration, the history days built in one Spark session, each ``airflow dags test`` day, and
   ``train_model``;
2. inside the Airflow days, per task from Airflow's own ``task_instance`` rows: the task's wall
   time, of which the job body (its record's ``timing.body_s``), of which the Spark session's start
   (``timing.spark_session_start_s``: opening a Connect session on the warm engine); the rest of a
   Spark task is Airflow's task runner (and, on a ``spark`` connection, spark-submit's JVM);
3. ``train_model``'s tasks the same way (training runs in the task's own Python process, no JVM).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from pitlake.core.settings import REPO_ROOT, child_environ

from benchmarks.ingest import dag_parse_rows
from benchmarks.run import Context, Section, table


def _run_demo(home: Path, days: int, customers: int | None) -> tuple[float, str]:
    home.mkdir(parents=True, exist_ok=True)
    jars = home / "jars"
    if not jars.exists():
        jars.symlink_to((REPO_ROOT / ".pitlake" / "jars").resolve(), target_is_directory=True)
    env = {k: v for k, v in child_environ().items() if not k.startswith(("PITLAKE_", "AIRFLOW", "MLFLOW_"))}
    env["PITLAKE_HOME"] = str(home)
    if customers:
        env["PITLAKE_DEMO_CUSTOMERS"] = str(customers)
    log = home / "demo.log"
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "pitlake", "demo", "--days", str(days)],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"make demo failed (exit {proc.returncode}); log: {log}\n{log.read_text()[-3000:]}")
    return seconds, str(log)


def _task_durations(home: Path) -> dict[str, list[float]]:
    """Seconds per task_id over all runs, from Airflow's database."""
    db = home / "airflow" / "airflow.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute(
            "SELECT dag_id, task_id, start_date, end_date FROM task_instance WHERE state = 'success'"
        ).fetchall()
    out: dict[str, list[float]] = defaultdict(list)
    for dag_id, task_id, started, ended in rows:
        if started and ended:
            out[f"{dag_id}.{task_id}"].append(
                (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
            )
    return out


def _job_timings(home: Path) -> dict[str, list[dict[str, Any]]]:
    """``timing`` of every job record the Airflow tasks wrote, by stage."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in (home / "runs" / "airflow").rglob("*.json"):  # <dag>/<run>/<task>.<try>.json
        record = json.loads(path.read_text())
        if "timing" in record:
            out[f"{path.parent.parent.name}.{path.name.split('.')[0]}"].append(record["timing"])
    return out


def _rss_line(timings: dict[str, Any]) -> str:
    rss = [(name, mb) for name, mb in timings.get("engine_rss_mb", []) if mb is not None]
    if not rss:
        return ""
    cells = ", ".join(f"{name}: {mb:.0f} MiB" for name, mb in rss)
    return f"\n\nThe engine's resident memory (JVM and its Python workers) after each phase: {cells}."


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def run(ctx: Context) -> Section:
    from pitlake.demo.runner import DEMO_DAYS

    parse = dag_parse_rows(ctx)
    home = ctx.scratch("demo") / f"home-{int(time.time())}"
    wall, log = _run_demo(home, 14 if ctx.quick else DEMO_DAYS, 200 if ctx.quick else None)
    return section(parse, home, wall, log)


def section(parse: list[list[object]], home: Path, wall: float, log: str, remark: str = "") -> Section:
    """The report for one finished demo in ``home`` that took ``wall`` seconds."""
    timings = json.loads((home / "runs" / "demo_timings.json").read_text())
    days = timings["days"]
    phases = [[name, seconds, f"{100 * seconds / wall:.0f}%"] for name, seconds in timings["phases"]]
    phases.append(["total (process wall time, incl. Python start)", wall, "100%"])
    tasks = _task_durations(home)
    jobs = _job_timings(home)
    task_rows = []
    for task, seconds in sorted(tasks.items()):
        job = jobs.get(task, [])
        body_s = _mean([j["body_s"] for j in job]) if job else None
        session = _mean([j["spark_session_start_s"] for j in job if j.get("spark_session_start_s")]) if job else None
        gate = _mean([j["gate_s"] for j in job if "gate_s" in j]) if job and any("gate_s" in j for j in job) else None
        task_rows.append(
            [
                task,
                len(seconds),
                _mean(seconds),
                f"{body_s:.1f}" if body_s is not None else "-",
                f"{session:.1f}" if session is not None else "-",
                f"{gate:.1f}" if gate is not None else "-",
                f"{gate / (body_s - gate):.2f}" if gate is not None and body_s and body_s > gate else "-",
                f"{_mean(seconds) - body_s:.1f}" if body_s is not None else "-",
            ]
        )
    body = (
        "**DAG file parse time** (`airflow dags report`; no DAG file imports pyspark, pandas, sklearn, mlflow "
        "or great_expectations at top level). Target: under 0.5 s each.\n\n"
        + table(["file", "parse duration", "dags", "tasks"], parse)
        + f"\n\n**`make demo` end to end** ({days} demo days, {timings['airflow_days']} of them through "
        "`airflow dags test`, the rest built in one Spark session; then `train_model`), in a fresh "
        f"PITLAKE_HOME on `local[*]`: **{wall:.0f} s** wall time.\n\n"
        + table(["phase", "seconds", "share"], phases)
        + "\n\nInside the Airflow tasks (mean per run; every Spark task runs on the warm engine, so its "
        "overhead outside the job body is Airflow's task runner and a Connect session):\n\n"
        + table(
            [
                "dag.task",
                "runs",
                "task s",
                "job body s",
                "of which Spark session start s",
                "of which gate s",
                "gate / rest of body",
                "overhead s",
            ],
            task_rows,
        )
        + _rss_line(timings)
        + "\n\nReading: no task starts a JVM; most of a task is its body: the Spark work on small data, where "
        "each Delta commit and each Spark job has a fixed cost on the engine, plus the validation gate that every "
        "job runs on what it wrote (see the validation section for its share)." + (f" {remark}" if remark else "")
    )
    return Section("Orchestration: DAG parsing and make demo", body, {"wall_s": wall, "phases": timings["phases"]})
