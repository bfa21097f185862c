"""
### monitor_model

Daily, on the serving model: the run for the data interval `[D 00:00, D+1 00:00)` checks the
`champion` of the use case on day D, without Spark (delta-rs reads, pandas, scikit-learn, MLflow).

1. `evaluate_model`: the champion's predictions logged by the serving app in `monitoring.predictions`,
   once their 7-day label horizon is observed in `bronze.events` (matured), give the realized ROC AUC
   over the `eval_days` latest fully matured days, compared with the floor the promotion gate used;
   the feature vectors served on D give each feature's PSI against the champion's training set
   (breach above `psi_threshold`). The HTML report lands in
   `$PITLAKE_HOME/monitoring/reports/<use_case>/D.html` and in the champion's MLflow run
   (`monitoring/`, tags `monitoring.*`). Too few matured predictions (or one class) is reported, not a breach.
2. `breached`: stops here (the rest skipped) when the model is healthy.
3. `trigger_train_model`: on a breach, triggers `train_model` (one run per monitoring run; its conf
   carries the reason) to train a challenger on fresh data; its gate decides whether it replaces the champion.
4. `fail_on_breach`: then fails this run with the one-line breach, so it shows red in the grid.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from pitlake.airflow.callbacks import default_args


@dag(
    dag_id="monitor_model",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pitlake", "monitoring"],
    params={
        "use_case": Param("purchase_propensity", type="string", enum=["purchase_propensity"]),
        "eval_days": Param(7, type="integer", minimum=1, description="days of matured predictions to evaluate"),
        "psi_threshold": Param(0.2, type="number", exclusiveMinimum=0, description="PSI above this is drift"),
    },
    default_args=default_args(retries=1, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(minutes=10)),
)
def monitor_model() -> None:
    @task
    def evaluate_model(params: dict | None = None, data_interval_start: datetime | None = None) -> dict:
        from pitlake.core import settings
        from pitlake.monitoring.monitor import monitor

        assert params is not None and data_interval_start is not None
        result = monitor(
            settings.load(),
            str(params["use_case"]),
            data_interval_start.date(),
            eval_days=int(params["eval_days"]),
            psi_threshold=float(params["psi_threshold"]),
        )
        print(result.message)
        return result.to_dict()

    @task.short_circuit
    def breached(ti=None) -> bool:
        assert ti is not None
        return bool(ti.xcom_pull(task_ids="evaluate_model")["breached"])

    trigger = TriggerDagRunOperator(
        task_id="trigger_train_model",
        trigger_dag_id="train_model",
        trigger_run_id="monitor_model__{{ run_id }}",
        logical_date="{{ data_interval_end }}",
        conf={
            "use_case": "{{ params.use_case }}",
            "reason": "{{ ti.xcom_pull(task_ids='evaluate_model')['message'] }}",
        },
        wait_for_completion=False,
        skip_when_already_exists=True,  # a cleared or retried run does not request a second retraining
    )

    # none_failed: also when the trigger was skipped because this run already requested the retraining.
    @task(retries=0, trigger_rule="none_failed")
    def fail_on_breach(ti=None) -> None:
        from pitlake.monitoring.monitor import MonitoringBreach

        assert ti is not None
        raise MonitoringBreach(str(ti.xcom_pull(task_ids="evaluate_model")["message"]))

    evaluate_model() >> breached() >> trigger >> fail_on_breach()


monitor_model()
