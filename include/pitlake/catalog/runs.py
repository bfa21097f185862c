"""What an Airflow run committed, from the result records its tasks left.

A Spark task run by :class:`pitlake.airflow.operators.PitlakeSparkSubmitOperator` writes
``$PITLAKE_HOME/runs/airflow/<dag_id>/<run_key>/<task_id>.<try>.json`` (``run_key``: the run id with
every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``): the job's result, with the Delta version
it committed, what it read and its validation gate's record (or the error it stopped on).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pitlake.core.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_RECORD = re.compile(r"^(?P<task>.+)\.(?P<try>\d+)\.json$")


def run_key(run_id: str) -> str:
    """The folder name of ``run_id`` under ``runs/airflow/<dag_id>/`` (as the operator builds it)."""
    return _UNSAFE.sub("_", run_id)


def run_href(base: str, dag_id: str, run_id: str) -> str:
    """The per-run page of the plugin (``base``: where the plugin's app is mounted)."""
    return f"{base}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def _run_dir(settings: Settings, dag_id: str, run_id: str) -> Path | None:
    key = run_key(run_id)
    if not _DAG_ID.match(dag_id) or dag_id in (".", "..") or key in (".", ".."):
        return None
    return settings.runs_dir / "airflow" / dag_id / key


def dags_with_run(settings: Settings, run_id: str) -> list[str]:
    """The DAGs that have task records for a run with id ``run_id`` (a run id is unique per DAG only)."""
    root = settings.runs_dir / "airflow"
    key = run_key(run_id)
    if not root.is_dir() or key in (".", ".."):
        return []
    return sorted(d.name for d in root.iterdir() if (d / key).is_dir())


@dataclass(frozen=True)
class Commit:
    table: str
    version: int
    what: str = ""  # "rollups", "rejected rows", ...


@dataclass(frozen=True)
class Read:
    table: str  # a lake table, or a landing folder (path relative to PITLAKE_HOME)
    version: int | None


@dataclass(frozen=True)
class Gate:
    result_id: str
    suite: str
    table: str
    delta_version: int | None
    success: bool


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    try_number: int
    tries: int  # records of this task in the run (a retried task has one per try)
    path: str
    stage: str
    error: str | None
    commits: tuple[Commit, ...]
    reads: tuple[Read, ...]
    gates: tuple[Gate, ...]
    details: tuple[str, ...]
    seconds: float | None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def commits_of(result: dict[str, Any]) -> list[Commit]:
    """Every (table, version) a job's result says it committed: the main table, rollups, quarantine."""
    out: list[Commit] = []
    parts = [result, *[d for d in result.get("days") or [] if isinstance(d, dict)]]
    for part in parts:
        table, version = part.get("table"), _int(part.get("delta_version"))
        if not isinstance(table, str) or version is None:
            continue
        out.append(Commit(table, version))
        if (rollup := _int(part.get("rollup_version"))) is not None:
            out.append(Commit(f"{table}_daily", rollup, "rollups"))
        if (quarantine := _int(part.get("quarantine_version"))) is not None and "." in table:
            out.append(Commit(f"quarantine.{table.split('.', 1)[1]}", quarantine, "rejected rows"))
    return list(dict.fromkeys(out))  # a range's last day repeats the top-level table and version


def reads_of(result: dict[str, Any], home: str = "") -> list[Read]:
    """What a job read: its OpenLineage ``lineage.inputs`` when the result has them (tables at their Delta
    version, landing folders), else the older records' ``source_table``/``inputs``."""
    lineage = result.get("lineage")
    if isinstance(lineage, dict) and isinstance(lineage.get("inputs"), list):
        reads = []
        for d in lineage["inputs"]:
            if isinstance(d, dict) and isinstance(d.get("table"), str):
                reads.append(Read(d["table"], _int(d.get("version"))))
            elif isinstance(d, dict) and isinstance(d.get("name"), str):
                name = d["name"]
                reads.append(Read(name[len(home) :].lstrip("/") if home and name.startswith(home) else name, None))
        return reads
    out = []
    if isinstance(result.get("source_table"), str) and (v := _int(result.get("source_version"))) is not None:
        out.append(Read(result["source_table"], v))
    inputs = result.get("inputs")
    if isinstance(inputs, dict):
        for table, info in sorted(inputs.items()):
            version = _int(info.get("version")) if isinstance(info, dict) else _int(info)
            if version is not None:
                out.append(Read(str(table), version))
    return out


def gates_of(result: dict[str, Any]) -> list[Gate]:
    return [
        Gate(str(g["result_id"]), str(g.get("suite") or ""), str(g.get("table") or ""), _int(g.get("delta_version")),
             bool(g.get("success")))
        for g in result.get("validation") or []
        if isinstance(g, dict) and g.get("result_id")
    ]  # fmt: skip


def details_of(result: dict[str, Any]) -> list[str]:
    """The few numbers a person checks first, per kind of job."""
    out = []
    if "accepted" in result:
        out.append(
            f"{result.get('ingest_date', '')}: {result.get('rows_read', 0):,} read, {result.get('accepted', 0):,} "
            f"accepted, {result.get('quarantined', 0):,} quarantined, "
            f"{result.get('duplicates_dropped', 0):,} duplicates"
        )
    if isinstance(result.get("rows_by_date"), dict):
        rows = result["rows_by_date"]
        out.append(f"{sum(int(v) for v in rows.values()):,} rows for {', '.join(sorted(rows))}")
    if "training_set_id" in result:
        out.append(f"training set {result['training_set_id']}: {result.get('row_count', 0):,} rows")
    if "dates_labelled" in result:
        out.append(f"{result.get('rows', 0):,} labels ({result.get('positives', 0):,} positive)")
    return out


def task_records(settings: Settings, dag_id: str, run_id: str) -> list[TaskRecord]:
    """The latest try's record of every task of the run that left one, by task id."""
    folder = _run_dir(settings, dag_id, run_id)
    if folder is None or not folder.is_dir():
        return []
    home = str(settings.home)
    by_task: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.glob("*.json"):
        if m := _RECORD.match(path.name):
            by_task.setdefault(m["task"], []).append((int(m["try"]), path))
    out = []
    for task_id, tries in sorted(by_task.items()):
        try_number, path = max(tries)
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            result = {"error": f"unreadable record: {err}"}
        if not isinstance(result, dict):
            result = {"error": "unreadable record: not a JSON object"}
        timing = result.get("timing") if isinstance(result.get("timing"), dict) else {}
        out.append(
            TaskRecord(
                task_id=task_id,
                try_number=try_number,
                tries=len(tries),
                path=str(path),
                stage=str(result.get("stage") or ""),
                error=str(result["error"]) if result.get("error") else None,
                commits=tuple(commits_of(result)),
                reads=tuple(reads_of(result, home)),
                gates=tuple(gates_of(result)),
                details=tuple(details_of(result)),
                seconds=timing.get("body_s") if isinstance(timing, dict) else None,
            )
        )
    return out
