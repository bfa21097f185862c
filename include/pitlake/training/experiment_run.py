"""Run an experiment config on one training set snapshot: search, compare, log, register and gate its best.

``run_experiment(settings, "hgb_search")``:

1. reads the training set at its pinned Delta version (the newest one unless ``training_set_id`` is
   given) and splits it like ``train`` does: the newest label dates are the holdout, purged;
2. runs each variant's search on expanding-window folds of the *training part* only
   (:func:`pitlake.training.search.run_search`); the best trial by mean fold score is the experiment's
   choice: the holdout never chooses;
3. refits every trial on the whole training part and scores it on the holdout, for the report only;
   the chosen trial gets its decision threshold the way ``train``'s candidates do;
4. checks the quality bar and leakage over every trial (:func:`pitlake.training.quality.assess_quality`);
5. logs one MLflow parent run carrying the chosen trial (the lineage manifest with an
   :class:`~pitlake.lineage.manifest.ExperimentRecord`, plots, the model) with one nested run per
   trial (its params, fold scores and durations), registers the chosen model as ``challenger`` and
   runs the champion gate, then writes the comparison report (:mod:`pitlake.training.report`) to
   ``$PITLAKE_HOME/experiments/`` and to the run's ``report/`` artifacts.
"""

from __future__ import annotations

import hashlib
import io
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pitlake.core.errors import ConfigError
from pitlake.core.settings import REPO_ROOT, Settings
from pitlake.lineage import manifest as lineage
from pitlake.training import dataset, mlflow_log, plots
from pitlake.training import report as reporting
from pitlake.training.candidates import FitOutcome
from pitlake.training.compare import Evaluation, Scored, evaluate
from pitlake.training.experiments import Experiment, load_experiment
from pitlake.training.fit import outcome_of
from pitlake.training.provenance import Provenance, Snapshot
from pitlake.training.quality import assess_quality, best_accuracy
from pitlake.training.train import (
    Logged,
    TrainResult,
    as_training_job,
    load_snapshot,
    log_register_gate,
    passed_validations,
    read_rows,
)
from pitlake.training_set.build import get_use_case
from pitlake.training_set.manifest import latest_manifest

if TYPE_CHECKING:
    from pitlake.core.openlineage import JobRun

log = logging.getLogger(__name__)
REPORT_ARTIFACTS = "report"


def config_sha256(experiment: Experiment) -> str:
    return hashlib.sha256(Path(experiment.path).read_bytes()).hexdigest()


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return Path(path).name


def run_experiment(
    settings: Settings,
    config: str | Path,
    *,
    use_case: str | None = None,
    training_set_id: str | None = None,
    airflow: dict[str, Any] | None = None,
    validation_results: list[dict[str, Any]] | None = None,
    upstream_versions: dict[str, Any] | None = None,
    lineage_parent: str | None = None,
    lineage_root: str | None = None,
    training_set_run_id: str | None = None,
    lineage_run: JobRun | None = None,
) -> TrainResult:
    """Run experiment ``config`` (a file, or a name under ``conf/experiments``); see the module.

    ``use_case``, when given, must be the experiment's (the DAG's Param). The result is ``train``'s, with
    ``experiment`` set (the report's paths, the trials, the search's pace).
    Like ``train``, it is one OpenLineage job ``train_model.<use case>`` (the training set in, the model out).
    """
    experiment = load_experiment(config)
    if use_case is not None and use_case != experiment.use_case:
        raise ConfigError(
            f"experiment {experiment.name} is for use case {experiment.use_case}, not {use_case}: pick one of "
            f"{use_case}'s experiments in conf/experiments"
        )
    run_in = partial(
        _run,
        settings,
        experiment,
        training_set_id=training_set_id,
        airflow=airflow,
        validation_results=validation_results,
        upstream_versions=upstream_versions,
        training_set_run_id=training_set_run_id,
    )
    return as_training_job(settings, experiment.use_case, run_in, lineage_parent, lineage_root, lineage_run)


