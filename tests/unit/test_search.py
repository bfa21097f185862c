"""An experiment's search over the time-series folds (pitlake.training.search), on a frame whose signal is
known: every trial is scored on every fold, the best trial is the one with the best mean, a config without
a search is one cross-validated trial."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pitlake.training.experiments import load_experiment
from pitlake.training.search import run_search

FEATURES = ["count_page_views_7d", "count_purchases_28d", "segment", "tenure_days"]


def signal_frame(n_days: int = 40, per_day: int = 30, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_days):
        for _ in range(per_day):
            z = rng.normal()
            t = datetime(2026, 1, 1) + timedelta(days=d, hours=int(rng.integers(6, 20)))
            label = int(rng.random() < 1 / (1 + np.exp(-2.5 * z)))
            rows.append((t, t.date(), label, z, float(rng.poisson(1)), ["a", "b"][d % 2], float(rng.integers(1, 99))))
    return pd.DataFrame(rows, columns=["label_time", "label_date", "label", *FEATURES])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return signal_frame()


def test_a_random_search_scores_every_trial_on_every_fold_and_keeps_the_best_mean(frame):
    experiment = dataclasses.replace(load_experiment("hgb_search"), n_iter=3, folds=3)
    result = run_search(experiment, frame, label="label", features=FEATURES, purge=timedelta(days=7))
    assert len(result.trials) == 3 and len(result.folds) == 3
    assert all(len(t.fold_scores) == 3 for t in result.trials)
    assert result.best.mean == max(t.mean for t in result.trials)
    assert {"learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "early_stopping"} <= set(
        result.best.params
    )
    assert 0.01 <= result.best.params["learning_rate"] <= 0.3 and isinstance(result.best.params["max_leaf_nodes"], int)
    # The label's own driver (the latent z, here count_page_views_7d) scored on the same folds is the ceiling:
    # the best trial learns most of it and, with no leak, cannot beat it by more than noise.
    from sklearn.metrics import roc_auc_score

    oracle = np.mean([
        roc_auc_score(frame["label"].iloc[f.valid_index], frame["count_page_views_7d"].iloc[f.valid_index])
        for f in result.folds
    ])  # fmt: skip
    assert 0.6 < result.best.mean <= oracle + 0.02, (result.best.mean, oracle)


def test_without_a_search_the_config_is_one_cross_validated_trial(frame):
    experiment = dataclasses.replace(load_experiment("baseline"), folds=3)
    result = run_search(experiment, frame, label="label", features=FEATURES, purge=timedelta(days=7))
    [trial] = result.trials
    assert trial.params == {"max_iter": 1000} and len(trial.fold_scores) == 3
    assert trial.mean == pytest.approx(sum(trial.fold_scores) / 3)
    # Every fold trained only on rows whose 7-day horizon ended before its validation window.
    for fold in result.folds:
        assert (frame["label_time"].iloc[fold.train_index] + timedelta(days=7) <= fold.valid_start).all()


def test_a_fold_with_one_class_is_one_line_before_anything_is_fit(frame):
    from pitlake.core.errors import InputError

    experiment = dataclasses.replace(load_experiment("baseline"), folds=3)
    late = frame.copy()
    # Every label from Jan 26 on is 0: fold 3 validates on those dates alone (blocks after the warm-up,
    # Jan 1-8: 32 dates, 8 each; fold 3 validates Feb 2..9).
    late.loc[late["label_date"] >= datetime(2026, 1, 26).date(), "label"] = 0
    with pytest.raises(InputError, match=r"^t: fold 3's validation rows \(240, validating from 2026-02-02\) hold only "
                       r"label=0: a fold needs both classes"):  # fmt: skip
        run_search(experiment, late, label="label", features=FEATURES, purge=timedelta(days=7), what="t")
