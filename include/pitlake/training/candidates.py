"""The candidate models, and what fitting them decided.

Each candidate is one scikit-learn pipeline: the preprocessing every model needs, then the
estimator. Activity counts and sums (``count_*``, ``sum_*``) treat a null as zero (no activity in
the window) and other numeric features as the median, each with a missing-value indicator;
categorical features get a ``(null)`` category and a one-hot encoding that groups rare values.

* ``logistic_regression``: the numeric features are also standardised;
* ``random_forest``: single-threaded with a fixed ``random_state``, so a fit is deterministic for a
  given seed and row order;
* ``hist_gradient_boosting``: not one of ``train``'s candidates, the recommender's pointwise ranker.

:class:`FitOutcome` holds the fitted candidates and the selected one; the fitting itself is
:func:`pitlake.training.fit.fit_and_evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pitlake.core.errors import ConfigError
from pitlake.training import dataset

CANDIDATES = ("logistic_regression", "random_forest")
# Counts and sums of activity: null means "no activity in the window", i.e. zero.
ZERO_FILL_PREFIXES = ("count_", "sum_")


def check_candidates(names: tuple[str, ...]) -> None:
    """A :class:`ConfigError` naming the known candidates when ``names`` holds another one."""
    for name in names:
        if name not in CANDIDATES:
            raise ConfigError(f"unknown candidate model {name!r}; known: {', '.join(CANDIDATES)}")


def make_pipeline(name: str, numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    """A candidate: the preprocessing every model needs, then the estimator ``name``."""
    zero = [c for c in numeric if c.startswith(ZERO_FILL_PREFIXES)]
    other = [c for c in numeric if c not in zero]
    scale = name == "logistic_regression"

    def numeric_steps(imputer: SimpleImputer) -> Pipeline:
        steps: list[tuple[str, Any]] = [("impute", imputer)]
        if scale:
            steps.append(("scale", StandardScaler()))
        return Pipeline(steps)

    parts: list[tuple[str, Any, list[str]]] = []
    if zero:
        parts.append(
            (
                "zero_filled",
                numeric_steps(
                    SimpleImputer(strategy="constant", fill_value=0.0, add_indicator=True, keep_empty_features=True)
                ),
                zero,
            )
        )
    if other:
        parts.append(
            (
                "median_filled",
                numeric_steps(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                other,
            )
        )
    if categorical:
        parts.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="(null)")),
                        ("one_hot", OneHotEncoder(handle_unknown="ignore", min_frequency=5)),
                    ]
                ),
                categorical,
            )
        )
    if not parts:
        raise ConfigError("no feature columns to train on")
    estimator: Any
    if name == "logistic_regression":
        estimator = LogisticRegression(C=1.0, max_iter=2000)
    elif name == "hist_gradient_boosting":  # the recommender's ranker (pitlake.training.recommend)
        estimator = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.1, max_leaf_nodes=31, early_stopping=False, random_state=seed
        )
    elif name == "random_forest":
        estimator = RandomForestClassifier(
            n_estimators=100, max_depth=10, min_samples_leaf=5, random_state=seed, n_jobs=1
        )
    else:
        raise ConfigError(f"unknown candidate model {name!r}; known: {', '.join(CANDIDATES)}")
    return Pipeline([("preprocess", ColumnTransformer(parts, remainder="drop")), ("model", estimator)])


@dataclass
class Candidate:
    """One fitted candidate: its pipeline, decision threshold (and how it was chosen), evaluation metrics and scores."""

    name: str
    model: Pipeline
    threshold: float
    threshold_method: str
    metrics: dict[str, float]
    eval_scores: np.ndarray

    def params(self) -> dict[str, Any]:
        """The estimator's hyperparameters that distinguish it, as ``<candidate>.<param>``."""
        est = self.model.named_steps["model"]
        keep = ("C", "max_iter", "n_estimators", "max_depth", "min_samples_leaf", "random_state", "penalty")
        return {f"{self.name}.{k}": v for k, v in est.get_params(deep=False).items() if k in keep}


@dataclass
class FitOutcome:
    """Everything the fit decided, without MLflow: shared by ``train`` and ``reproduce``."""

    features: list[str]
    numeric: list[str]
    categorical: list[str]
    split: dataset.TimeSplit
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_eval: pd.DataFrame
    y_eval: np.ndarray
    candidates: list[Candidate]
    selected: Candidate

    def metrics(self) -> dict[str, float]:
        """The selected model's evaluation metrics, each candidate's ROC and PR AUC, and the split sizes."""
        out = dict(self.selected.metrics)
        for c in self.candidates:
            out[f"candidate.{c.name}.roc_auc"] = c.metrics["roc_auc"]
            out[f"candidate.{c.name}.pr_auc"] = c.metrics["pr_auc"]
        out |= {
            "train_rows": float(len(self.y_train)),
            "eval_rows": float(len(self.y_eval)),
            "train_positive_rate": float(np.mean(self.y_train)),
            "eval_positive_rate": float(np.mean(self.y_eval)),
        }
        return out