def _run(
    settings: Settings,
    experiment: Experiment,
    run_record: JobRun,
    *,
    training_set_id: str | None,
    airflow: dict[str, Any] | None,
    validation_results: list[dict[str, Any]] | None,
    upstream_versions: dict[str, Any] | None,
    training_set_run_id: str | None,
) -> TrainResult:
    uc = get_use_case(experiment.use_case)
    training_set_id = training_set_id or latest_manifest(settings, uc.name).training_set_id
    snapshot = load_snapshot(settings, uc, training_set_id)
    validations = passed_validations(validation_results)
    frame = read_rows(settings, snapshot)
    ev = evaluate(experiment, snapshot, frame)
    scored, best, trial, chosen, part = ev.scored, ev.scored[0], ev.trial, ev.chosen, ev.part
    search_seconds = ev.search_seconds
    # Leakage and the quality bar over every trial; the plots over the best trial of each variant.
    quality = assess_quality(settings, uc, frame, outcome_of(part, [chosen, *ev.others.values()], chosen))
    outcome = ev.outcome()
    importance = mlflow_log.importance(outcome, experiment.seed)
    sha = config_sha256(experiment)
    record = lineage.ExperimentRecord(
        name=experiment.name,
        config_path=_relative(experiment.path),
        config_sha256=sha,
        estimator=experiment.estimator,
        params=dict(trial.params),
        variant=best.row.variant,
        trial=trial.number,
        metric=experiment.metric,
        cv_folds=experiment.folds,
        cv_mean=trial.mean,
        cv_spread=trial.spread,
        trials=len(scored),
        report=f"{REPORT_ARTIFACTS}/experiment.html",
    )
    provenance = Provenance(
        code=lineage.git_state(),
        airflow=lineage.airflow_record(airflow),
        validations=validations,
        upstream_versions=upstream_versions,
    )
    pace = 60.0 * len(scored) / search_seconds if search_seconds > 0 else 0.0
    # The report is written and logged inside the run, before the model is registered: a failure here
    # registers nothing. After the gate, only its line is added.
    report = _report(settings, experiment, snapshot, frame, ev, quality, importance)
    published: dict[str, Path] = {}
    logged = Logged(
        run_name=f"{experiment.name}-{training_set_id[:8]}",
        candidates=tuple(s.row.name for s in scored),
        seed=experiment.seed,
        tags={"pitlake.experiment": experiment.name, "pitlake.experiment_config_sha256": sha},
        params={
            "experiment": experiment.name,
            "estimator": experiment.estimator,
            "search_method": experiment.search_method or "none",
            "n_iter": experiment.n_iter,
            "cv_folds": experiment.folds,
            "primary_metric": experiment.metric,
            "chosen_trial": best.row.name,
            "selection_rule": f"best mean fold {experiment.metric} on the training part",
            **{f"best.{k}": v for k, v in trial.params.items()},
        },
        metrics={
            f"cv_{experiment.metric}_mean": trial.mean,
            f"cv_{experiment.metric}_spread": trial.spread,
            "trials": float(len(scored)),
            "search_seconds": search_seconds,
            "trials_per_minute": pace,
        },
        nested=partial(_log_trials, scored, experiment, best.row.name),
        artifacts=partial(_publish, settings, experiment, training_set_id, report, outcome, published),
        importance=importance,
        experiment=record,
    )
    result = log_register_gate(
        settings, run_record, snapshot, frame, outcome, quality, provenance, logged, training_set_run_id
    )
    paths = _add_gate(settings, report, published, result)
    result.experiment = {
        "name": experiment.name,
        "report_html": str(paths["html"]),
        "report_markdown": str(paths["markdown"]),
        "trials": len(scored),
        "search_seconds": round(search_seconds, 3),
        "trials_per_minute": round(pace, 2),
        "chosen": best.row.name,
        "cv_mean": trial.mean,
        "cv_spread": trial.spread,
        "ceiling_share": report.ceiling_share(chosen.metrics["roc_auc"]),
    }
    return result


def summary_line(result: TrainResult) -> str:
    """What an experiment run chose and what the gate did with it, and where its report is (two lines)."""
    exp, roc = result.experiment or {}, result.metrics["roc_auc"]
    share = exp.get("ceiling_share")
    ceiling = f" (ceiling {result.ceiling_auc:.4f}, {share:.1%} of the way)" if result.ceiling_auc and share else ""
    gate = "passed" if result.gate_passed else "failed: " + "; ".join(result.gate.get("reasons", []))
    return (
        f"experiment {exp.get('name')}: {exp.get('trials')} trial(s), {exp.get('trials_per_minute', 0.0):.1f}/min; "
        f"chosen {exp.get('chosen')} (CV {exp.get('cv_mean', 0.0):.4f} ± {exp.get('cv_spread', 0.0):.4f}), holdout "
        f"ROC AUC {roc:.4f}{ceiling}; {result.model_uri}: gate {gate}; aliases {result.aliases}\n"
        f"report: {exp.get('report_html')}"
    )


def _log_trials(
    scored: list[Scored], experiment: Experiment, chosen: str, experiment_id: str, tags: dict[str, str]
) -> None:
    """One nested run per trial: its params, fold scores (also as one metric over steps), means and times."""
    import mlflow

    metric = experiment.metric
    for s in scored:
        row = s.row
        trial_tags = tags | {
            "pitlake.variant": row.variant,
            "pitlake.trial": str(row.trial),
            "pitlake.chosen": str(row.name == chosen).lower(),
        }
        with mlflow.start_run(run_name=row.name, nested=True, experiment_id=experiment_id, tags=trial_tags):
            mlflow.log_params(
                {
                    "variant": row.variant,
                    "trial": row.trial,
                    "n_features": row.n_features,
                    **next(t for t in s.search.trials if t.number == row.trial).params,
                }
            )
            metrics = {f"fold_{k}_{metric}": v for k, v in enumerate(row.fold_scores, start=1)}
            metrics |= {
                f"cv_{metric}_mean": row.cv_mean,
                f"cv_{metric}_spread": row.cv_spread,
                "cv_fit_seconds": row.cv_fit_seconds,
                "refit_seconds": row.refit_seconds,
                "holdout_roc_auc_se": row.holdout_se,
            }
            metrics |= {f"holdout_{k}": v for k, v in row.holdout.items() if k != "threshold"}
            mlflow.log_metrics(metrics)
            for k, v in enumerate(row.fold_scores, start=1):
                mlflow.log_metric(f"cv_{metric}", v, step=k)


