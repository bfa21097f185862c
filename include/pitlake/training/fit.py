"""Fit every candidate on a training set's older rows and evaluate it on the newest ones, without MLflow.

1. :func:`pitlake.training.dataset.time_split`: the newest :data:`EVAL_FRACTION` of label dates
   evaluate, older rows whose label horizon ended before that window train;
2. the decision threshold for accuracy/F1 is the one that maximises F1 on the newest
   :data:`THRESHOLD_FRACTION` of the *training* dates, for a copy fit on the older ones (the
   evaluation window never chooses its own threshold); the model is then refit on the whole
   training part;
3. the candidate with the higher evaluation ROC AUC is selected (a tie keeps the earlier one).

Shared by :func:`pitlake.training.train.train` and :func:`pitlake.training.reproduce.reproduce`,
which must decide identically for the same rows and seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pitlake.core.errors import InputError
from pitlake.labels.build import HORIZON
from pitlake.lineage.manifest import TrainingRecord
from pitlake.training import dataset
from pitlake.training.candidates import CANDIDATES, Candidate, FitOutcome, make_pipeline
from pitlake.training.quality import best_f1_threshold, classification_metrics
from pitlake.training_set.build import UseCase

log = logging.getLogger(__name__)

EVAL_FRACTION = 0.2
THRESHOLD_FRACTION = 0.2


def _threshold(build: Callable[[], Pipeline], part: Holdout) -> tuple[float, str]:
    """F1-maximising threshold on the newest training dates, for a copy fit on the older ones."""
    try:
        inner = dataset.time_split(
            part.train_frame, eval_fraction=THRESHOLD_FRACTION, purge=part.split.purge, what="training part"
        )
    except InputError:
        return 0.5, "default 0.5 (training part too short for a threshold window)"
    x, y = part.x_train.reset_index(drop=True), part.y_train
    y_fit, y_val = y[inner.train_index], y[inner.eval_index]
    if len(set(y_fit)) < 2 or len(set(y_val)) < 2:
        return 0.5, "default 0.5 (threshold window has a single class)"
    model = build().fit(x.iloc[inner.train_index], y_fit)
    p = model.predict_proba(x.iloc[inner.eval_index])[:, 1]
    return best_f1_threshold(y_val, p), (
        f"max F1 on label dates {inner.eval_dates[0]}..{inner.eval_dates[-1]} (newest {THRESHOLD_FRACTION:.0%} of "
        "training dates) for a copy fit on the older ones"
    )


@dataclass
class Holdout:
    """The purged time split of a training set and its model inputs for one list of features."""

    features: list[str]
    numeric: list[str]
    categorical: list[str]
    split: dataset.TimeSplit
    train_frame: pd.DataFrame  # the training part's rows, reindexed from 0
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_eval: pd.DataFrame
    y_eval: np.ndarray


def holdout(
    frame: pd.DataFrame,
    *,
    use_case: UseCase,
    features: list[str],
    eval_fraction: float = EVAL_FRACTION,
    purge: timedelta = HORIZON,
    what: str = "training set",
) -> Holdout:
    """Split ``frame`` by time (both parts must hold both classes, and a feature must have a value)."""
    label = use_case.label_column
    y = frame[label].astype(int).to_numpy()
    split = dataset.time_split(
        frame, eval_fraction=eval_fraction, purge=purge, time_column=use_case.spine_time, what=what
    )
    for part, index in (("training", split.train_index), ("evaluation", split.eval_index)):
        classes = set(y[index].tolist())
        if len(classes) < 2:
            raise InputError(
                f"{what}: the {part} part has only label={classes.pop() if classes else 'nothing'} "
                f"({len(index)} rows): widen the label range so both parts hold both classes"
            )
    numeric, categorical = dataset.feature_kinds(frame, features)
    x = dataset.model_inputs(frame, features)
    x_train, y_train = x.iloc[split.train_index], y[split.train_index]
    empty = [c for c in features if x_train[c].isna().all()]
    if empty and len(empty) == len(features):
        first, last = split.train_dates[0], split.train_dates[-1]
        raise InputError(
            f"{what}: no feature has a value in the training part ({len(y_train)} rows, label dates "
            f"{first}..{last}): the label range starts before the feature history; build features "
            "for those days first, or train on a later label range"
        )
    if empty:
        log.warning("%s: features without any value in the training part: %s", what, ", ".join(empty))
    train_frame = frame.iloc[split.train_index].reset_index(drop=True)
    return Holdout(list(features), numeric, categorical, split, train_frame, x_train, y_train,
                   x.iloc[split.eval_index], y[split.eval_index])  # fmt: skip


def fit_candidate(name: str, build: Callable[[], Pipeline], part: Holdout) -> Candidate:
    """Choose ``build()``'s threshold, fit it on the whole training part and score the evaluation part."""
    threshold, method = _threshold(build, part)
    model = build().fit(part.x_train, part.y_train)
    scores = model.predict_proba(part.x_eval)[:, 1]
    return Candidate(name, model, threshold, method, classification_metrics(part.y_eval, scores, threshold), scores)


def outcome_of(part: Holdout, fitted: list[Candidate], selected: Candidate) -> FitOutcome:
    return FitOutcome(part.features, part.numeric, part.categorical, part.split, part.x_train, part.y_train,
                      part.x_eval, part.y_eval, fitted, selected)  # fmt: skip


def fit_and_evaluate(
    frame: pd.DataFrame,
    *,
    use_case: UseCase,
    features: list[str],
    seed: int,
    candidates: tuple[str, ...] = CANDIDATES,
    eval_fraction: float = EVAL_FRACTION,
    purge: timedelta = HORIZON,
    what: str = "training set",
) -> FitOutcome:
    """Split by time, fit every candidate, evaluate on the newest window; deterministic for a given frame and seed."""
    part = holdout(frame, use_case=use_case, features=features, eval_fraction=eval_fraction, purge=purge, what=what)
    fitted = [
        fit_candidate(name, partial(make_pipeline, name, part.numeric, part.categorical, seed), part)
        for name in candidates
    ]
    selected = max(fitted, key=lambda c: c.metrics["roc_auc"])  # ties: the first (simpler) candidate
    return outcome_of(part, fitted, selected)


def training_record(outcome: FitOutcome, seed: int, candidates: tuple[str, ...]) -> TrainingRecord:
    """How ``outcome`` was fit (with the default :data:`EVAL_FRACTION`), as the lineage manifest records it."""
    selected = outcome.selected
    return TrainingRecord(
        seed=seed,
        candidates=candidates,
        selected=selected.name,
        feature_columns=tuple(outcome.features),
        eval_fraction=EVAL_FRACTION,
        purge_days=outcome.split.purge.days,
        eval_start=outcome.split.eval_start.isoformat(),
        train_rows=len(outcome.y_train),
        eval_rows=len(outcome.y_eval),
        threshold=selected.threshold,
        threshold_method=selected.threshold_method,
    )
