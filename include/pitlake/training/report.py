"""The comparison report of an experiment run: Markdown and one self-contained HTML page.

Candidates side by side (mean ± spread of the primary metric over the time-series folds, the holdout's
ROC AUC, PR AUC, log loss and accuracy at 0.5, fit time), the ground-truth ceiling and how far each
candidate is above it in standard errors, the accuracy bar against what the data allows, the
calibration plot and the permutation importance of the selected candidate on the holdout.
:func:`write` puts ``experiment.md``, ``experiment.html``, ``calibration.png`` and ``trials.csv`` in a
folder (logged by the caller as the run's ``report/`` artifacts).
"""

from __future__ import annotations

import base64
import csv
import io
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from pitlake.core import html as html_report

ACCURACY_BAR = 0.85  # the MLOps requirements' accuracy bar for the reference random forest


@dataclass(frozen=True)
class Row:
    """One trial of one variant: its fold scores and its refit's holdout metrics."""

    name: str
    variant: str
    trial: int
    params: dict[str, Any]  # the searched params (every fixed param when nothing is searched)
    n_features: int
    fold_scores: tuple[float, ...]
    cv_mean: float
    cv_spread: float
    cv_fit_seconds: float
    holdout: dict[str, float]  # roc_auc, pr_auc, log_loss, brier, accuracy (at 0.5)
    holdout_se: float  # Hanley-McNeil standard error of the holdout ROC AUC
    refit_seconds: float


@dataclass(frozen=True)
class FoldInfo:
    number: int
    train_rows: int
    valid_rows: int
    valid_dates: str


@dataclass
class ExperimentReport:
    experiment: str
    description: str
    estimator: str
    search: str  # "random search, 12 trials" or "one cross-validated fit"
    metric: str
    use_case: str
    training_set: str  # "<id> (Delta v3, 40,655 rows)"
    holdout: str  # "label dates 2026-01-28..2026-02-03, 8,751 rows; trained on 23,043 rows up to 2026-01-20"
    folds: list[FoldInfo]
    rows: list[Row]  # best first
    selected: str
    selected_metrics: dict[str, float]  # the registered model's holdout metrics (its own threshold)
    ceiling_auc: float | None
    ceiling_note: str  # why there is no ceiling, when there is none
    ceiling_accuracy: float | None
    majority_accuracy: float
    positive_rate: float
    search_seconds: float
    importance: pd.DataFrame
    registered: str = ""  # "models:/purchase_propensity/3: gate passed, aliases {...}"
    notes: list[str] = field(default_factory=list)

    @property
    def trials_per_minute(self) -> float:
        return 60.0 * len(self.rows) / self.search_seconds if self.search_seconds > 0 else 0.0

    def ceiling_share(self, auc: float) -> float | None:
        """How much of the way from 0.5 to the ceiling ``auc`` goes (1.0 = at the ceiling)."""
        if self.ceiling_auc is None or self.ceiling_auc <= 0.5:
            return None
        return (auc - 0.5) / (self.ceiling_auc - 0.5)

    def above_ceiling(self, row: Row) -> float | None:
        """How many of its standard errors ``row``'s holdout ROC AUC lies above the ceiling (<= 0: not above;
        infinite for a perfect ranking above it, whose standard error is 0)."""
        if self.ceiling_auc is None:
            return None
        gap = row.holdout["roc_auc"] - self.ceiling_auc
        if row.holdout_se <= 0:
            return math.copysign(math.inf, gap) if gap else 0.0
        return gap / row.holdout_se

    @property
    def suspicious(self) -> list[str]:
        """The candidates above the ceiling by more than their standard error (leakage, until shown otherwise)."""
        return [r.name for r in self.rows if (self.above_ceiling(r) or 0.0) > 1.0]

    def accuracy_verdict(self) -> str:
        """Whether the accuracy bar is meaningful on this data: what a constant and the ground truth reach."""
        base = (
            f"Predicting the majority class reaches {self.majority_accuracy:.3f} accuracy on the holdout "
            f"(positive rate {self.positive_rate:.3f})"
        )
        if self.majority_accuracy >= ACCURACY_BAR:
            return (
                f"{base}: a constant prediction already passes an accuracy bar of {ACCURACY_BAR}, so the bar says "
                "nothing about a model on this data; compare ROC AUC with its ceiling instead."
            )
        if self.ceiling_accuracy is None:
            return base + f"; without ground truth, the {ACCURACY_BAR} bar cannot be judged against a ceiling."
        if self.ceiling_accuracy >= ACCURACY_BAR:
            return (
                f"{base}; the generator's own ground-truth score, at its best threshold, reaches "
                f"{self.ceiling_accuracy:.3f}. So a model can pass an accuracy bar of {ACCURACY_BAR} on this data: "
                "the bar is meaningful here."
            )
        return (
            f"{base}; the generator's own ground-truth score, at its best threshold, reaches "
            f"{self.ceiling_accuracy:.3f}. So no model can pass an accuracy bar of {ACCURACY_BAR} on this data: "
            "the outcome is noisy given everything knowable, and the bar measures the data, not the model; "
            "compare ROC AUC with its ceiling instead."
        )


