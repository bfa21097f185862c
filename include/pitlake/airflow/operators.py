"""``PitlakeSparkSubmitOperator``: run a ``jobs/<stage>.py`` and publish what it committed.

The ``spark_default`` connection decides where the job runs, and is the only thing that changes:

- ``conn_type`` ``spark_connect`` (the local default, see :mod:`pitlake.airflow.local`): the job's
  ``main()`` runs in the task's own process against the warm Spark Connect engine at the
  connection's host and port: no JVM starts, the task opens one Connect session and closes it.
- ``conn_type`` ``spark`` (``spark://master:7077``, ``yarn``, ``local[*]``): the job is
  submitted with spark-submit as a ``SparkSubmitOperator``, with the Delta jars.

Either way the job writes a JSON result file, which goes to XCom, and the committed Delta version
is attached to each outlet Asset event.
"""

from __future__ import annotations

import json
import re
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset

from pitlake.airflow.lineage import parent_args
from pitlake.core.settings import REPO_ROOT
from pitlake.core.settings import load as load_settings

JOBS_DIR = REPO_ROOT / "jobs"


class PitlakeSparkSubmitOperator(SparkSubmitOperator):
    """Run ``jobs/<stage>.py`` with spark-submit; the result's ``delta_version`` goes to the Asset event."""

    def __init__(self, *, stage: str, application_args: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"pitlake-{stage}")
        super().__init__(application=str(JOBS_DIR / f"{stage}.py"), application_args=application_args, **kwargs)
        self.stage = stage

    def execute(self, context: Any) -> dict[str, Any]:  # type: ignore[override]
        from pitlake.core.jvm import delta_jar_paths, submit_conf

        settings = load_settings()
        run_key = re.sub(r"[^A-Za-z0-9_.-]", "_", str(context["run_id"]))
        ti = context["ti"]
        result_file = settings.runs_dir / "airflow" / self.dag_id / run_key / f"{self.task_id}.{ti.try_number}.json"
        result_file.unlink(missing_ok=True)
        self.application_args = [
            *(self.application_args or []),
            "--result-file",
            str(result_file),
            "--run-id",
            str(context["run_id"]),
            *parent_args(ti),  # the job's OpenLineage run is a child of this task's
        ]
        remote = self._engine_url()
        try:
            if remote is not None:
                self._run_on_engine(remote, settings)
            else:
                self.jars = ",".join(delta_jar_paths(settings))
                self.conf = {**submit_conf(settings), **(self.conf or {})}
                super().execute(context)
        except Exception:
            failure = json.loads(result_file.read_text()) if result_file.exists() else {}
            if "error" in failure and not failure.get("retryable"):
                from airflow.sdk.exceptions import AirflowFailException

                # Bad input or a failed validation gate: retrying cannot help, so fail now.
                raise AirflowFailException(f"{self.stage}: {failure['error']}") from None
            if "error" in failure:  # the engine went away: the retry runs once it is back
                raise RuntimeError(f"{self.stage}: {failure['error']}") from None
            raise
        if not result_file.exists():
            raise RuntimeError(f"{self.stage} finished but wrote no result file at {result_file}")
        result: dict[str, Any] = json.loads(result_file.read_text())
        self._pitlake_result = result
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = {
                    "delta_version": result.get("delta_version"),
                    "stage": self.stage,
                    "data_interval_start": str(context["data_interval_start"]),
                    "data_interval_end": str(context["data_interval_end"]),
                }
        self.log.info("%s result: %s", self.stage, json.dumps(result, sort_keys=True, default=str))
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The task's datasets for the OpenLineage provider: what its job read and wrote, with Delta versions."""
        from pitlake.airflow.lineage import operator_lineage

        return operator_lineage(getattr(self, "_pitlake_result", None) or {})

    def _engine_url(self) -> str | None:
        """``sc://host:port`` when ``spark_default`` is a Spark Connect connection, else None (spark-submit)."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self._conn_id)
        if conn.conn_type not in ("spark_connect", "spark-connect"):
            return None
        host = (conn.host or "127.0.0.1").removeprefix("sc://").split(":")[0]
        return f"sc://{host}:{conn.port or 15002}"

    def _run_on_engine(self, remote: str, settings: Any) -> None:
        """Run the job's ``main()`` in this process with its Spark session on the engine at ``remote``."""
        import runpy

        from pitlake.core.engine import url
        from pitlake.core.settings import env_override

        module = runpy.run_path(str(JOBS_DIR / f"{self.stage}.py"), run_name=f"pitlake_job_{self.stage}")
        args = [str(a) for a in self.application_args or []]
        self.log.info("running %s on the Spark engine %s: %s", self.stage, remote, " ".join(args))
        # Not this home's own engine: tell the job's get_spark where it is.
        with env_override("PITLAKE_SPARK_REMOTE", None if remote == url(settings) else remote):
            code = module["main"](args)
        if code != 0:
            raise RuntimeError(f"{self.stage} exited with code {code}")
