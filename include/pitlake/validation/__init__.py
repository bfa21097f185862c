"""Validation gates: Great Expectations (GX Core 1.x) suites run on Spark slices of our Delta tables.

What a gate reads: one table at a pinned Delta version, and the slice just written (the interval's
days, or one training set). What it writes: one row per expectation in ``ops.validation_results``,
the run's GX result as JSON under ``$PITLAKE_HOME/gx/results``, and its Data Docs page.

Its contract: a failing ``critical`` check (GX's error severity) stops the task with
:class:`ValidationFailed`, whose one-line message names the suite (the table's name:
``bronze_events`` for ``bronze.events``), the first failed check (expectation, column, unexpected
rows), how many more failed, and the report's path. A failing ``warning`` check is recorded and passes.

- :mod:`.records`: what a suite gets and returns, what a run reports;
- :mod:`.expectations`: the expectation builders the suites share;
- :mod:`.suites`: one suite module per table or layer;
- :mod:`.runner`: the gate (:func:`validate_table`, :func:`gate`);
- :mod:`.gx_run`, :mod:`.context`: running a suite with GX;
- :mod:`.results`: GX's result flattened, the JSON file and ``ops.validation_results``;
- :mod:`.docs`: the Data Docs pages and index.

Importing this package imports neither GX nor Spark: they are imported on first use.
"""

from pitlake.validation.context import DOCS_SITE
from pitlake.validation.docs import DOCS_INDEX_EVERY_S, build_docs_index
from pitlake.validation.gx_run import SCHEMA_EXPECTATIONS
from pitlake.validation.records import (
    CRITICAL,
    WARNING,
    ExpectationOutcome,
    SuitePlan,
    Target,
    ValidationFailed,
    ValidationReport,
)
from pitlake.validation.results import RESULTS_TABLE
from pitlake.validation.runner import CACHE_MAX_ROWS, gate, suite_module, validate_table

__all__ = [
    "CACHE_MAX_ROWS",
    "CRITICAL",
    "DOCS_INDEX_EVERY_S",
    "DOCS_SITE",
    "RESULTS_TABLE",
    "SCHEMA_EXPECTATIONS",
    "WARNING",
    "ExpectationOutcome",
    "SuitePlan",
    "Target",
    "ValidationFailed",
    "ValidationReport",
    "build_docs_index",
    "gate",
    "suite_module",
    "validate_table",
]
