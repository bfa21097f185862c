"""The gate: validate a table at a pinned Delta version for one interval (or one training set).

``validate_table(spark, settings, "bronze.events", version=7, interval_start=d, interval_end=d)``:

1. reads the table at the pinned ``version`` and takes the slice being validated (the interval's
   ``event_date`` / ``ingest_date`` / ``feature_date`` / ``label_date``, or one ``training_set_id``);
2. the table's suite module (``pitlake.validation.suites.<suite>``) computes what needs history in
   one Spark aggregation over the same version (the previous days' row counts, a reference window's
   daily means) and turns everything into GX expectations with computed bounds, each carrying GX's
   own ``severity`` (``critical`` stops the run, ``warning`` is recorded) and ``meta["check"]``;
3. a slice of up to :data:`LOCAL_MAX_ROWS` rows (every day of the demo, a training set) is fetched
   once (one Spark job, Arrow) and validated by GX's pandas engine in this process; the schema and
   type checks still run on the Spark DataFrame's schema (they read no rows), so the Spark types
   are what is checked. A bigger slice is validated by GX's Spark engine, cached once up to
   :data:`CACHE_MAX_ROWS` rows (beyond, re-reading column by column is cheaper). Either way one
   result per run, stored with its Data Docs page under ``$PITLAKE_HOME/gx`` by an ephemeral GX
   context made once per process;
4. results are persisted: a JSON file per run (``gx/results/<suite>/<result_id>.json``), one row per
   expectation appended to the Delta table ``ops.validation_results`` (one commit), and the Data
   Docs page (``gx/data_docs/``);
5. any failed ``critical`` expectation raises :class:`~pitlake.validation.records.ValidationFailed`
   (after persisting) with a one-line message naming the suite, expectation, column and how many
   rows were unexpected.

:func:`gate` is what the jobs call after a write: the same, plus the printed summary and a short record.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pitlake.core import delta_io
from pitlake.core.dates import utc_now
from pitlake.core.errors import ConfigError, InputError
from pitlake.core.settings import Settings
from pitlake.validation import gx_run, results
from pitlake.validation.records import CRITICAL, SuitePlan, Target, ValidationFailed, ValidationReport

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Slices up to this many rows are validated in this process by GX's pandas engine: one Spark job
# fetches them, where GX's Spark engine runs one job per metric bundle (docs/benchmarks.md,
# "Validation gate").
LOCAL_MAX_ROWS = 250_000
# Slices up to this many rows are cached once and validated from memory. Larger ones are not: GX's
# Spark jobs each read only the columns they need from Delta, which costs less than caching every
# column of a large slice (docs/benchmarks.md, "Validation gate").
CACHE_MAX_ROWS = 2_000_000
# Sample unexpected values per map expectation, on cached slices only: GX fetches them with one
# extra Spark job per expectation (for compound uniqueness, a second shuffle).
PARTIAL_UNEXPECTED = 5

# The suite module (in pitlake.validation.suites) of each table, or of each table of a layer.
SUITES = {
    "bronze.events": "bronze_events",
    "bronze.customers": "bronze_customers",
    "bronze.products": "bronze_products",
    "features": "features",
    "labels": "labels",
    "training_sets": "training_sets",
}


def validate_table(
    spark: SparkSession,
    settings: Settings,
    table: str,
    *,
    version: int,
    interval_start: date | None = None,
    interval_end: date | None = None,
    training_set_id: str | None = None,
    run_id: str = "manual",
    cache: bool | None = None,
    local: bool | None = None,
) -> ValidationReport:
    """Validate ``table`` at ``version`` for one interval (or one training set); raise if a critical check fails.

    ``local``: fetch the slice and validate it with GX's pandas engine (default: when it has at
    most :data:`LOCAL_MAX_ROWS` rows and only scalar columns). ``cache``: on the Spark engine,
    cache the slice once (default: when it has at most :data:`CACHE_MAX_ROWS` rows).
    """
    module = suite_module(table)
    path = settings.table_path(table)
    if interval_start is not None and interval_end is not None and interval_end < interval_start:
        raise ConfigError(f"interval_end {interval_end} is before interval_start {interval_start}: swap them")
    if not delta_io.table_exists(spark, path):
        raise InputError(f"{table} does not exist at {path}: nothing to validate")
    target = Target(table, path, version, interval_start, interval_end, training_set_id)
    table_df = delta_io.read(spark, path, version)
    plan: SuitePlan = module.plan(spark, target, table_df)

    result_id = str(uuid.uuid4())
    validated_at = utc_now()
    frame = None
    if local is not False and gx_run.scalar_columns(plan.batch):
        # One Spark job: a slice within the bound comes back whole; a bigger one goes to the Spark engine.
        frame = gx_run.fetch(plan.batch, None if local else LOCAL_MAX_ROWS)
    cached = False
    if frame is not None:
        rows = len(frame)
    else:
        rows = plan.batch.count()  # partition-pruned; decides whether caching the slice pays
        cached = rows <= CACHE_MAX_ROWS if cache is None else cache
        if not cached:
            plan.notes.append(f"slice of {rows:,} rows validated without caching (> {CACHE_MAX_ROWS:,})")
    batch = plan.batch.cache() if cached else plan.batch
    try:
        gx_result, docs_path, docs_index = gx_run.run_gx(
            settings,
            plan,
            batch,
            frame,
            run_id,
            validated_at,
            samples=PARTIAL_UNEXPECTED if cached or frame is not None else 0,
        )
    finally:
        if cached:
            batch.unpersist()

    json_path = settings.gx_dir / "results" / plan.name / f"{result_id}.json"
    outcomes = results.outcomes(plan, gx_result)
    report = ValidationReport(
        result_id=result_id,
        suite=plan.name,
        table=table,
        delta_version=version,
        interval=(target.start.isoformat(), target.end.isoformat()) if interval_start and interval_end else None,
        training_set_id=training_set_id,
        run_id=run_id,
        validated_at=validated_at.isoformat(),
        rows=rows,
        success=not any(not o.success and o.severity == CRITICAL for o in outcomes),
        results=tuple(outcomes),
        notes=tuple(plan.notes),
        json_path=str(json_path),
        docs_path=docs_path,
        docs_index=docs_index,
    )
    results.write_json(json_path, report, gx_result)
    results.append_rows(spark, settings, report, target)
    log.info("%s", report.summary())
    if not report.success:
        raise ValidationFailed(report.failure_message(), report)
    return report


def suite_module(table: str) -> ModuleType:
    """The suite module for a logical table name (raises ConfigError naming the known layers)."""
    layer, _, name = table.partition(".")
    module_name = SUITES.get(table) or (SUITES.get(layer) if name else None)
    if module_name is None:
        raise ConfigError(
            f"no validation suite for {table!r}: suites exist for bronze.events, bronze.customers, "
            "features.<view>, labels.<use_case> and training_sets.<use_case>"
        )
    return importlib.import_module(f"pitlake.validation.suites.{module_name}")


def gate(
    spark: SparkSession,
    settings: Settings,
    table: str,
    *,
    version: int,
    run_id: str,
    interval_start: date | None = None,
    interval_end: date | None = None,
    training_set_id: str | None = None,
) -> dict[str, Any]:
    """The stage gate the jobs call after a write: validate, print the summary, return a short record.

    A failed critical expectation raises :class:`~pitlake.validation.records.ValidationFailed` (after
    the summary is printed by :func:`pitlake.core.job.run`), so the job exits non-zero and nothing
    downstream runs.
    """
    import time

    started = time.monotonic()
    report = validate_table(
        spark,
        settings,
        table,
        version=version,
        interval_start=interval_start,
        interval_end=interval_end,
        training_set_id=training_set_id,
        run_id=run_id,
    )
    print(report.summary(), flush=True)
    return {
        "result_id": report.result_id,
        "suite": report.suite,
        "table": table,
        "delta_version": version,
        "success": report.success,
        "json_path": report.json_path,
        "data_docs": report.docs_path or report.docs_index,
        "seconds": round(time.monotonic() - started, 3),
    }
