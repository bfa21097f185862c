"""The OpenLineage identity of the running Airflow task, handed to the job it runs.

``apache-airflow-providers-openlineage`` emits each task's own START/COMPLETE events with a run id
derived from the task instance; :func:`parent_args` gives that run (and the DAG run, the root) in
the ``NAMESPACE/JOB/RUN_ID`` form the provider's macros use, so the job's run is its child.
With the provider disabled (``OPENLINEAGE_DISABLED``) or absent, no parent is passed.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def parent_ids(ti: Any) -> tuple[str | None, str | None]:
    """``(task run, DAG run)`` of task instance ``ti`` as the provider names them; ``(None, None)`` without it."""
    try:
        from airflow.providers.openlineage.plugins.macros import lineage_parent_id, lineage_root_parent_id

        return lineage_parent_id(ti), lineage_root_parent_id(ti)
    except Exception as err:  # lineage never stops a task
        log.warning("no OpenLineage parent for %s: %s", getattr(ti, "task_id", ti), err)
        return None, None


def parent_args(ti: Any) -> list[str]:
    """``--lineage-parent``/``--lineage-root`` arguments of a ``jobs/<stage>.py`` run by ``ti``."""
    parent, root = parent_ids(ti)
    if parent is None:
        return []
    return ["--lineage-parent", parent, *(["--lineage-root", root] if root else [])]


def operator_lineage(result: dict[str, Any]) -> Any:
    """The provider's ``OperatorLineage`` of a task from its job's result (the datasets it read and wrote)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    from pitlake.core.openlineage import datasets_of

    inputs, outputs = datasets_of(result.get("lineage") or {})
    return OperatorLineage(inputs=inputs, outputs=outputs)
