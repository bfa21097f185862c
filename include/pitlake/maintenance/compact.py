"""Weekly lake maintenance: OPTIMIZE every Delta table, then VACUUM without breaking a registered model.

A registered model version's lineage manifest pins the Delta versions it was trained on
(:func:`pitlake.registry.promote.pinned_versions`); ``jobs/reproduce.py`` time-travels to them.
For a table with pins, VACUUM's retention is widened to cover the oldest pinned version's commit,
so no data file that version reads is deleted, and the table's
``delta.deletedFileRetentionDuration`` (tombstones kept in the log, which VACUUM consults) and
``delta.logRetentionDuration`` (commit files kept, which time travel needs) are raised to cover it
with room until well past the next run. The guard fails closed: a registry that cannot be read
raises before anything is vacuumed, and a table whose pinned version is no longer in its history is
not vacuumed at all.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.delta_io import lake_tables
from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.registry.promote import pinned_versions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# VACUUM lists the table's directories in this many Spark tasks; Spark's default (10000) is for
# cluster-sized tables, where a small table pays for thousands of empty listing tasks.
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
DELETED_FILE_RETENTION = "delta.deletedFileRetentionDuration"
LOG_RETENTION = "delta.logRetentionDuration"
DEFAULT_DELETED_FILE_RETENTION_HOURS = 168.0  # Delta's default: interval 1 week
DEFAULT_LOG_RETENTION_HOURS = 720.0  # Delta's default: interval 30 days
# A pinned table's log retention must still cover its pin at the next runs (weekly): require two
# weeks of head room beyond today's need, and when raising, add 30 days so it is not raised every week.
PROPERTY_HEADROOM_HOURS = 2 * 168
PROPERTY_RAISE_HOURS = 720

_UNIT_HOURS = {
    "microsecond": 1 / 3_600_000_000,
    "millisecond": 1 / 3_600_000,
    "second": 1 / 3600,
    "minute": 1 / 60,
    "hour": 1.0,
    "day": 24.0,
    "week": 168.0,
}
_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+(?:\.\d+)?)\s+([a-z]+?)s?\s*$", re.IGNORECASE)


def interval_hours(value: str | None, default: float) -> float:
    """Hours of a Delta interval property such as ``interval 7 days``; ``default`` when unset or unreadable."""
    if not value:
        return default
    match = _INTERVAL.match(value)
    if match is None or match.group(2).lower() not in _UNIT_HOURS:
        log.warning("cannot read the Delta interval %r; assuming %s hours", value, default)
        return default
    return float(match.group(1)) * _UNIT_HOURS[match.group(2).lower()]


def _norm(path: str | Path) -> str:
    text = str(path)
    text = text.removeprefix("file://") if text.startswith("file:///") else text.removeprefix("file:")
    return os.path.normpath(text)


def _data_files(path: Path) -> int:
    return sum(1 for f in path.rglob("*.parquet") if "_delta_log" not in f.parts)


def _commit_epochs(spark: SparkSession, path: str) -> dict[int, int]:
    """Version → commit time (epoch seconds) for every version still in the table's history."""
    from pyspark.sql import functions as F

    from pitlake.core.delta_io import ident

    history = spark.sql(f"DESCRIBE HISTORY {ident(path)}")
    rows = history.select("version", F.col("timestamp").cast("long")).collect()
    return {int(r[0]): int(r[1]) for r in rows}


def _latest_version(spark: SparkSession, path: str) -> int:
    from pitlake.core.delta_io import latest_version

    return latest_version(spark, path)


@contextmanager
def _session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a session conf for the block, then restore its previous value (or unset it)."""
    previous = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def _cores(spark: SparkSession) -> int:
    """The engine's default parallelism (its cores in local mode), over Connect too."""
    from pitlake.core.spark import is_connect

    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    explicit = spark.conf.get("spark.default.parallelism", None)
    if explicit:
        return int(explicit)
    master = spark.conf.get("spark.master", "local[*]") or "local[*]"
    inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else ""
    return int(inside) if inside.isdigit() else (os.cpu_count() or 2)


def _properties(spark: SparkSession, path: str) -> dict[str, str]:
    from pitlake.core.delta_io import ident

    row = spark.sql(f"DESCRIBE DETAIL {ident(path)}").select("properties").first()
    return dict(row[0] or {}) if row is not None else {}


def _missing_files(spark: SparkSession, path: str, version: int) -> list[str]:
    """Data files that ``version`` of the table reads and that are no longer on disk."""
    from pitlake.core.delta_io import read

    files = read(spark, path, version).inputFiles()
    return [f for f in files if not Path(_norm(f)).exists()]


