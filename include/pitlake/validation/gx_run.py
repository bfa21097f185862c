"""Running a suite with Great Expectations: the GX context, the in-process (pandas) and Spark
routes, the one merged result per run, its Data Docs page and the index.

:func:`pitlake.validation.validate_table` decides the route and calls :func:`run_gx`.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pitlake.settings import Settings

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from pyspark.sql import DataFrame

    from pitlake.validation import SuitePlan

DOCS_SITE = "pitlake"
# Checks that read the schema, not rows: on a local slice they run on the Spark DataFrame.
SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_column_to_exist",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
    }
)
# Every run's own Data Docs page is written at once. The index lists every stored result, so its
# cost grows with history (1.2 s at 20 results, 30 s at 20,000 here): a gate rebuilds it when its
# run failed (someone is about to look) or when the last rebuild is older than this;
# ``python -m pitlake docs`` rebuilds it on demand.
DOCS_INDEX_EVERY_S = 300.0

_CONTEXTS: dict[str, Any] = {}


def _context(settings: Settings) -> Any:
    """An ephemeral GX context, one per process and ``gx_dir``: suites in memory, results and Data Docs on disk."""
    key = str(settings.gx_dir)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = _new_context(settings)
    return _CONTEXTS[key]


def _new_context(settings: Settings) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig

    root = settings.gx_dir
    in_memory = {"class_name": "InMemoryStoreBackend"}

    def on_disk(folder: str) -> dict[str, str]:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(root / folder)}

    config = DataContextConfig(
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        stores={
            "expectations_store": {"class_name": "ExpectationsStore", "store_backend": in_memory},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": in_memory},
            "validation_definition_store": {"class_name": "ValidationDefinitionStore", "store_backend": in_memory},
            # On disk, so the Data Docs index lists every run, not only this process's.
            "validation_results_store": {
                "class_name": "ValidationResultsStore",
                "store_backend": on_disk("validations"),
            },
        },
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": on_disk("data_docs"),
                # The index reads every listed result file: keep it to the latest runs (older pages stay).
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "validation_results_limit": 500},
            }
        },
        analytics_enabled=False,
        progress_bars={"globally": False},  # type: ignore[arg-type]
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def scalar_columns(df: DataFrame) -> bool:
    """Every column a scalar (the pandas engine compares values; arrays and maps it cannot hash)."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    return not any(isinstance(f.dataType, ArrayType | MapType | StructType) for f in df.schema.fields)


def fetch(df: DataFrame, limit: int | None) -> Any:
    """The slice as a pandas DataFrame, or None when it has more than ``limit`` rows.

    One Spark job, through Arrow (timestamps come back naive UTC, as Spark holds them).
    """
    frame = (df if limit is None else df.limit(limit + 1)).toPandas()
    return None if limit is not None and len(frame) > limit else frame


def _batch_definition(context: Any, engine: str, asset: str) -> Any:
    """The whole-dataframe batch definition of ``asset`` on the ``pitlake_<engine>`` data source (made once)."""
    name = f"pitlake_{engine}"
    try:
        source = context.data_sources.get(name)
    except (KeyError, ValueError, LookupError):
        # persist=False: GX would otherwise cache a Spark slice itself; we decide (see CACHE_MAX_ROWS).
        source = (
            context.data_sources.add_spark(name=name, persist=False)
            if engine == "spark"
            else (context.data_sources.add_pandas(name=name))
        )
    try:
        data_asset = source.get_asset(asset)
    except LookupError:
        data_asset = source.add_dataframe_asset(name=asset)
    try:
        return data_asset.get_batch_definition("slice")
    except (KeyError, ValueError, LookupError):
        return data_asset.add_batch_definition_whole_dataframe("slice")


def run_gx(
    settings: Settings,
    plan: SuitePlan,
    batch: DataFrame,
    frame: Any,
    run_id: str,
    validated_at: datetime,
    *,
    samples: int,
) -> tuple[ExpectationSuiteValidationResult, str | None, str | None]:
    """Run the suite (on ``frame`` with GX's pandas engine when given, else on ``batch``) as one GX result.

    The result is stored with the other runs' results and gets its Data Docs page; the index is
    rebuilt when the run failed or the last rebuild is older than :data:`DOCS_INDEX_EVERY_S`.
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.validator.v1_validator import Validator
    from great_expectations.validator.validator import calc_validation_statistics

    context = _context(settings)
    for expectation in plan.expectations:
        if expectation.id is None:
            expectation.id = str(uuid.uuid4())  # ties each result to its place in the suite
    if frame is None:
        parts = [("spark", list(plan.expectations), batch)]
    else:
        parts = [
            ("spark", [e for e in plan.expectations if e.expectation_type in SCHEMA_EXPECTATIONS], batch),
            ("pandas", [e for e in plan.expectations if e.expectation_type not in SCHEMA_EXPECTATIONS], frame),
        ]
    result_format = {"result_format": "BASIC", "partial_unexpected_count": samples}
    results: list[Any] = []
    meta: dict[str, Any] = {}
    batch_id = None
    for engine, expectations, data in parts:
        if not expectations:
            continue
        validator = Validator(
            batch_definition=_batch_definition(context, engine, plan.name),
            batch_parameters={"dataframe": data},
            result_format=result_format,
        )
        # Configurations, not the Expectation objects: these keep their ids and belong to no suite.
        suite = gx.ExpectationSuite(name=plan.name, expectations=[e.configuration for e in expectations])
        part = validator.validate_expectation_suite(suite)
        results += part.results
        meta = meta or dict(part.meta)
        batch_id = batch_id or part.batch_id
    statistics = calc_validation_statistics(results)
    run = RunIdentifier(run_name=re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id), run_time=validated_at)
    meta |= {"run_id": run, "validation_time": validated_at, "batch_parameters": {"dataframe": "<slice>"}}
    if frame is not None:
        meta["pitlake_engine"] = "pandas (schema and type checks on the Spark schema)"
    result = ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=plan.name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta=meta,
        batch_id=batch_id,
    )
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=plan.name),
        run_id=run,
        batch_identifier=batch_id or plan.name,
    )
    context.validation_results_store.set(identifier, result)
    stamp = settings.gx_dir / "data_docs" / ".index_built"
    build_index = not result.success or not stamp.exists() or time.time() - stamp.stat().st_mtime >= DOCS_INDEX_EVERY_S
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[identifier], build_index=build_index)
    if build_index:
        stamp.touch()
    page = _site_path(context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE))
    index = _site_path(context.get_docs_sites_urls(site_name=DOCS_SITE))
    return result, page, index


def build_docs_index(settings: Settings) -> str | None:
    """Rebuild the Data Docs index and every stored result's page (see :data:`DOCS_INDEX_EVERY_S`)."""
    context = _context(settings)
    site = context._init_site_builder_for_data_docs_site_creation(  # the index alone, not every page
        site_name=DOCS_SITE, site_config=context.variables.data_docs_sites[DOCS_SITE]
    )
    site.site_index_builder.build(build_index=True)
    (settings.gx_dir / "data_docs").mkdir(parents=True, exist_ok=True)
    (settings.gx_dir / "data_docs" / ".index_built").touch()
    return _site_path(context.get_docs_sites_urls(site_name=DOCS_SITE))


def _site_path(urls: list[dict[str, str | None]]) -> str | None:
    url = urls[0].get("site_url") if urls else None
    return unquote(urlparse(url).path) if url else None
