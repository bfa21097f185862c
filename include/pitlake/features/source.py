"""What every feature build shares: its result record, and the check that its source was ingested far enough."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from pitlake.core import delta_io
from pitlake.core.errors import InputError
from pitlake.sources.schemas import SPARSE_SOURCES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    view: str
    version: int
    table: str
    start: str
    end: str
    dates_built: list[str]
    rows_by_date: dict[str, int]
    delta_version: int
    rollup_version: int | None
    source_table: str
    source_version: int
    computed_at: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_source_covers(spark: SparkSession, path: str, table: str, end: date, job: str) -> int:
    """The source's latest version, after checking it was ingested up to ``end`` (a source in
    :data:`~pitlake.sources.schemas.SPARSE_SOURCES`, which may change nothing for days, only that it has rows)."""
    from pyspark.sql import functions as F

    if not delta_io.table_exists(spark, path):
        raise InputError(f"{table} does not exist yet at {path}: run {job} for the first days before building features")
    version = delta_io.latest_version(spark, path)
    latest = delta_io.read(spark, path, version).agg(F.max("ingest_date")).first()[0]  # type: ignore[index]
    if latest is not None and table in SPARSE_SOURCES:
        if latest < end:
            log.info("%s: no change ingested after %s; its versions as of then stand", table, latest)
        return version
    if latest is None or latest < end:
        raise InputError(
            f"{table} has no data for {end.isoformat()} (latest ingested day: {latest}): "
            f"run `{job} --date {end.isoformat()}` first"
        )
    return version
