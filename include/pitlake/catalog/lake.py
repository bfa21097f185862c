"""What the pages know about a Delta table, from its log alone (delta-rs, no JVM, no data file scanned).

:func:`table_stats`: the latest version and its commit time, the row count (the add actions'
``numRecords``) and the latest value of a time column (the largest ``max`` statistic), e.g. a feature
table's freshness (its last ``feature_time``). :func:`file_stats` lists the data files with their
column statistics, so a reader can choose the few files that may hold a value
(:func:`may_contain`) and read only those (:func:`read_files`, cached: a Delta data file never changes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class TableStats:
    """A table's latest version as its log describes it; ``rows``/``latest`` are None when a file lacks statistics."""

    table: str
    path: str
    exists: bool
    version: int | None = None
    committed_at: datetime | None = None
    files: int = 0
    rows: int | None = None
    rows_exact: bool = True  # False when deletion vectors may hide some of the rows counted
    latest: datetime | None = None  # the largest value of the time column asked for
    error: str | None = None


def is_delta_table(path: str | Path) -> bool:
    return (Path(path) / "_delta_log").is_dir()


def table_stats(table: str, path: str, time_column: str | None = None) -> TableStats:
    """The latest version of the Delta table at ``path``: version, commit time, files, rows, max of ``time_column``."""
    if not is_delta_table(path):
        return TableStats(table=table, path=path, exists=False)
    from deltalake import DeltaTable

    try:
        dt = DeltaTable(path)
        actions = _add_actions(dt)
        history = dt.history(1)
        deletion_vectors = "deletionVectors" in (dt.protocol().reader_features or [])
    except Exception as err:  # a damaged or unsupported log: say so on the page instead of failing it
        return TableStats(table=table, path=path, exists=True, error=f"{type(err).__name__}: {err}".splitlines()[0])
    committed = history[0].get("timestamp") if history else None
    records = actions.column("num_records").to_pylist() if actions.num_rows else []
    rows = None if any(n is None for n in records) else sum(records)
    latest = None
    column = f"max.{time_column}"
    if time_column and actions.num_rows and column in actions.column_names:
        values = actions.column(column).to_pylist()
        if all(v is not None for v in values):
            latest = as_utc(max(values))
    return TableStats(
        table=table,
        path=path,
        exists=True,
        version=dt.version(),
        committed_at=datetime.fromtimestamp(int(committed) / 1000, UTC) if committed is not None else None,
        files=actions.num_rows,
        rows=rows,
        rows_exact=not deletion_vectors,
        latest=latest,
    )


def _add_actions(dt: Any) -> pa.Table:
    import pyarrow as pa

    return pa.table(dt.get_add_actions(flatten=True))


def as_utc(value: Any) -> datetime | None:
    """A datetime in UTC (naive ones are UTC: Spark's and Delta's convention); None for anything else."""
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- choosing and reading data files


@dataclass(frozen=True)
class FileStats:
    """One data file of a table's latest version and the min/max statistics of the columns asked for."""

    path: str  # absolute local path
    low: dict[str, Any]
    high: dict[str, Any]


def file_stats(path: str, columns: tuple[str, ...]) -> list[FileStats] | None:
    """The latest version's data files with ``columns``' min and max (None in a value: not recorded); None
    when ``path`` holds no Delta table."""
    if not is_delta_table(path):
        return None
    from deltalake import DeltaTable

    actions = _add_actions(DeltaTable(path))
    names = set(actions.column_names)

    def values(kind: str, column: str) -> list[Any]:
        name = f"{kind}.{column}"
        return actions.column(name).to_pylist() if name in names else [None] * actions.num_rows

    lows = {c: values("min", c) for c in columns}
    highs = {c: values("max", c) for c in columns}
    return [
        FileStats(
            path=_local(path, p),
            low={c: lows[c][i] for c in columns},
            high={c: highs[c][i] for c in columns},
        )
        for i, p in enumerate(actions.column("path").to_pylist())
    ]


def _local(table_path: str, file_path: str) -> str:
    """An add action's path (relative and URL-encoded, or an absolute URI) as a local path."""
    if "://" in file_path:
        return unquote(file_path.split("://", 1)[1]) if file_path.startswith("file://") else file_path
    return str(Path(table_path) / unquote(file_path))


def may_contain(stats: FileStats, column: str, value: str) -> bool:
    """Whether the file may hold ``value`` in string column ``column``, given its min/max statistics.

    Delta truncates long string statistics (Spark keeps a 32-character prefix, and marks a truncated max),
    so only what holds under either form is trusted: ``min <= value`` and ``value``'s prefix ``<= max``.
    Missing statistics: it may."""
    low, high = stats.low.get(column), stats.high.get(column)
    if low is not None and str(low) > value:
        return False
    return not (high is not None and value[: len(str(high))] > str(high))


def newest(stats: FileStats, column: str) -> datetime:
    """The file's largest value of time column ``column``; the earliest time when not recorded (read last)."""
    return as_utc(stats.high.get(column)) or datetime.min.replace(tzinfo=UTC)


_CACHE: OrderedDict[str, pa.Table] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_FILES = 2048  # data files kept in memory (a validation commit is one or two files of ~40 rows)


def read_files(paths: list[str]) -> list[pa.Table]:
    """The files' rows (whole files, cached by path: Delta never rewrites a data file in place)."""
    import pyarrow.parquet as pq

    out = []
    for path in paths:
        with _CACHE_LOCK:
            cached = _CACHE.get(path)
            if cached is not None:
                _CACHE.move_to_end(path)
        if cached is None:
            cached = pq.read_table(path)
            with _CACHE_LOCK:
                _CACHE[path] = cached
                while len(_CACHE) > CACHE_FILES:
                    _CACHE.popitem(last=False)
        out.append(cached)
    return out
