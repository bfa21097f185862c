"""
### promote_model

Manual only: move a registry alias of a model to a version, from the Airflow UI ("Trigger DAG w/ config").

- **Promotion**: `alias=champion`, `version=<n>`. The replaced champion is kept as `previous`, and a
  version that was the `challenger` loses that alias. Without `force`, a version the gate flagged
  (suspected leakage, below the quality floor, or never gated) cannot become champion; `force=true`
  overrides this and is recorded as forced.
- **Rollback**: promote the version that holds the `previous` alias back to `champion`
  (`alias=champion`, `version=<the previous version>`, a `reason` such as "v7 regressed on ...").
  The demoted champion becomes `previous` in turn, so a rollback can itself be undone.
- `challenger` / `previous` can also be pointed at a version by hand.

`reason` is required; the registry records who (the user who triggered the run), why, when and
which version was replaced, in the version's `promotion.*` tags and its `promotion.history`.
An unknown version or a refused promotion fails the task with a one-line cause.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task
from pitlake.airflow.callbacks import default_args


@dag(
    dag_id="promote_model",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pitlake", "registry"],
    params={
        "model_name": Param("purchase_propensity", type="string", minLength=1, description="registered model"),
        "version": Param(type="integer", minimum=1, description="the model version the alias should point to"),
        "alias": Param("champion", type="string", enum=["champion", "challenger", "previous"]),
        "force": Param(False, type="boolean", description="allow a version the gate flagged to become champion"),
        "reason": Param(type="string", minLength=1, description="why: recorded on the version (required)"),
    },
    default_args=default_args(retries=2, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=5)),
)
def promote_model() -> None:
    @task
    def promote(params: dict | None = None, dag_run=None) -> dict:
        import json

        from airflow.sdk.exceptions import AirflowFailException
        from pitlake.core import settings
        from pitlake.core.errors import PitlakeError
        from pitlake.registry import promote as registry

        assert params is not None
        reason = str(params.get("reason") or "").strip()
        if not reason:
            raise AirflowFailException("promote_model needs a non-empty reason: it is recorded on the version")
        actor = (getattr(dag_run, "triggering_user_name", None) or "airflow") if dag_run is not None else "airflow"
        try:
            result = registry.promote(
                settings.load(),
                str(params["model_name"]),
                int(params["version"]),
                str(params["alias"]),
                force=bool(params.get("force", False)),
                reason=reason,
                actor=str(actor),
            )
        except PitlakeError as err:
            if getattr(err, "retryable", False):  # the registry lock stayed busy: Airflow retries the task
                raise RuntimeError(str(err)) from None
            raise AirflowFailException(str(err)) from None  # unknown version, refused promotion: final
        print(json.dumps(result, sort_keys=True, default=str))
        return result

    promote()


promote_model()
