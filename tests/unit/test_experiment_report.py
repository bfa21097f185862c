"""The experiment comparison report (pitlake.training.report) from a hand-built result: the ceiling shares,
the candidates above the ceiling by more than their standard error, the accuracy verdict, both formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pitlake.training.quality import best_accuracy
from pitlake.training.report import ExperimentReport, FoldInfo, Row, html, markdown, trials_csv, write


def row(name: str, auc: float, se: float, cv: float) -> Row:
    holdout = {"roc_auc": auc, "pr_auc": 0.8, "log_loss": 0.5, "brier": 0.17, "accuracy": 0.75}
    return Row(name, "v", 1, {"C": 0.5}, 4, (cv - 0.01, cv + 0.01), cv, 0.0141, 1.5, holdout, se, 0.5)


def report(ceiling_accuracy: float | None = 0.78) -> ExperimentReport:
    return ExperimentReport(
        experiment="tiny", description="two candidates", estimator="sklearn.linear_model.LogisticRegression",
        search="random search, 2 trials", metric="roc_auc", use_case="purchase_propensity",
        training_set="t1 (Delta v3, 100 rows)", holdout="label dates 2026-02-01..2026-02-07",
        folds=[FoldInfo(1, 40, 20, "2026-01-20..2026-01-22"), FoldInfo(2, 60, 20, "2026-01-23..2026-01-25")],
        rows=[row("A", 0.86, 0.01, 0.81), row("B", 0.92, 0.01, 0.80)], selected="A",
        selected_metrics={"roc_auc": 0.86, "accuracy": 0.76, "threshold": 0.48}, ceiling_auc=0.9, ceiling_note="",
        ceiling_accuracy=ceiling_accuracy, majority_accuracy=0.6, positive_rate=0.6, search_seconds=30.0,
        importance=pd.DataFrame({"feature": ["z1", "z2"], "mean": [0.04, 0.01], "std": [0.002, 0.001]}),
        registered="models:/purchase_propensity/2 as challenger; gate passed",
    )  # fmt: skip


def test_shares_of_the_ceiling_and_standard_errors_above_it():
    r = report()
    assert r.ceiling_share(0.86) == pytest.approx(0.9)  # 0.36 of the 0.4 from 0.5 to 0.9
    assert r.above_ceiling(r.rows[0]) == pytest.approx(-4.0)
    assert r.above_ceiling(r.rows[1]) == pytest.approx(2.0)
    assert r.trials_per_minute == 4.0


def test_the_markdown_names_the_candidate_above_the_ceiling_and_judges_the_accuracy_bar():
    text = markdown(report())
    assert (
        "| A | C=0.5 | 0.8100 ± 0.0141 | 0.800 0.820 | 0.8600 | 90% | -4.0 | 0.8000 | 0.5000 | 0.7500 | 2.0 |" in text
    )
    assert "| B | C=0.5 | 0.8000 ± 0.0141 | 0.790 0.810 | 0.9200 | 105% | +2.0 |" in text
    assert "the selected candidate goes 90.0% of the way from 0.5 to it; above it by more than one standard " \
           "error: B (suspect leakage)." in text  # fmt: skip
    assert (
        "Predicting the majority class reaches 0.600 accuracy on the holdout (positive rate 0.600); the "
        "generator's own ground-truth score, at its best threshold, reaches 0.780. So no model can pass an "
        "accuracy bar of 0.85 on this data: the outcome is noisy given everything knowable"
    ) in text
    assert "2 trial(s) x 2 folds in 30.0 s (4.0 trials/min, n_jobs=1)" in text
    assert "| 2 | 60 | 2026-01-23..2026-01-25 | 20 |" in text and "| z1 | 0.0400 | 0.0020 |" in text
    assert "So a model can pass an accuracy bar of 0.85 on this data: the bar is meaningful here." in markdown(
        report(ceiling_accuracy=0.9)
    )
    assert "without ground truth, the 0.85 bar cannot be judged" in markdown(report(ceiling_accuracy=None))
    skewed = report()
    skewed.majority_accuracy = 0.9
    assert "(positive rate 0.600): a constant prediction already passes an accuracy bar of 0.85, so the bar says " \
           "nothing about a model on this data" in markdown(skewed)  # fmt: skip


def test_a_perfect_ranking_above_the_ceiling_is_infinitely_many_errors_above_it():
    r = report()
    r.rows.append(row("C", 1.0, 0.0, 0.79))  # a perfect holdout ranking: its standard error is 0
    assert r.above_ceiling(r.rows[2]) == float("inf") and r.suspicious == ["B", "C"]
    assert "| C | C=0.5 | 0.7900 ± 0.0141 | 0.780 0.800 | 1.0000 | 125% | +inf |" in markdown(r)
    assert '<div class="verdict breached">' in html(r, b"")


def test_the_html_inlines_the_plot_and_flags_the_rows(tmp_path):
    page = html(report(), b"\x89PNG fake")
    assert '<div class="verdict breached">' in page  # B is above the ceiling
    assert '<tr class="best"><td>A</td>' in page and '<tr class="bad"><td>B</td>' in page
    assert "src='data:image/png;base64,iVBORyBmYWtl'" in page
    assert trials_csv(report()).splitlines()[1].startswith("A,v,1,{'C': 0.5},0.81,0.0141,0.8,0.8200000000000001")
    paths = write(report(), tmp_path / "r", b"\x89PNG fake")
    assert sorted(p.name for p in paths.values()) == [
        "calibration.png",
        "experiment.html",
        "experiment.md",
        "trials.csv",
    ]


def test_best_accuracy_cuts_between_distinct_scores_only():
    assert best_accuracy(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.3, 0.1])) == 1.0
    assert best_accuracy(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1])) == 0.75
    assert best_accuracy(np.array([1, 1, 0]), np.array([0.5, 0.5, 0.5])) == pytest.approx(2 / 3)  # a tie: all or none
