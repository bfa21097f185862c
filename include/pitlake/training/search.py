"""An experiment's hyperparameter search over the time-series folds (no MLflow here: the caller logs).

The estimator of an :class:`~pitlake.training.experiments.Experiment` gets the candidates' preprocessing
(:func:`pitlake.training.candidates.make_pipeline`: imputation, indicators, one-hot; scaling for linear
models) and is scored on :func:`pitlake.training.cv.expanding_folds`: scikit-learn's randomized search,
or plain cross-validation when the experiment has no search. (Successive halving is left out: it
subsamples rows, which the fixed time-ordered folds cannot follow.) ``n_jobs=1``: two
cores are shared with the Spark engine, and one process per trial keeps the fold times comparable.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from pitlake.core.errors import InputError
from pitlake.training import dataset
from pitlake.training.candidates import make_pipeline
from pitlake.training.cv import Fold, expanding_folds, mean_and_spread
from pitlake.training.experiments import Experiment

SCORERS = {"roc_auc": "roc_auc", "pr_auc": "average_precision", "log_loss": "neg_log_loss", "accuracy": "accuracy"}
SCALED_MODULES = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors")


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    fold_scores: tuple[float, ...]
    mean: float
    spread: float
    fit_seconds: float


@dataclass(frozen=True)
class SearchResult:
    experiment: str
    metric: str
    folds: tuple[Fold, ...]
    trials: tuple[Trial, ...]
    best: Trial
    seconds: float


def pipeline(experiment: Experiment, frame: pd.DataFrame, features: list[str]) -> Any:
    """The experiment's estimator behind the candidates' preprocessing of ``features``."""
    numeric, categorical = dataset.feature_kinds(frame, features)
    return estimator_pipeline(experiment.estimator, experiment.params, experiment.seed, numeric, categorical)


def estimator_pipeline(
    estimator_path: str, params: dict[str, Any], seed: int, numeric: list[str], categorical: list[str]
) -> Any:
    """Estimator ``estimator_path(**params)`` (``random_state=seed`` unless given) behind the candidates'
    preprocessing; linear, SVM and neighbour models also get the numeric features standardised."""
    module_name, _, class_name = estimator_path.rpartition(".")
    estimator = getattr(importlib.import_module(module_name), class_name)(**params)
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    scaled = module_name.startswith(SCALED_MODULES)
    pipe = make_pipeline("logistic_regression" if scaled else "random_forest", numeric, categorical, seed)
    pipe.steps[-1] = ("model", estimator)
    return pipe


def distributions(experiment: Experiment) -> dict[str, Any]:
    """The search space as scikit-learn's ``param_distributions`` on the pipeline's ``model`` step."""
    from scipy import stats

    out: dict[str, Any] = {}
    for name, spec in experiment.space.items():
        kind, values = next(iter(spec.items()))
        if kind == "loguniform":
            out[f"model__{name}"] = stats.loguniform(values[0], values[1])
        elif kind == "uniform":
            out[f"model__{name}"] = stats.uniform(values[0], values[1] - values[0])
        elif kind == "int":
            out[f"model__{name}"] = stats.randint(values[0], values[1] + 1)
        else:
            out[f"model__{name}"] = list(values)
    return out


def run_search(
    experiment: Experiment,
    frame: pd.DataFrame,
    *,
    label: str,
    features: list[str],
    purge: timedelta,
    time_column: str = "label_time",
    what: str | None = None,
    n_jobs: int = 1,
    usable: np.ndarray | None = None,
) -> SearchResult:
    """Score the experiment's trials on the expanding folds of ``frame``; the best by mean fold score.

    ``usable`` marks the rows with any feature value (default: of ``features``): the folds' warm-up lasts
    until one is known. Give the same mask to the variants of one experiment so they share their folds.
    ``n_jobs`` processes score the trials' folds (1 in pitlake, see the module; the benchmark compares).
    A fold whose training or validation rows hold one class only is a one-line :class:`InputError`.
    """
    from sklearn.model_selection import RandomizedSearchCV, cross_validate

    began = time.perf_counter()
    x, y = dataset.model_inputs(frame, features), frame[label].to_numpy()
    what = what or f"experiment {experiment.name}"
    # The warm-up lasts until a label with any feature value is known: no fold learns from empty rows only.
    usable = x.notna().any(axis=1).to_numpy() if usable is None else usable
    folds = expanding_folds(frame, n_folds=experiment.folds, purge=purge, time_column=time_column, usable=usable,
                            what=what)  # fmt: skip
    for fold in folds:
        for part, index in (("training", fold.train_index), ("validation", fold.valid_index)):
            classes = set(y[index].tolist())
            if len(classes) < 2:
                raise InputError(
                    f"{what}: fold {fold.number}'s {part} rows ({len(index)}, validating from "
                    f"{fold.valid_dates[0]}) hold only {label}={classes.pop() if classes else 'nothing'}: a fold "
                    "needs both classes; use fewer folds or a wider label range"
                )
    cv = [(f.train_index, f.valid_index) for f in folds]
    pipe, scoring = pipeline(experiment, frame, features), SCORERS[experiment.metric]
    sign = -1.0 if scoring.startswith("neg_") else 1.0
    trials: list[Trial] = []
    if experiment.search_method is None:
        scores = cross_validate(pipe, x, y, cv=cv, scoring=scoring, n_jobs=n_jobs, error_score="raise")
        fold_scores = tuple(float(sign * s) for s in scores["test_score"])
        mean, spread = mean_and_spread(list(fold_scores))
        trials.append(Trial(1, dict(experiment.params), fold_scores, mean, spread, float(np.sum(scores["fit_time"]))))
    else:
        searcher = RandomizedSearchCV(
            pipe, distributions(experiment), n_iter=experiment.n_iter, cv=cv, scoring=scoring,
            random_state=experiment.seed, n_jobs=n_jobs, refit=False, error_score="raise",
        )  # fmt: skip
        searcher.fit(x, y)
        results = searcher.cv_results_
        for i, params in enumerate(results["params"]):
            fold_scores = tuple(float(sign * results[f"split{k}_test_score"][i]) for k in range(len(cv)))
            mean, spread = mean_and_spread(list(fold_scores))
            fit_seconds = float(results["mean_fit_time"][i] * len(cv))
            plain = {k.removeprefix("model__"): _plain(v) for k, v in params.items()}
            trials.append(Trial(i + 1, {**experiment.params, **plain}, fold_scores, mean, spread, fit_seconds))
    lower_is_better = experiment.metric == "log_loss"
    best = min(trials, key=lambda t: t.mean) if lower_is_better else max(trials, key=lambda t: t.mean)
    return SearchResult(experiment.name, experiment.metric, tuple(folds), tuple(trials), best,
                        time.perf_counter() - began)  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
