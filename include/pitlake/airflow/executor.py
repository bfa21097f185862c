"""``WarmLocalExecutor``: Airflow's LocalExecutor whose workers start with the task-time imports done.

Airflow 3's LocalExecutor forks its worker processes when it starts, and each worker forks one
process per task. A pitlake task on the warm engine would otherwise spend much of its fixed cost
importing Python (Great Expectations with scipy and altair, pandas, Spark Connect's client) in every
task (docs/benchmarks.md has the figures). This executor imports them once in the scheduler before
the workers fork, so every task inherits them.

Only imports: no Spark session, gRPC channel or thread is created before the fork.
``AIRFLOW__CORE__EXECUTOR=pitlake.airflow.executor.WarmLocalExecutor`` (the local default, set by
:func:`pitlake.airflow.local.airflow_env`); the plain ``LocalExecutor`` runs the same DAGs.
"""

from __future__ import annotations

import importlib
import logging
import time

from airflow.executors.local_executor import LocalExecutor

log = logging.getLogger(__name__)

# What a pitlake task imports on its way to a gate, heaviest first.
WARM_MODULES = (
    "great_expectations",
    "great_expectations.expectations",
    "great_expectations.validator.v1_validator",
    "great_expectations.render.renderer.site_builder",
    "pandas",
    "pyarrow",
    "pyspark.sql.connect.session",
    "openlineage.client",  # every job emits its OpenLineage events (the provider's listener imports it too)
    "pitlake.validation",
    "pitlake.ingest",
    "pitlake.features",
)


def warm_imports(modules: tuple[str, ...] = WARM_MODULES) -> dict[str, float]:
    """Import ``modules``; seconds per module (a module that fails to import is logged and skipped)."""
    seconds = {}
    for name in modules:
        started = time.monotonic()
        try:
            importlib.import_module(name)
        except Exception as err:  # a missing optional module must not stop the scheduler
            log.warning("warm import of %s failed: %s", name, err)
            continue
        seconds[name] = round(time.monotonic() - started, 3)
    return seconds


class WarmLocalExecutor(LocalExecutor):
    """LocalExecutor whose forked workers (and so every task) inherit the imports of :data:`WARM_MODULES`."""

    def start(self) -> None:
        if self.is_mp_using_fork:
            seconds = warm_imports()
            log.info("warm imports before forking the workers: %.1f s %s", sum(seconds.values()), seconds)
        super().start()