def maintain_table(
    spark: SparkSession,
    path: str,
    pins: set[int],
    *,
    retain_hours: float,
    dry_run: bool,
    now: float | None = None,
) -> dict[str, Any]:
    """OPTIMIZE and VACUUM one table, keeping every version in ``pins`` readable (see the module docstring)."""

    now = time.time() if now is None else now
    before = _latest_version(spark, path)
    out: dict[str, Any] = {
        "path": path,
        "version_before": before,
        "pinned_versions": sorted(pins),
        "dry_run": dry_run,
        "data_files_before": _data_files(Path(_norm(path))),
    }
    retention = float(retain_hours)
    commits = _commit_epochs(spark, path) if pins else {}
    lost = sorted(v for v in pins if v not in commits)
    if lost:
        # The pinned commit is gone from the log (or never existed): we cannot tell which files it
        # needs, so this table is not vacuumed at all (fail closed).
        out.update(vacuumed=False, skipped_reason=f"pinned versions {lost} are not in the table history")
        log.warning("%s: not vacuumed: pinned versions %s are not in its history", path, lost)
    elif pins:
        oldest = min(pins)
        hours_since = max(0, math.ceil((now - commits[oldest]) / 3600))
        retention = max(retention, float(hours_since + 1))
        out["oldest_pinned_commit_hours_ago"] = hours_since
    out["retain_hours"] = retention

    properties = _properties(spark, path)
    changed: dict[str, str] = {}
    if pins and not lost:
        needed = retention + PROPERTY_HEADROOM_HOURS
        target_days = math.ceil((needed + PROPERTY_RAISE_HOURS) / 24)
        deleted = interval_hours(properties.get(DELETED_FILE_RETENTION), DEFAULT_DELETED_FILE_RETENTION_HOURS)
        kept_log = interval_hours(properties.get(LOG_RETENTION), DEFAULT_LOG_RETENTION_HOURS)
        if deleted < needed:
            changed[DELETED_FILE_RETENTION] = f"interval {target_days} days"
            deleted = target_days * 24.0
        if kept_log < max(needed, deleted):  # Delta requires deletedFileRetention <= logRetention
            changed[LOG_RETENTION] = f"interval {max(target_days, math.ceil(deleted / 24))} days"
    out["table_properties_set"] = changed

    if dry_run:
        out["optimized"] = False
    else:
        if changed:
            props = ", ".join(f"'{k}' = '{v}'" for k, v in changed.items())
            spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({props})")
            properties.update(changed)
        optimized = spark.sql(f"OPTIMIZE delta.`{path}`")
        metrics = optimized.select("metrics.numFilesAdded", "metrics.numFilesRemoved")
        first = metrics.first()
        out["optimized"] = True
        out["optimize_files_added"], out["optimize_files_removed"] = (int(first[0]), int(first[1])) if first else (0, 0)

    if not lost:
        configured = interval_hours(properties.get(DELETED_FILE_RETENTION), DEFAULT_DELETED_FILE_RETENTION_HOURS)
        # Delta refuses a retention below the table's own unless told it is intended.
        lowered = retention < configured
        with _session_conf(spark, RETENTION_CHECK, "false") if lowered else nullcontext():
            if dry_run:
                would = spark.sql(f"VACUUM delta.`{path}` RETAIN {retention} HOURS DRY RUN").count()
                out["vacuum_files_to_delete"] = int(would)
            else:
                spark.sql(f"VACUUM delta.`{path}` RETAIN {retention} HOURS").collect()
        out["vacuumed"] = not dry_run

    out["version_after"] = _latest_version(spark, path)
    out["data_files_after"] = _data_files(Path(_norm(path)))
    if not dry_run:
        missing = {v: m for v in sorted(pins) if v not in lost and (m := _missing_files(spark, path, v))}
        if missing:
            raise InputError(f"{path}: pinned versions lost data files after VACUUM: {missing}")
        out["pinned_versions_kept"] = sorted(v for v in pins if v not in lost)
    log.info("%s: %s", path, out)
    return out


def check_retention(retain_hours: float, allow_short_retention: bool = False) -> None:
    """A one-line :class:`InputError` for a negative retention, or one below Delta's default without
    ``allow_short_retention`` (files a running job still writes or reads could be deleted)."""
    if retain_hours < 0:
        raise InputError(f"--retain-hours {retain_hours:g} is negative: give 0 or more hours")
    if retain_hours < DEFAULT_DELETED_FILE_RETENTION_HOURS and not allow_short_retention:
        raise InputError(
            f"--retain-hours {retain_hours:g} is below Delta's default of {DEFAULT_DELETED_FILE_RETENTION_HOURS:g} "
            "hours: VACUUM could delete files a running job still writes or reads; pass --allow-short-retention "
            "only when no pitlake job is running"
        )


def run_maintenance(
    spark: SparkSession,
    settings: Settings,
    *,
    retain_hours: float = DEFAULT_DELETED_FILE_RETENTION_HOURS,
    dry_run: bool = False,
    allow_short_retention: bool = False,
) -> dict[str, Any]:
    """OPTIMIZE and VACUUM every Delta table of the lake; pinned versions stay readable.

    Returns ``{"tables": {name: {...}}, ...}`` with, per table: the versions before and after, the
    retention VACUUM used, the pinned versions kept and the table properties raised.

    A retention below Delta's default (168 hours) can delete files that a job still writing or
    reading needs; it is refused, before anything runs, unless ``allow_short_retention`` says the
    operator knows no job is running.
    """
    check_retention(retain_hours, allow_short_retention)
    pins = {_norm(p): set(v) for p, v in pinned_versions(settings).items()}  # fails closed: raises if unreadable
    tables: dict[str, Any] = {}
    # Unless the session chose a listing parallelism, list with one task per core for the duration.
    chosen = spark.conf.get(LISTING_PARALLELISM, None) is not None
    per_core = str(max(2, _cores(spark)))
    with nullcontext() if chosen else _session_conf(spark, LISTING_PARALLELISM, per_core):
        for name, path in lake_tables(settings):
            tables[name] = maintain_table(
                spark, str(path), pins.get(_norm(path), set()), retain_hours=retain_hours, dry_run=dry_run
            )
    known = {_norm(p) for _, p in lake_tables(settings)}
    return {
        "lake": str(settings.lake),
        "retain_hours": retain_hours,
        "dry_run": dry_run,
        "tables": tables,
        "pinned_outside_lake": sorted(p for p in pins if p not in known),
    }
