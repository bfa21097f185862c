"""Lineage and the pitlake pages on a finished ``make demo``: what emitting OpenLineage costs each task,
and how long each page of the Airflow UI plugin takes to render.

The demo is the newest one under this run's scratch folder (``make bench`` runs the orchestration
benchmark first, which leaves one), or ``PITLAKE_HOME`` itself when it holds a finished demo, or a
fresh one run here. Measured on it:

* per task of the demo's ``airflow dags test`` runs: the Airflow task's duration (its database), the
  job's body time and the seconds its frame spent building and writing its two OpenLineage events
  (``timing.lineage_s``: the Delta schema facets read from the log, serialisation, the file write);
  their ratio is the cost of lineage, target < 2% of the task's time;
* the one-off import of the OpenLineage client in a fresh interpreter (a standalone ``jobs/<stage>.py``
  pays it once; Airflow's workers have it imported already: the provider's listener imports it, and
  ``WarmLocalExecutor`` imports it before forking);
* the events the demo left under ``lineage/`` (count, bytes);
* each page of the plugin (``pitlake.catalog.app``, in process, authentication left out), the first
  request and the best of 5 after it. Target: < 1 s per page.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.orchestration import _job_timings, _mean, _run_demo, _task_durations
from benchmarks.run import Section, table

if TYPE_CHECKING:
    from benchmarks.run import Context

PAGES = ("/catalog", "/validations", "/models", "/models/purchase_propensity/lineage")


def _demo_home(ctx: Context) -> tuple[Path, str]:
    homes = sorted((ctx.settings.home / "bench" / "demo").glob("home-*/runs/demo_timings.json"))
    if homes:
        return homes[-1].parent.parent, "the orchestration benchmark's demo"
    from pitlake.core.settings import load

    base = load().home
    if (base / "runs" / "demo_timings.json").exists():
        return base, "the demo in PITLAKE_HOME"
    from pitlake.demo.runner import DEMO_DAYS

    home = ctx.scratch("lineage") / f"home-{int(time.time())}"
    _run_demo(home, 14 if ctx.quick else DEMO_DAYS, 200 if ctx.quick else None)
    return home, "a demo run for this benchmark"


def _cold_import_s() -> float:
    code = "import time; t = time.perf_counter(); import openlineage.client; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]  # fmt: skip
    return min(runs)


def _page_times(home: Path) -> tuple[float, list[list[object]]]:
    import dataclasses

    from fastapi.testclient import TestClient
    from pitlake.catalog.app import create_app, warm_up
    from pitlake.core.settings import load

    settings = dataclasses.replace(load(), home=home, mlflow_tracking_uri=None)
    began = time.perf_counter()
    warm_up(settings)  # what the api-server's start does in the background, before a first click
    warm_s = time.perf_counter() - began
    app = create_app(settings, guard=lambda: None, run_guard=lambda: None)
    runs = sorted((home / "runs" / "airflow" / "feature_pipeline").glob("*"))
    pages = list(PAGES)
    if runs:  # the run's folder is its run id with unsafe characters replaced, as the page looks it up
        pages.append(f"/runs/feature_pipeline/{runs[-1].name}")
    rows: list[list[object]] = []
    with TestClient(app) as client:
        for page in pages:
            began = time.perf_counter()
            first = client.get(page)
            cold = time.perf_counter() - began
            warm = []
            for _ in range(5):
                began = time.perf_counter()
                response = client.get(page)
                warm.append(time.perf_counter() - began)
            status = "ok" if response.status_code == 200 == first.status_code else str(response.status_code)
            rows.append([page.split("/runs/")[0] + ("/runs/feature_pipeline/<run>" if "/runs/" in page else ""),
                         f"{cold * 1000:.0f}", f"{min(warm) * 1000:.0f}", f"{len(response.content) / 1024:.0f}",
                         status])  # fmt: skip
    return warm_s, rows


def run(ctx: Context) -> Section:
    home, which = _demo_home(ctx)
    tasks, jobs = _task_durations(home), _job_timings(home)
    rows: list[list[object]] = []
    ratios = []
    for task, seconds in sorted(tasks.items()):
        timings = [t for t in jobs.get(task, []) if "lineage_s" in t]
        if not timings:
            continue
        lineage_s, body_s = _mean([t["lineage_s"] for t in timings]), _mean([t["body_s"] for t in timings])
        task_s = _mean(seconds)
        ratios.append(lineage_s / task_s)
        rows.append([task, len(seconds), f"{task_s:.1f}", f"{body_s:.1f}", f"{lineage_s * 1000:.1f}",
                     f"{100 * lineage_s / task_s:.3f}%"])  # fmt: skip
    events = list((home / "lineage").glob("*.json"))
    size = sum(p.stat().st_size for p in events)
    cold = _cold_import_s()
    warm_s, pages = _page_times(home)
    body = (
        f"On {which} (`{home.name}`). **Cost of emitting lineage per task**: a job's two events (START, "
        "COMPLETE with its inputs and outputs: Delta schema and version facets read from the log) against "
        "the Airflow task's duration. Target: < 2%.\n\n"
        + table(["task", "runs", "task s", "job body s", "lineage ms", "lineage / task"], rows)
        + f"\n\nLargest share: {100 * max(ratios, default=0):.3f}% of a task. The events on disk: {len(events)} "
        f"files, {size / 1024:.0f} KiB. Importing the OpenLineage client in a fresh interpreter takes "
        f"{cold:.2f} s (best of 3): a `jobs/<stage>.py` run by hand pays it once; Airflow's tasks do not (the "
        "provider's listener imports it in every task process, and `WarmLocalExecutor` before forking). "
        "The provider's own events (one START and one COMPLETE per task and per DAG run) are emitted by "
        "Airflow's listener after the task's work, outside the job's body.\n\n"
        "**The pitlake pages** (`pitlake.catalog.app` in process, authentication left out; milliseconds): "
        f"the first request of each page and the best of 5 after it, once the app's start-up warm-up (imports, "
        f"the MLflow client: {warm_s:.1f} s, in the background when the api-server starts) is done. "
        "Target: < 1 s.\n\n" + table(["page", "first ms", "best ms", "KiB", "status"], pages)
    )
    return Section("Lineage and the pitlake pages", body, {"max_lineage_share": max(ratios, default=0)})
