"""What both ingestion jobs share: the run summary, the day's landing records and their independent
count, the conservation check, first-failing-rule reasons."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core import delta_io
from pitlake.core.errors import InputError, PitlakeError
from pitlake.ingest.records import RECORD_SCHEMA, count_records, record_batches

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from pitlake.core.settings import Settings

log = logging.getLogger(__name__)


class LostRecordsError(PitlakeError):
    """The committed rows do not add up to the records in landing: never retried, always reported."""


@dataclass(frozen=True)
class IngestSummary:
    """What one ingestion run did; ``rows_read == accepted + quarantined + duplicates_dropped``."""

    table: str
    ingest_date: str
    rows_read: int
    accepted: int
    quarantined: int
    duplicates_dropped: int
    quarantined_by_reason: dict[str, int]
    delta_version: int
    quarantine_version: int
    late_event_dates: dict[str, int] = field(default_factory=dict)
    records_in_landing: int = 0  # counted on the driver from the files' bytes, not by Spark
    files: list[str] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)  # how the records arrived, e.g. an API pull's report

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined_by_reason.items())) or "none"
        late = ", ".join(f"{k}={v}" for k, v in sorted(self.late_event_dates.items())) or "none"
        empty = f" (and {len(self.empty_files)} empty)" if self.empty_files else ""
        pulled = ""
        if self.source:
            retries = ", ".join(f"{k}={v}" for k, v in sorted(self.source.get("retries", {}).items())) or "none"
            pulled = (
                f"pulled {self.source.get('records')} records in {self.source.get('pages')} pages "
                f"({self.source.get('requests')} requests, retries: {retries}, repeated items dropped "
                f"{self.source.get('repeated_items')}); "
            )
        return pulled + (
            f"{self.table} {self.ingest_date}: {self.records_in_landing} records in {len(self.files)} files{empty}, "
            f"read {self.rows_read}, accepted {self.accepted}, "
            f"quarantined {self.quarantined} ({reasons}), duplicates dropped {self.duplicates_dropped}, "
            f"late event dates {late}; committed version {self.delta_version}"
        )


@dataclass(frozen=True)
class Landing:
    """A landing day's folder as the driver sees it, before Spark reads anything."""

    folder: Path
    files: list[Path]  # the *.jsonl files Spark reads
    empty_files: list[str]  # zero-byte files of any name (a _SUCCESS marker): read, no records
    records: int  # records in the files' bytes, counted here (pitlake.ingest.records), not by Spark


def scan_landing(folder: Path, day: date, field_types: Mapping[str, str], *, allow_empty: bool) -> Landing:
    """List the day's folder and count its records on the driver; refuse files the job would not read.

    A file Spark would skip (a name starting with ``_`` or ``.``) or that is not ``*.jsonl`` is never
    left out in silence: unless it is empty, the day is refused with its name.
    """
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    files, empty, refused = [], [], []
    for path in entries:
        if path.is_dir():
            refused.append(f"{path.name}/")
        elif path.stat().st_size == 0:
            empty.append(path.name)
        elif path.name.startswith(("_", ".")) or path.suffix != ".jsonl":
            refused.append(path.name)
        else:
            files.append(path)
    if refused:
        raise InputError(
            f"{folder} holds what the job would not read: {', '.join(refused)}; rename data files to "
            f"<name>.jsonl (no leading '_' or '.') or move anything else out of the folder, then rerun"
        )
    records = sum(count_records(path.read_bytes(), field_types) for path in files)
    if records == 0 and not allow_empty:
        what = f"only empty files ({', '.join(empty)})" if empty else "no landing files"
        raise InputError(
            f"{what} for {day} in {folder}: check that the upstream drop arrived "
            f"(or pass --allow-empty to record an empty day)"
        )
    return Landing(folder, files, empty, records)


def landing_records(spark: SparkSession, landing: Landing, field_types: Mapping[str, str]) -> DataFrame:
    """Every record of the day's files (:data:`pitlake.ingest.records.RECORD_SCHEMA`), read by Spark's
    ``binaryFile`` source and split in its Python workers by the rules the driver counted with."""
    from pyspark.sql import functions as F

    if not landing.files:
        return spark.createDataFrame([], RECORD_SCHEMA)
    types = dict(field_types)
    raw = spark.read.format("binaryFile").load([str(f) for f in landing.files]).select("path", "content")
    records = raw.mapInArrow(lambda batches: record_batches(batches, types), RECORD_SCHEMA)
    # binaryFile names a file file:/a/b, the text source (and earlier quarantine rows) file:///a/b.
    return records.withColumn("source_file", F.regexp_replace("source_file", "^file:/(?!/)", "file:///"))