def _report(
    settings: Settings,
    experiment: Experiment,
    snapshot: Snapshot,
    frame: pd.DataFrame,
    ev: Evaluation,
    quality: lineage.QualityRecord,
    importance: pd.DataFrame,
) -> reporting.ExperimentReport:
    uc = get_use_case(experiment.use_case)
    part, y, split = ev.part, ev.part.y_eval, ev.part.split
    truth = dataset.ground_truth_scores(settings, frame.iloc[split.eval_index], keys=uc.keys)
    folds = ev.scored[0].search.folds  # every variant's: one warm-up for all
    searched = (
        f"random search, {experiment.n_iter} trials" if experiment.search_method else "one cross-validated fit"
    ) + (f" per variant ({', '.join(experiment.variants)})" if experiment.variants else "")
    return reporting.ExperimentReport(
        experiment=experiment.name,
        description=experiment.description,
        estimator=experiment.estimator,
        search=searched,
        metric=experiment.metric,
        use_case=uc.name,
        training_set=f"{snapshot.training_set_id} (Delta v{snapshot.version}, {len(frame):,} rows)",
        holdout=(
            f"label dates {split.eval_dates[0]}..{split.eval_dates[-1]}, {len(y):,} rows; trained on "
            f"{len(part.y_train):,} rows of label dates {split.train_dates[0]}..{split.train_dates[-1]} "
            f"({split.purge.days}-day purge)"
        ),
        folds=[
            reporting.FoldInfo(
                f.number, len(f.train_index), len(f.valid_index), f"{f.valid_dates[0]}..{f.valid_dates[-1]}"
            )
            for f in folds
        ],
        rows=[s.row for s in ev.scored],
        selected=ev.chosen.name,
        selected_metrics=ev.chosen.metrics,
        ceiling_auc=quality.ceiling_auc,
        ceiling_note=quality.ceiling_skipped or "",
        ceiling_accuracy=None if isinstance(truth, str) else best_accuracy(y, truth.rate),
        majority_accuracy=float(max(y.mean(), 1 - y.mean())),
        positive_rate=float(y.mean()),
        search_seconds=ev.search_seconds,
        importance=importance,
        notes=[f"suspected leakage: {r}" for r in quality.leakage_reasons],
    )


def _publish(
    settings: Settings,
    experiment: Experiment,
    training_set_id: str,
    report: reporting.ExperimentReport,
    outcome: FitOutcome,
    published: dict[str, Path],
    run_id: str,
) -> None:
    """Write the report under ``experiments/`` and log it, and the config, as the active run's ``report/``."""
    import mlflow

    figure = plots.calibration(outcome.y_eval, {c.name: c.eval_scores for c in outcome.candidates})
    png = io.BytesIO()
    figure.savefig(png, format="png")
    folder = settings.experiments_dir / f"{experiment.name}-{training_set_id}-{run_id[:8]}"
    published.update(reporting.write(report, folder, png.getvalue()))
    published["folder"] = folder
    mlflow.log_artifacts(str(folder), REPORT_ARTIFACTS)
    mlflow.log_text(Path(experiment.path).read_text(), f"{REPORT_ARTIFACTS}/{experiment.name}.yaml")
    log.info("experiment %s: report %s", experiment.name, published["html"])


def _add_gate(
    settings: Settings, report: reporting.ExperimentReport, published: dict[str, Path], result: TrainResult
) -> dict[str, Path]:
    """The report again with the registered version and the gate's decision (a warning if that fails:
    the model is registered and the report without that line is already logged)."""
    from mlflow.exceptions import MlflowException

    from pitlake.core import tracking

    gate = "passed" if result.gate_passed else "failed (" + "; ".join(result.gate.get("reasons", [])) + ")"
    report.registered = f"{result.model_uri} as challenger; gate {gate}; aliases {result.aliases}"
    folder = published["folder"]
    try:
        calibration = published["calibration"].read_bytes()
        reporting.write(report, folder, calibration)
        tracking.connect(settings).log_artifacts(result.run_id, str(folder), REPORT_ARTIFACTS)
    except (OSError, MlflowException) as err:
        log.warning("experiment %s: the report lacks the gate's line (%s)", report.experiment, err)
    return published
