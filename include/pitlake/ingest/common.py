"""What both ingestion jobs share: the run summary, the day's landing lines, first-failing-rule reasons."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined_by_reason.items())) or "none"
        late = ", ".join(f"{k}={v}" for k, v in sorted(self.late_event_dates.items())) or "none"
        return (
            f"{self.table} {self.ingest_date}: read {self.rows_read}, accepted {self.accepted}, "
            f"quarantined {self.quarantined} ({reasons}), duplicates dropped {self.duplicates_dropped}, "
            f"late event dates {late}; committed version {self.delta_version}"
        )


def landing_lines(spark: SparkSession, folder: Path, day: date, allow_empty: bool) -> DataFrame:
    """Every non-blank line of the day's ``*.jsonl`` files with its source file and 1-based line number."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        if allow_empty:
            schema = "source_file string, line_number int, line string"
            return spark.createDataFrame([], schema)
        raise InputError(
            f"no landing files for {day} in {folder}: check that the upstream drop arrived "
            f"(or pass --allow-empty to record an empty day)"
        )
    # wholetext keeps each file in one row, so line numbers are exact (files must stay < 1 GiB).
    raw = spark.read.text([str(f) for f in files], wholetext=True).select(
        F.input_file_name().alias("source_file"), "value"
    )
    lines = raw.select("source_file", F.posexplode(F.split("value", "\n")).alias("pos", "line")).select(
        "source_file",
        (F.col("pos") + 1).cast(T.IntegerType()).alias("line_number"),
        F.regexp_replace("line", "\r$", "").alias("line"),
    )
    return lines.where(F.trim("line") != "")


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