def _cells(report: ExperimentReport, row: Row) -> list[Any]:
    share = report.ceiling_share(row.holdout["roc_auc"])
    above = report.above_ceiling(row)
    return [
        row.name,
        ", ".join(f"{k}={_short(v)}" for k, v in row.params.items()) or "–",
        f"{row.cv_mean:.4f} ± {row.cv_spread:.4f}",
        " ".join(f"{s:.3f}" for s in row.fold_scores),
        row.holdout["roc_auc"],
        "–" if share is None else f"{share:.0%}",
        "–" if above is None else f"{above:+.1f}",
        row.holdout["pr_auc"],
        row.holdout["log_loss"],
        row.holdout["accuracy"],
        f"{row.cv_fit_seconds + row.refit_seconds:.1f}",
    ]


HEADER = [
    "candidate",
    "params",
    "CV {metric} mean ± spread",
    "fold scores",
    "holdout ROC AUC",
    "of the way to ceiling",
    "SEs above ceiling",
    "holdout PR AUC",
    "holdout log loss",
    "accuracy (p ≥ 0.5)",
    "fit s",
]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _summary(report: ExperimentReport) -> list[str]:
    best = report.rows[0]
    lines = [
        f"Selected **{report.selected}** (the best mean fold {report.metric}; the holdout never chooses): holdout ROC "
        f"AUC {report.selected_metrics['roc_auc']:.4f}, accuracy {report.selected_metrics['accuracy']:.4f} at its "
        f"threshold {report.selected_metrics['threshold']:.3f}, {best.holdout['accuracy']:.4f} at 0.5.",
    ]
    if report.ceiling_auc is not None:
        share = report.ceiling_share(report.selected_metrics["roc_auc"])
        above = report.suspicious
        way = (
            f"the selected candidate goes {share:.1%} of the way from 0.5 to it"
            if share is not None
            else ("it is no better than random, so no share of the way to it is given")
        )
        lines.append(
            f"Ground-truth ceiling ROC AUC {report.ceiling_auc:.4f}: {way}; "
            + (
                f"above it by more than one standard error: {', '.join(above)} (suspect leakage)."
                if above
                else "no candidate is above it by more than its standard error."
            )
        )
    else:
        lines.append(f"No ground-truth ceiling: {report.ceiling_note}.")
    lines.append(report.accuracy_verdict())
    lines.append(
        f"Search: {len(report.rows)} trial(s) x {len(report.folds)} folds in {report.search_seconds:.1f} s "
        f"({report.trials_per_minute:.1f} trials/min, n_jobs=1)."
    )
    if report.registered:
        lines.append(f"Registered: {report.registered}.")
    return lines + report.notes


