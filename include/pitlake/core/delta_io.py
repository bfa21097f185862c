"""Delta Lake reads and writes: interval-scoped replaces, pinned-version reads, committed versions.

Everything here works on a classic session and over Spark Connect alike: table metadata and
MERGE go through Delta's SQL (``DESCRIBE HISTORY``, ``MERGE INTO``), not the ``DeltaTable``
Python API, which needs Delta's connect plugin on the engine.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pitlake.core.errors import PitlakeError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pitlake.core.settings import Settings

# Who commits: recorded as every pitlake commit's userMetadata, so a conflict names the other writer.
# core.job.run sets it to "<stage> run <run id>" for the job's process.
WRITER = {"name": "pitlake"}
# Delta's optimistic-concurrency failures: another commit landed on what this one read or wrote.
CONFLICTS = re.compile(
    r"Concurrent(Append|DeleteRead|DeleteDelete|Write|Transaction)Exception|MetadataChangedException|"
    r"ProtocolChangedException|DELTA_CONCURRENT_|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED"
)


class WriteConflict(PitlakeError):
    """Another writer committed to the table while this commit was in flight; the job may be retried."""

    retryable = True

    def __init__(self, path: str, other: str, detail: str, attempts: int = 1) -> None:
        self.path, self.other, self.detail, self.attempts = path, other, detail, attempts
        tries = f" on each of {attempts} attempts (the last shown)" if attempts > 1 else ""
        super().__init__(
            f"{path}: a commit by {other} conflicted with this one{tries} ({detail}); make one job "
            "at a time write this table's interval (an Airflow pool or max_active_runs) and rerun"
        )

    def after(self, attempts: int) -> WriteConflict:
        return WriteConflict(self.path, self.other, self.detail, attempts)


def other_writer(spark: SparkSession, path: str, message: str) -> str:
    """Who made the conflicting commit a Delta conflict message points at: the commit's writer (its
    userMetadata, which every pitlake commit sets, or its engine), operation, version and time."""
    version = re.search(r"committed at version (\d+)", message)
    operation = re.search(r"a concurrent (\w+)", message)
    what = f"a concurrent {operation.group(1) if operation else 'commit'}"
    if not version:
        return what
    try:
        row = (
            spark.sql(f"DESCRIBE HISTORY {ident(path)}")
            .where(f"version = {int(version.group(1))}")
            .select("userMetadata", "engineInfo", "operation", "timestamp")
            .first()
        )
    except Exception:  # the history is only for the message: never hide the conflict behind it
        row = None
    if row is None:
        return f"{what} (version {version.group(1)})"
    who = row["userMetadata"] or row["engineInfo"] or "a writer that records no name (not pitlake)"
    return f"{who} ({row['operation']}, version {version.group(1)} at {row['timestamp']})"


@contextmanager
def committing(spark: SparkSession, path: str) -> Iterator[None]:
    """Turn Delta's concurrency exceptions of the commit in the block into one :class:`WriteConflict`."""
    try:
        yield
    except Exception as err:
        message = str(err)
        kind = CONFLICTS.search(f"{type(err).__name__} {message}")
        if kind is None:
            raise
        raise WriteConflict(str(path), other_writer(spark, path, message), kind.group(0)) from err


def ident(path: str) -> str:
    """The SQL identifier of the Delta table at ``path``: ``delta.`path```."""
    return "delta.`" + str(path).replace("`", "``") + "`"


def table_exists(spark: SparkSession, path: str) -> bool:
    if Path(path, "_delta_log").is_dir():
        return True
    if "://" not in str(path):  # a local path without a _delta_log is no Delta table
        return False
    try:
        spark.sql(f"DESCRIBE DETAIL {ident(path)}").collect()
        return True
    except Exception:
        return False


def latest_version(spark: SparkSession, path: str) -> int:
    row = spark.sql(f"DESCRIBE HISTORY {ident(path)} LIMIT 1").select("version").first()
    return int(row[0])  # type: ignore[index]


