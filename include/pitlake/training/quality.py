"""Metrics, the honest quality bar and the leakage checks.

* :func:`classification_metrics`: ranking (ROC AUC, PR AUC), probability (log loss, Brier) and,
  at a decision threshold, accuracy, F1, precision and recall.
* :func:`assess_quality`: with the demo's ground truth, the ceiling is the ROC AUC of the
  Bayes-optimal score on the evaluation rows, the floor ``0.5 + CEILING_SHARE * (ceiling - 0.5)``,
  and a candidate above ``ceiling + tolerance`` (twice the ceiling's standard error, at least
  :data:`MIN_LEAKAGE_TOLERANCE`) is suspected leakage. Without ground truth the floor is
  :data:`FALLBACK_FLOOR` and an ROC AUC of :data:`NO_CEILING_LEAKAGE_AUC` or more is suspected
  leakage. Either way, a numeric feature that alone separates the evaluation labels (ROC AUC at
  least :data:`SINGLE_FEATURE_LEAKAGE_AUC`, either direction) is suspected leakage.

The result is the :class:`pitlake.lineage.manifest.QualityRecord` the lineage manifest persists
and the promotion gate reads.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from pitlake.core.settings import Settings
from pitlake.lineage.manifest import QualityRecord
from pitlake.training import dataset
from pitlake.training.candidates import FitOutcome
from pitlake.training_set.build import UseCase

CEILING_SHARE = 0.9  # the floor keeps this share of the ceiling's lift over random
FALLBACK_FLOOR = 0.55  # without ground truth: clearly better than random
MIN_LEAKAGE_TOLERANCE = 0.01
SINGLE_FEATURE_LEAKAGE_AUC = 0.99
NO_CEILING_LEAKAGE_AUC = 0.995


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of scores ``p`` against labels ``y``; the thresholded ones count ``p >= threshold`` as positive."""
    predicted = (p >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "threshold": float(threshold),
    }


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score threshold with the highest F1 for labels ``y``."""
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def best_accuracy(y: np.ndarray, s: np.ndarray) -> float:
    """The highest accuracy any threshold on scores ``s`` reaches for labels ``y`` (cut between distinct scores)."""
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    n, positives = len(y), int(y.sum())
    true_positives = np.concatenate([[0], np.cumsum(ys)])
    predicted = np.arange(n + 1)  # the top k predicted positive
    accuracy = (2 * true_positives - predicted + n - positives) / n
    cuts = np.concatenate([[True], ss[1:] != ss[:-1], [True]])  # never split a tie
    return float(accuracy[cuts].max())


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an ROC AUC estimate."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / max(
        positives * negatives, 1
    )
    return math.sqrt(max(var, 0.0))


def separating_features(x: pd.DataFrame, numeric: list[str], y: np.ndarray) -> list[str]:
    """A reason for each numeric feature that alone separates labels ``y`` (ROC AUC at least
    :data:`SINGLE_FEATURE_LEAKAGE_AUC`, either direction): a sign it was computed from the outcome."""
    reasons = []
    for column in numeric:
        values = x[column].fillna(-1.0).to_numpy()
        if len(np.unique(values)) > 1:
            auc = float(roc_auc_score(y, values))
            if max(auc, 1 - auc) >= SINGLE_FEATURE_LEAKAGE_AUC:
                reasons.append(f"feature {column} alone separates the evaluation labels (AUC {max(auc, 1 - auc):.4f})")
    return reasons


def assess_quality(settings: Settings, use_case: UseCase, frame: pd.DataFrame, outcome: FitOutcome) -> QualityRecord:
    """The quality floor and the leakage verdict for ``outcome``, fit on ``frame`` (see the module docstring)."""
    y = outcome.y_eval
    eval_rows = frame.iloc[outcome.split.eval_index]
    truth = dataset.ground_truth_scores(settings, eval_rows, keys=use_case.keys)
    reasons: list[str] = []
    best = max(c.metrics["roc_auc"] for c in outcome.candidates)
    reasons += separating_features(outcome.x_eval, outcome.numeric, y)
    if isinstance(truth, str):
        if best >= NO_CEILING_LEAKAGE_AUC:
            reasons.append(f"evaluation ROC AUC {best:.4f} >= {NO_CEILING_LEAKAGE_AUC} without ground truth")
        return QualityRecord(
            None, None, truth, FALLBACK_FLOOR, "fallback: no ground truth", None, bool(reasons), tuple(reasons)
        )
    ceiling = float(roc_auc_score(y, truth.rate))
    tolerance = max(MIN_LEAKAGE_TOLERANCE, 2 * auc_standard_error(ceiling, int(y.sum()), int(len(y) - y.sum())))
    for c in outcome.candidates:
        if c.metrics["roc_auc"] > ceiling + tolerance:
            reasons.append(
                f"{c.name} evaluation ROC AUC {c.metrics['roc_auc']:.4f} exceeds the ground-truth ceiling "
                f"{ceiling:.4f} + tolerance {tolerance:.4f}"
            )
    return QualityRecord(
        ceiling_auc=ceiling,
        ceiling_auc_propensity=float(roc_auc_score(y, truth.propensity)),
        ceiling_skipped=None,
        quality_floor=0.5 + CEILING_SHARE * (ceiling - 0.5),
        floor_source="ground_truth",
        leakage_tolerance=tolerance,
        suspected_leakage=bool(reasons),
        leakage_reasons=tuple(reasons),
    )


def run_metrics(outcome: FitOutcome, quality: QualityRecord) -> dict[str, float]:
    """The parent run's metrics: the fit's, the quality floor and, with ground truth, the ceiling and its tolerance."""
    metrics = outcome.metrics() | {"quality_floor": quality.quality_floor}
    if quality.ceiling_auc is not None:
        metrics |= {"ceiling_auc": quality.ceiling_auc, "leakage_tolerance": quality.leakage_tolerance or 0.0}
        metrics["ceiling_auc_propensity"] = quality.ceiling_auc_propensity or 0.0
    return metrics