def markdown(report: ExperimentReport) -> str:
    """The report as Markdown (the calibration plot as ``calibration.png`` beside it)."""
    header = [h.format(metric=report.metric) for h in HEADER]
    out = [
        f"# Experiment {report.experiment}",
        "",
        report.description,
        "",
        f"- use case: {report.use_case}; training set {report.training_set}",
        f"- estimator: `{report.estimator}`; {report.search}; primary metric {report.metric}",
        f"- holdout: {report.holdout}",
        "",
        *[f"{line}  " for line in _summary(report)],
        "",
        "## Candidates (best first)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in report.rows:
        cells = [html_report.fmt(c, 4) for c in _cells(report, row)]
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    out += [
        "",
        "## Folds (expanding window, purged like the holdout)",
        "",
        "| fold | train rows | validates | rows |",
        "|---|---|---|---|",
    ]
    out += [f"| {f.number} | {f.train_rows} | {f.valid_dates} | {f.valid_rows} |" for f in report.folds]
    out += [
        "",
        "## Calibration on the holdout",
        "",
        "![calibration](calibration.png)",
        "",
        f"## Permutation importance of {report.selected} on the holdout (ROC AUC drop)",
        "",
        "| feature | mean | std |",
        "|---|---|---|",
    ]
    out += [f"| {r.feature} | {r.mean:.4f} | {r.std:.4f} |" for r in report.importance.itertuples()]
    return "\n".join(out) + "\n"


def html(report: ExperimentReport, calibration_png: bytes) -> str:
    """The report as one HTML page; the calibration plot is inlined."""
    header = [h.format(metric=report.metric) for h in HEADER]
    rows = [_cells(report, r) for r in report.rows]
    flagged = [r.name in report.suspicious for r in report.rows]
    verdict = "breached" if report.suspicious or report.notes else "healthy"
    image = base64.b64encode(calibration_png).decode()
    summary = "".join(f"<p>{escape(line).replace('**', '')}</p>" for line in _summary(report))
    folds = html_report.table(
        ["fold", "train rows", "validates", "rows"],
        [[f.number, f.train_rows, f.valid_dates, f.valid_rows] for f in report.folds],
    )
    importance = html_report.table(
        ["feature", "mean", "std"], [[r.feature, r.mean, r.std] for r in report.importance.itertuples()]
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Experiment {escape(report.experiment)}</title>"
        f"<style>{html_report.CSS} body {{ max-width: 90em; }}</style></head><body>"
        f"<h1>Experiment {escape(report.experiment)}</h1><p>{escape(report.description)}</p><ul>"
        f"<li>use case {escape(report.use_case)}; training set {escape(report.training_set)}</li>"
        f"<li>estimator <code>{escape(report.estimator)}</code>; {escape(report.search)}; primary metric "
        f"{escape(report.metric)}</li><li>holdout: {escape(report.holdout)}</li></ul>"
        f'<div class="verdict {verdict}">{summary}</div>'
        f"<h2>Candidates (best first)</h2>{html_report.table(header, rows, bad=flagged, best=[True])}"
        f"<h2>Folds (expanding window, purged like the holdout)</h2>{folds}"
        f"<h2>Calibration on the holdout</h2><img alt='calibration' src='data:image/png;base64,{image}'>"
        f"<h2>Permutation importance of {escape(report.selected)} on the holdout (ROC AUC drop)</h2>{importance}"
        "</body></html>"
    )


def trials_csv(report: ExperimentReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    folds = max((len(r.fold_scores) for r in report.rows), default=0)
    writer.writerow(
        [
            "candidate",
            "variant",
            "trial",
            "params",
            "cv_mean",
            "cv_spread",
            *[f"fold_{k + 1}" for k in range(folds)],
            "holdout_roc_auc",
            "holdout_roc_auc_se",
            "holdout_pr_auc",
            "holdout_log_loss",
            "holdout_accuracy",
            "cv_fit_seconds",
            "refit_seconds",
        ]
    )
    for r in report.rows:
        writer.writerow(
            [
                r.name,
                r.variant,
                r.trial,
                repr(r.params),
                r.cv_mean,
                r.cv_spread,
                *r.fold_scores,
                r.holdout["roc_auc"],
                r.holdout_se,
                r.holdout["pr_auc"],
                r.holdout["log_loss"],
                r.holdout["accuracy"],
                r.cv_fit_seconds,
                r.refit_seconds,
            ]
        )
    return out.getvalue()


def write(report: ExperimentReport, folder: Path, calibration_png: bytes) -> dict[str, Path]:
    """``experiment.md``, ``experiment.html``, ``calibration.png`` and ``trials.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / "experiment.md",
        "html": folder / "experiment.html",
        "calibration": folder / "calibration.png",
        "trials": folder / "trials.csv",
    }
    paths["markdown"].write_text(markdown(report))
    paths["html"].write_text(html(report, calibration_png))
    paths["calibration"].write_bytes(calibration_png)
    paths["trials"].write_text(trials_csv(report))
    return paths