def read(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """Read a Delta table, at ``version`` when given (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def replace_where(df: DataFrame, path: str, predicate: str, partition_by: list[str]) -> int:
    """Replace exactly the rows matching ``predicate`` with ``df`` in one Delta commit.

    Every row of ``df`` must satisfy ``predicate`` (Delta checks it). Returns the committed version.
    """
    return replace_where_commit(df, path, predicate, partition_by).version


@dataclass(frozen=True)
class Commit:
    """One commit of this process: its version and the rows it wrote that match its predicate, as
    Delta's own operation metrics record them (``numOutputRows - numCopiedRows``: a file that also held
    other rows, after OPTIMIZE say, is rewritten and its other rows are copied, not new)."""

    version: int
    rows: int | None


def replace_where_commit(
    df: DataFrame, path: str, predicate: str, partition_by: list[str], *, add_columns: bool = False
) -> Commit:
    """:func:`replace_where`, returning the commit's version and the rows Delta recorded writing.

    ``add_columns``: a column of ``df`` the table lacks is added in the same commit (Delta's
    ``mergeSchema``; rows written before read it as null).
    """
    mark = f"{WRITER['name']} write {uuid.uuid4().hex[:12]}"
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if add_columns:
        writer = writer.option("mergeSchema", "true")
    with committing(df.sparkSession, path):
        writer.option("userMetadata", mark).partitionBy(*partition_by).save(path)
    return find_commit(df.sparkSession, path, mark)


def find_commit(spark: SparkSession, path: str, mark: str) -> Commit:
    """The commit whose userMetadata is ``mark`` (not just the latest: another writer's commit may
    already be on top of it)."""
    from pyspark.sql import functions as F

    rows = (
        spark.sql(f"DESCRIBE HISTORY {ident(path)} LIMIT 20")
        .where(F.col("userMetadata") == F.lit(mark))
        .select("version", "operationMetrics")
        .collect()
    )
    if not rows:
        return Commit(latest_version(spark, path), None)
    metrics = rows[0]["operationMetrics"] or {}
    written = int(metrics.get("numOutputRows", 0)) - int(metrics.get("numCopiedRows", 0))
    return Commit(int(rows[0]["version"]), written if "numOutputRows" in metrics else None)


def overwrite(df: DataFrame, path: str) -> None:
    """Write ``df`` as the whole table (its first version), one commit."""
    with committing(df.sparkSession, path):
        df.write.format("delta").mode("overwrite").option("userMetadata", WRITER["name"]).save(path)


def merge(source: DataFrame, path: str, clauses: str, on: str) -> None:
    """``MERGE INTO`` the Delta table at ``path`` (alias ``t``) from ``source`` (alias ``s``), one commit.

    ``clauses`` are the ``WHEN ...`` clauses. The source is a temp view of this session only,
    dropped afterwards, so two tasks merging at once never see each other's source.
    """
    spark = source.sparkSession
    view = f"pitlake_merge_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    key = "spark.databricks.delta.commitInfo.userMetadata"
    spark.conf.set(key, WRITER["name"])  # this session's only: SQL has no per-statement option
    try:
        with committing(spark, path):
            spark.sql(f"MERGE INTO {ident(path)} AS t USING {view} AS s ON {on} {clauses}")
    finally:
        spark.conf.unset(key)
        spark.catalog.dropTempView(view)


def lake_tables(settings: Settings) -> list[tuple[str, Path]]:
    """Every Delta table under the lake as ``(layer.table, path)``, found by its ``_delta_log`` (no JVM)."""
    if not settings.lake.is_dir():
        return []
    return [
        (f"{layer.name}.{table.name}", table)
        for layer in sorted(settings.lake.iterdir())
        if layer.is_dir()
        for table in sorted(layer.iterdir())
        if (table / "_delta_log").is_dir()
    ]
