"""Drift and realized-quality metrics of a served model: PSI, calibration, realized ROC AUC.

Pure numpy / pandas / scikit-learn on plain arrays, so every number can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

EPS = 1e-4  # a bin's proportion below this counts as this: an empty bin gives a large, finite PSI
PSI_STABLE, PSI_SIGNIFICANT = 0.1, 0.2


def _null_mask(values: pd.Series) -> np.ndarray:
    return np.asarray(values.isna().to_numpy(), dtype=bool)


def _proportions(codes: np.ndarray, n_bins: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=n_bins).astype(float)
    return counts / max(len(codes), 1)


def _numeric_codes(reference: pd.Series, current: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray, int]:
    ref = pd.to_numeric(reference, errors="coerce").astype("float64")
    cur = pd.to_numeric(current, errors="coerce").astype("float64")
    ref_values = ref.dropna().to_numpy()
    edges = np.unique(np.quantile(ref_values, np.linspace(0, 1, bins + 1))) if len(ref_values) else np.array([])
    interior = edges[1:-1]  # below the first / above the last edge: the end bins
    null_bin = len(interior) + 1

    def codes(values: pd.Series) -> np.ndarray:
        out = np.searchsorted(interior, values.fillna(0.0).to_numpy(), side="right")
        return np.where(_null_mask(values), null_bin, out)

    return codes(ref), codes(cur), null_bin + 1


def _categorical_codes(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    ref, cur = reference.astype("object"), current.astype("object")
    categories = sorted({str(v) for v in ref[~_null_mask(ref)]})
    index = {c: i for i, c in enumerate(categories)}
    other, null_bin = len(categories), len(categories) + 1

    def codes(values: pd.Series) -> np.ndarray:
        mapped = [index.get(str(v), other) for v in values]
        return np.where(_null_mask(values), null_bin, np.asarray(mapped, dtype=int))

    return codes(ref), codes(cur), null_bin + 1


def psi(reference: Sequence[Any] | pd.Series | np.ndarray, current: Sequence[Any] | pd.Series | np.ndarray, *,
        bins: int = 10, categorical: bool = False) -> float:  # fmt: skip
    """Population Stability Index of ``current`` against ``reference``: Σ (cur − ref) · ln(cur / ref).

    ``cur`` and ``ref`` are the shares of each sample in each bin:

    * numeric: the bin edges are the reference's quantiles at 0, 1/``bins``, ..., 1 (``numpy.quantile``,
      linear), duplicates dropped; bins are ``[e_i, e_i+1)``, a value below the first inner edge falls in
      the first bin and one at or above the last inner edge in the last (so values outside the
      reference's range land in the end bins);
    * categorical: one bin per reference category, one for any other value, compared as text;
    * either way missing values (None, NaN) are a bin of their own.

    A share below :data:`EPS` counts as ``EPS``, so a bin one sample leaves empty adds a large but finite
    term. Read it as: < 0.1 stable, 0.1–0.2 a moderate shift, > 0.2 a significant one.
    """
    ref, cur = pd.Series(list(reference), dtype="object"), pd.Series(list(current), dtype="object")
    if ref.empty or cur.empty:
        raise ValueError(f"psi needs values on both sides: {len(ref)} reference, {len(cur)} current")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    ref_codes, cur_codes, n_bins = (
        _categorical_codes(ref, cur) if categorical else _numeric_codes(ref, cur, bins)
    )  # fmt: skip
    expected = np.maximum(_proportions(ref_codes, n_bins), EPS)
    actual = np.maximum(_proportions(cur_codes, n_bins), EPS)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class CalibrationBin:
    """Predictions with ``lower <= score < upper`` (the last bin includes 1.0)."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


@dataclass(frozen=True)
class Calibration:
    bins: tuple[CalibrationBin, ...]
    ece: float | None  # expected calibration error: Σ count/n · |mean predicted − observed rate|
    brier: float | None  # mean squared difference of score and outcome
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_arrays(y: Sequence[Any] | np.ndarray, p: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"y and p must be 1-d and of one length, got {labels.shape} and {scores.shape}")
    return labels, scores


def calibration(y: Sequence[Any] | np.ndarray, p: Sequence[Any] | np.ndarray, bins: int = 10) -> Calibration:
    """Per uniform score bin ``[k/bins, (k+1)/bins)``: count, mean score, observed positive rate; plus ECE and Brier."""
    labels, scores = _as_arrays(y, p)
    index = np.clip(np.floor(scores * bins).astype(int), 0, bins - 1) if len(scores) else np.array([], dtype=int)
    out = []
    for k in range(bins):
        mask = index == k
        count = int(mask.sum())
        out.append(
            CalibrationBin(
                lower=k / bins,
                upper=(k + 1) / bins,
                count=count,
                mean_predicted=float(scores[mask].mean()) if count else None,
                observed_rate=float(labels[mask].mean()) if count else None,
            )
        )
    n = len(scores)
    if not n:
        return Calibration(tuple(out), None, None, 0)
    ece = sum(b.count / n * abs(b.mean_predicted - b.observed_rate) for b in out if b.count)  # type: ignore[operator]
    brier = float(np.mean((scores - labels) ** 2))
    return Calibration(tuple(out), float(ece), brier, n)


def realized_metrics(y: Sequence[Any] | np.ndarray, p: Sequence[Any] | np.ndarray) -> dict[str, Any]:
    """ROC AUC (None unless both classes occur), counts, positive rate, mean score, Brier and ECE."""
    from sklearn.metrics import roc_auc_score

    labels, scores = _as_arrays(y, p)
    n, positives = len(labels), int(labels.sum())
    cal = calibration(labels, scores)
    both = 0 < positives < n
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both else None,
        "n": n,
        "positives": positives,
        "positive_rate": positives / n if n else None,
        "mean_score": float(scores.mean()) if n else None,
        "brier": cal.brier,
        "ece": cal.ece,
    }


def psi_label(value: float) -> str:
    """The usual reading of a PSI value: stable, moderate or significant."""
    if math.isnan(value):
        return "n/a"
    return "stable" if value < PSI_STABLE else "moderate" if value <= PSI_SIGNIFICANT else "significant"
