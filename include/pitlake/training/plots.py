"""The PNG artifacts of a training run: ROC, precision-recall, calibration, feature importance and EDA.

Each function takes plain arrays/frames and returns a matplotlib ``Figure`` built without pyplot (no
backend, no global figure state), which the caller logs with ``mlflow.log_figure``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

Scores = Mapping[str, np.ndarray]


def _subplots(width: float, height: float, dpi: int = 90) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=dpi)
    return fig, fig.subplots()


def roc(y: np.ndarray, scores: Scores, aucs: Mapping[str, float], ceiling: float | None) -> Figure:
    fig, ax = _subplots(5.5, 5)
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="random")
    title = "ROC on the evaluation window"
    if ceiling is not None:
        title += f"\nceiling (ground-truth score) AUC {ceiling:.3f}"
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def precision_recall(y: np.ndarray, scores: Scores, aps: Mapping[str, float]) -> Figure:
    fig, ax = _subplots(5.5, 5)
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=f"{name} (AP {aps[name]:.3f})")
    ax.axhline(float(np.mean(y)), ls="--", c="grey", lw=0.8, label=f"base rate {np.mean(y):.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on the evaluation window", ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def calibration(y: np.ndarray, scores: Scores, bins: int = 10) -> Figure:
    fig, ax = _subplots(5.5, 5)
    for name, s in scores.items():
        frac, mean = calibration_curve(y, s, n_bins=bins, strategy="quantile")
        ax.plot(mean, frac, marker="o", ms=3, label=name)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfectly calibrated")
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", title="Calibration (quantile bins)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def feature_importance(importance: pd.DataFrame, title: str) -> Figure:
    """``importance``: columns ``feature``, ``mean``, ``std`` (permutation importance)."""
    data = importance.sort_values("mean")
    fig, ax = _subplots(6.5, max(2.5, 0.28 * len(data) + 1))
    ax.barh(data["feature"], data["mean"], xerr=data["std"], color="tab:blue", alpha=0.8)
    ax.axvline(0, c="grey", lw=0.8)
    ax.set(xlabel="drop in ROC AUC when the feature is shuffled", title=title)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def feature_distributions(frame: pd.DataFrame, label: np.ndarray, numeric: list[str], categorical: list[str]) -> Figure:
    """One panel per feature: numeric as histograms per label, categorical as positive rate per value."""
    columns = numeric + categorical
    ncols = 4
    nrows = max(1, -(-len(columns) // ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.4 * nrows), dpi=80)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    y = np.asarray(label)
    for ax, column in zip(axes.ravel(), columns, strict=False):
        if column in numeric:
            values = frame[column].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            edges = np.histogram_bin_edges(finite, bins=20) if finite.size else np.linspace(0, 1, 21)
            for value, colour in ((0, "tab:blue"), (1, "tab:orange")):
                part = values[(y == value) & np.isfinite(values)]
                if part.size:
                    ax.hist(part, bins=edges, density=True, alpha=0.5, color=colour, label=f"label={value}")
            missing = float(np.mean(~np.isfinite(values)))
            ax.set_title(f"{column}\nnull {missing:.0%}", fontsize=7)
        else:
            rate = pd.Series(y).groupby(frame[column].fillna("(null)").to_numpy()).mean().sort_index()
            ax.bar([str(i) for i in rate.index], rate.to_numpy(), color="tab:green", alpha=0.8)
            ax.set_title(f"{column}: positive rate", fontsize=7)
            ax.tick_params(axis="x", labelrotation=45)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(columns) :]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        axes.ravel()[0].legend(handles, labels, fontsize=6)
    fig.suptitle("Feature distributions by label (training part)", fontsize=9)
    fig.tight_layout()
    return fig


def correlation_matrix(frame: pd.DataFrame, label: np.ndarray, numeric: list[str]) -> Figure:
    """Spearman correlation of the numeric features and the label (nulls as missing, pairwise)."""
    data = frame[numeric].astype(float).assign(label=np.asarray(label, dtype=float))
    corr = data.corr(method="spearman").fillna(0.0)
    size = max(4.0, 0.35 * len(corr) + 2)
    fig, ax = _subplots(size, size, dpi=80)
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=6)
    ax.set_yticks(range(len(corr)), corr.columns, fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.7)
    ax.set_title("Spearman correlation (training part)", fontsize=9)
    fig.tight_layout()
    return fig
