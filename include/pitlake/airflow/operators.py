"""``PitlakeSparkSubmitOperator``: submit a ``jobs/<stage>.py`` and publish what it committed.

It is a ``SparkSubmitOperator`` on ``spark_default`` (local mode, or a cluster: only the
connection changes) that also passes the Delta jars, asks the job for a JSON result file, pushes
the result to XCom and attaches the committed Delta version to each outlet Asset event.
"""

from __future__ import annotations

import json
import re
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset

from pitlake.settings import REPO_ROOT
from pitlake.settings import load as load_settings

JOBS_DIR = REPO_ROOT / "jobs"


class PitlakeSparkSubmitOperator(SparkSubmitOperator):
    """Run ``jobs/<stage>.py`` with spark-submit; the result's ``delta_version`` goes to the Asset event."""

    def __init__(self, *, stage: str, application_args: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"pitlake-{stage}")
        super().__init__(application=str(JOBS_DIR / f"{stage}.py"), application_args=application_args, **kwargs)
        self.stage = stage

    def execute(self, context: Any) -> dict[str, Any]:  # type: ignore[override]
        from pitlake.spark import delta_jar_paths, submit_conf

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
        ]
        self.jars = ",".join(delta_jar_paths(settings))
        self.conf = {**submit_conf(settings), **(self.conf or {})}
        try:
            super().execute(context)
        except Exception:
            failure = json.loads(result_file.read_text()) if result_file.exists() else {}
            if "error" in failure:
                from airflow.exceptions import AirflowFailException

                # Bad input or a failed validation gate: retrying cannot help, so fail now.
                raise AirflowFailException(f"{self.stage}: {failure['error']}") from None
            raise
        if not result_file.exists():
            raise RuntimeError(f"{self.stage} finished but wrote no result file at {result_file}")
        result: dict[str, Any] = json.loads(result_file.read_text())
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
