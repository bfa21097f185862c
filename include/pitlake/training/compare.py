"""An experiment's trials compared without MLflow: each variant searched on the time-series folds of the
training part, every trial refit on the whole training part and scored on the holdout (for the report
only), the chosen trial (the best mean fold score; the holdout never chooses) refit with its decision
threshold the way ``train``'s candidates are.

:func:`evaluate` is what :mod:`pitlake.training.experiment_run` logs and reports, and what the
``experiments`` benchmark times; :func:`refit_chosen` refits a registered experiment model from its
manifest (``reproduce``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from pitlake.labels.build import HORIZON
from pitlake.lineage import manifest as lineage
from pitlake.training import dataset
from pitlake.training import report as reporting
from pitlake.training.candidates import Candidate, FitOutcome
from pitlake.training.experiments import Experiment
from pitlake.training.fit import EVAL_FRACTION, Holdout, fit_candidate, holdout, outcome_of
from pitlake.training.provenance import Snapshot
from pitlake.training.quality import auc_standard_error, classification_metrics
from pitlake.training.search import SearchResult, Trial, estimator_pipeline, run_search
from pitlake.training.train import select_features
from pitlake.training_set.build import UseCase

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Scored:
    """A trial refit on the whole training part: its report row and its holdout scores."""

    row: reporting.Row
    model: Any  # the fitted pipeline
    scores: np.ndarray
    search: SearchResult


def _scored(experiment: Experiment, variant: str, search: SearchResult, part: Holdout, many: bool) -> list[Scored]:
    out = []
    for trial in search.trials:
        model = estimator_pipeline(experiment.estimator, trial.params, experiment.seed, part.numeric, part.categorical)
        began = time.perf_counter()
        scores = model.fit(part.x_train, part.y_train).predict_proba(part.x_eval)[:, 1]
        refit = time.perf_counter() - began
        holdout_metrics = classification_metrics(part.y_eval, scores, 0.5)
        y = part.y_eval
        se = auc_standard_error(holdout_metrics["roc_auc"], int(y.sum()), int(len(y) - y.sum()))
        searched = {k: v for k, v in trial.params.items() if k in experiment.space} or dict(trial.params)
        name = f"{variant}.trial{trial.number}" if many else variant
        row = reporting.Row(
            name,
            variant,
            trial.number,
            searched,
            len(part.features),
            trial.fold_scores,
            trial.mean,
            trial.spread,
            trial.fit_seconds,
            holdout_metrics,
            se,
            refit,
        )
        out.append(Scored(row, model, scores, search))
    return out


def _candidate(s: Scored, part: Holdout) -> Candidate:
    """A trial that is not chosen, as a candidate of the fit outcome (threshold 0.5: none was chosen for it)."""
    metrics = classification_metrics(part.y_eval, s.scores, 0.5)
    return Candidate(s.row.name, s.model, 0.5, "0.5 (not the chosen trial)", metrics, s.scores)


@dataclasses.dataclass
class Evaluation:
    """Every trial of every variant scored, best mean fold score first, and the chosen one refit."""

    scored: list[Scored]
    trial: Trial  # the chosen trial (``scored[0]``)
    part: Holdout  # the chosen variant's split and inputs
    chosen: Candidate  # the chosen trial refit on the whole training part, with its threshold
    others: dict[str, Candidate]  # every other trial, by name
    search_seconds: float

    def outcome(self) -> FitOutcome:
        """The chosen candidate, with the best trial of each other variant beside it (the plots' candidates)."""
        variants = list(dict.fromkeys(s.row.variant for s in self.scored))
        firsts = [next(s for s in self.scored if s.row.variant == v) for v in variants[1:]]
        return outcome_of(self.part, [self.chosen, *(self.others[s.row.name] for s in firsts)], self.chosen)


def evaluate(experiment: Experiment, snapshot: Snapshot, frame: pd.DataFrame) -> Evaluation:
    """Search each variant on the training part's folds, refit every trial on it and score the holdout;
    the chosen trial is the best by mean fold score (no MLflow)."""
    uc = snapshot.use_case
    what = f"experiment {experiment.name} on training set {snapshot.training_set_id}"
    variants = dict(experiment.variants) or {experiment.name: experiment.features}
    scored: list[Scored] = []
    parts: dict[str, Holdout] = {}
    search_seconds = 0.0
    for variant, declared in variants.items():  # every variant checked before any search runs
        features = select_features(snapshot, None if variant in experiment.all_features else list(declared))
        parts[variant] = holdout(
            frame, use_case=uc, features=features, eval_fraction=EVAL_FRACTION, purge=HORIZON, what=f"{what}, {variant}"
        )
    # One warm-up for every variant (until a label with any of their features is known): the same folds.
    union = list(dict.fromkeys(f for part in parts.values() for f in part.features))
    train_frame = next(iter(parts.values())).train_frame  # the split depends on label times only
    usable = dataset.model_inputs(train_frame, union).notna().any(axis=1).to_numpy()
    for variant, part in parts.items():
        search = run_search(
            dataclasses.replace(experiment, features=tuple(part.features)),
            part.train_frame,
            label=uc.label_column,
            features=part.features,
            purge=HORIZON,
            time_column=uc.spine_time,
            what=f"{what}: its training part",
            usable=usable,
        )
        search_seconds += search.seconds
        scored += _scored(experiment, variant, search, part, many=len(search.trials) > 1)
        log.info("%s: variant %s, %d trial(s) in %.1f s", what, variant, len(search.trials), search.seconds)
    scored.sort(key=lambda s: s.row.cv_mean, reverse=experiment.metric != "log_loss")  # stable: ties keep order
    best = scored[0]
    part = parts[best.row.variant]
    trial = next(t for t in best.search.trials if t.number == best.row.trial)
    build = partial(
        estimator_pipeline, experiment.estimator, trial.params, experiment.seed, part.numeric, part.categorical
    )
    chosen = fit_candidate(best.row.name, build, part)
    others = {s.row.name: _candidate(s, parts[s.row.variant]) for s in scored[1:]}
    return Evaluation(scored, trial, part, chosen, others, search_seconds)


def refit_chosen(
    frame: pd.DataFrame,
    *,
    use_case: UseCase,
    record: lineage.ExperimentRecord,
    training: lineage.TrainingRecord,
    what: str,
) -> FitOutcome:
    """The chosen trial refit as the experiment fit it, from its manifest records (``reproduce`` uses this)."""
    part = holdout(
        frame,
        use_case=use_case,
        features=list(training.feature_columns),
        eval_fraction=training.eval_fraction,
        purge=timedelta(days=training.purge_days),
        what=what,
    )
    build = partial(estimator_pipeline, record.estimator, record.params, training.seed, part.numeric, part.categorical)
    chosen = fit_candidate(training.selected, build, part)
    return outcome_of(part, [chosen], chosen)