def parsed_landing(
    spark: SparkSession,
    settings: Settings,
    source: str,
    table: str,
    day: date,
    field_types: Mapping[str, str],
    *,
    allow_empty: bool,
    replace_with_empty: bool,
) -> tuple[Landing, DataFrame]:
    """The day's landing (counted on the driver) and its records parsed by Spark into the fields'
    types plus ``_corrupt_record``, after refusing an empty day that would erase ``table``'s rows."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark_types = {"string": T.StringType(), "number": T.DoubleType(), "boolean": T.BooleanType()}
    schema = T.StructType(
        [T.StructField(name, spark_types[kind]) for name, kind in field_types.items()]
        + [T.StructField("_corrupt_record", T.StringType())]
    )
    landing = scan_landing(
        settings.landing / source / f"date={day.isoformat()}", day, field_types, allow_empty=allow_empty
    )
    refuse_erasing(spark, settings.table_path(table), day, landing, replace_with_empty=replace_with_empty)
    parsed = landing_records(spark, landing, field_types).withColumn(
        "p", F.from_json("line", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    )
    return landing, parsed.select("source_file", "line_number", "record_in_line", "line", "defect", "p.*")


def refuse_erasing(spark: SparkSession, path: str, day: date, landing: Landing, *, replace_with_empty: bool) -> None:
    """An empty day must not erase rows already ingested for it unless the operator says so."""
    from pyspark.sql import functions as F

    if landing.records or replace_with_empty or not delta_io.table_exists(spark, path):
        return
    held = delta_io.read(spark, path).where(F.col("ingest_date") == F.lit(day)).limit(1).count()
    if held:
        raise InputError(
            f"{landing.folder} has no records but {path} holds rows ingested for {day}: restore the day's "
            f"files, or pass --replace-with-empty to erase that day's rows on purpose"
        )


def commit_quarantine(
    spark: SparkSession,
    settings: Settings,
    tables: tuple[str, str],
    day: date,
    landing: Landing,
    rejected: DataFrame,
    key: str,
    bronze: delta_io.Commit,
    duplicates: int,
) -> int:
    """Replace the day's rows of the quarantine table (``tables`` = bronze, quarantine) with the
    ``rejected`` records, then check the day's conservation; returns the quarantine's version.

    The committed rows are what Delta recorded writing for the day (the commits' operation metrics),
    or, where a commit has no such metric (the SCD2 MERGE), a count of the day's rows at its version.
    """
    from pyspark.sql import functions as F

    bronze_table, quarantine = tables
    rows = rejected.select(
        F.lit(day).alias("ingest_date"), "source_file", "line_number", "reason", key, F.col("line").alias("raw_line")
    )
    q_path = settings.table_path(quarantine)
    q = delta_io.replace_where_commit(rows, q_path, f"ingest_date = '{day.isoformat()}'", ["ingest_date"])
    committed = {
        name: commit.rows if commit.rows is not None else day_rows(spark, path, commit.version, day)
        for name, path, commit in ((bronze_table, settings.table_path(bronze_table), bronze), (quarantine, q_path, q))
    }
    check_conservation(bronze_table, day, landing, committed, duplicates)
    return q.version


def day_rows(spark: SparkSession, path: str, version: int, day: date) -> int:
    from pyspark.sql import functions as F

    return delta_io.read(spark, path, version).where(F.col("ingest_date") == F.lit(day)).count()


def check_conservation(table: str, day: date, landing: Landing, committed: dict[str, int], duplicates: int) -> None:
    """``records in landing == rows committed for the day + duplicates dropped``; raises
    :class:`LostRecordsError` naming both sides otherwise."""
    if sum(committed.values()) + duplicates != landing.records:
        parts = ", ".join(f"{n} {c}" for n, c in committed.items())
        raise LostRecordsError(
            f"{table} {day}: {landing.records} records in {landing.folder} but {parts} and "
            f"{duplicates} duplicates dropped: records were lost or doubled; report this as a bug"
        )


def first_reason(checks: list[tuple[str, Column]]) -> Column:
    from pyspark.sql import functions as F

    expr = None
    for reason, failed in checks:
        expr = F.when(failed, F.lit(reason)) if expr is None else expr.when(failed, F.lit(reason))
    assert expr is not None
    return expr.otherwise(F.lit(None).cast("string"))


def counts(classified: DataFrame) -> tuple[int, dict[str, int], int]:
    """One pass: (accepted, quarantined by reason, duplicates dropped)."""
    from pyspark.sql import functions as F

    rows = classified.groupBy(F.coalesce("reason", F.lit("")).alias("r"), "is_duplicate").count().collect()
    accepted = sum(r["count"] for r in rows if r["r"] == "" and not r["is_duplicate"])
    duplicates = sum(r["count"] for r in rows if r["r"] == "" and r["is_duplicate"])
    by_reason = {r["r"]: r["count"] for r in rows if r["r"] != ""}
    return accepted, by_reason, duplicates
