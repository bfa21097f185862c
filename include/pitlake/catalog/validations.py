"""Validation runs as ``ops.validation_results`` records them (one row per expectation, one commit per run).

Reading the whole table for "the latest run of each suite" costs a read of every commit's file (hundreds
after a demo). Instead the files are chosen from the Delta log's statistics: a run is one commit whose
rows share ``suite``, ``run_id``, ``result_id`` and ``validated_at``, so the files that may hold a suite
(or a run id, or a result id) are known without opening them, and the newest of them is read first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pitlake.catalog.lake import FileStats, as_utc, file_stats, may_contain, newest, read_files
from pitlake.core.settings import Settings
from pitlake.validation.records import CRITICAL
from pitlake.validation.results import RESULTS_TABLE

STAT_COLUMNS = ("suite", "run_id", "result_id", "validated_at")


@dataclass(frozen=True)
class Check:
    """One expectation of a run: GX's name, the column, what it checks (our words), the outcome, what GX saw."""

    expectation: str
    column: str | None
    check: str
    severity: str
    success: bool
    unexpected_count: int | None
    element_count: int | None
    observed_value: str | None  # JSON text, as stored


@dataclass(frozen=True)
class ValidationRun:
    result_id: str
    suite: str
    table: str
    delta_version: int
    interval_start: date | None
    interval_end: date | None
    training_set_id: str | None
    run_id: str
    validated_at: datetime
    success: bool
    report_path: str | None
    checks: tuple[Check, ...]

    @property
    def critical_failures(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity == CRITICAL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity != CRITICAL]

    @property
    def slice(self) -> str:
        """What was validated: ``2026-01-08`` / ``2026-01-01 .. 2026-01-07``, or the training set id."""
        if self.training_set_id:
            return f"training set {self.training_set_id}"
        if self.interval_start is None:
            return "whole table"
        start, end = self.interval_start.isoformat(), (self.interval_end or self.interval_start).isoformat()
        return start if start == end else f"{start} .. {end}"


def _files(settings: Settings) -> list[FileStats]:
    return file_stats(settings.table_path(RESULTS_TABLE), STAT_COLUMNS) or []


def _rows(tables: list[Any]) -> list[dict[str, Any]]:
    return [row for t in tables for row in t.to_pylist()]


def _runs(rows: list[dict[str, Any]]) -> list[ValidationRun]:
    """The rows grouped into runs (expectations in the order they were written), newest first."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["result_id"]), []).append(row)
    runs = []
    for result_id, members in grouped.items():
        head = members[0]
        runs.append(
            ValidationRun(
                result_id=result_id,
                suite=str(head["suite"]),
                table=str(head["table_name"]),
                delta_version=int(head["delta_version"]),
                interval_start=head.get("interval_start"),
                interval_end=head.get("interval_end"),
                training_set_id=head.get("training_set_id"),
                run_id=str(head.get("run_id") or ""),
                validated_at=as_utc(head["validated_at"]) or datetime.min.replace(tzinfo=UTC),
                success=bool(head["success"]),
                report_path=head.get("report_path"),
                checks=tuple(
                    Check(
                        expectation=str(r["expectation"]),
                        column=r.get("column"),
                        check=str(r.get("check") or ""),
                        severity=str(r.get("severity") or CRITICAL),
                        success=bool(r["expectation_success"]),
                        unexpected_count=r.get("unexpected_count"),
                        element_count=r.get("element_count"),
                        observed_value=r.get("observed_value"),
                    )
                    for r in members
                ),
            )
        )
    return sorted(runs, key=lambda r: (r.validated_at, r.result_id), reverse=True)


def _newest_first(files: list[FileStats]) -> list[FileStats]:
    return sorted(files, key=lambda f: newest(f, "validated_at"), reverse=True)


def _older(f: FileStats, run: ValidationRun) -> bool:
    """Whether every run in file ``f`` is older than ``run``. Delta's statistics keep milliseconds (a
    timestamp's max is truncated), so a file of ``run``'s own commit is never older than it."""
    at = run.validated_at
    return newest(f, "validated_at") < at.replace(microsecond=at.microsecond // 1000 * 1000)


def latest_by_suite(settings: Settings, suites: list[str]) -> dict[str, ValidationRun]:
    """The latest run of each suite in ``suites`` that has one.

    For each suite, the files that may hold it are read newest first until the next file's newest
    ``validated_at`` is older than the latest run found (one file, usually)."""
    files = _files(settings)
    out: dict[str, ValidationRun] = {}
    for suite in suites:
        candidates = _newest_first([f for f in files if may_contain(f, "suite", suite)])
        found: list[dict[str, Any]] = []
        best: ValidationRun | None = None
        for f in candidates:
            if best is not None and _older(f, best):
                break
            found += [r for r in _rows(read_files([f.path])) if r["suite"] == suite]
            runs = _runs(found)
            best = runs[0] if runs else None
        if best is not None:
            out[suite] = best
    return out


def suite_history(settings: Settings, suite: str, limit: int = 20) -> list[ValidationRun]:
    """The suite's latest ``limit`` runs, newest first."""
    candidates = _newest_first([f for f in _files(settings) if may_contain(f, "suite", suite)])
    found: list[dict[str, Any]] = []
    runs: list[ValidationRun] = []
    for f in candidates:
        if len(runs) >= limit and _older(f, runs[limit - 1]):
            break
        found += [r for r in _rows(read_files([f.path])) if r["suite"] == suite]
        runs = _runs(found)
    return runs[:limit]


def validation_run(settings: Settings, result_id: str) -> ValidationRun | None:
    files = [f.path for f in _files(settings) if may_contain(f, "result_id", result_id)]
    runs = _runs([r for r in _rows(read_files(files)) if r["result_id"] == result_id])
    return runs[0] if runs else None


def runs_of(settings: Settings, run_id: str) -> list[ValidationRun]:
    """Every validation run recorded with Airflow run id ``run_id``, newest first."""
    files = [f.path for f in _files(settings) if may_contain(f, "run_id", run_id)]
    return _runs([r for r in _rows(read_files(files)) if r.get("run_id") == run_id])
