"""PSI, calibration and realized metrics against values worked out by hand (no value comes from the code under test)."""

from __future__ import annotations

import math

import pytest
from pitlake.monitoring.metrics import EPS, calibration, psi, psi_label, realized_metrics


def test_categorical_psi_of_two_tiny_distributions():
    # ref a,a,b,b → a 0.5, b 0.5; cur a,a,a,b → a 0.75, b 0.25; "other" and null empty on both sides (0 terms).
    # PSI = (0.75 - 0.5) ln(0.75 / 0.5) + (0.25 - 0.5) ln(0.25 / 0.5) = 0.25 ln 1.5 + 0.25 ln 2 = 0.25 ln 3
    assert psi(["a", "a", "b", "b"], ["a", "a", "a", "b"], categorical=True) == pytest.approx(0.25 * math.log(3))
    assert psi(["a", "b"], ["b", "a"], categorical=True) == 0.0


def test_categorical_psi_puts_unseen_values_in_other_and_smooths_empty_bins():
    # ref a 0.5, b 0.5, other 0 (→ EPS); cur a 0.5, b 0 (→ EPS), other ("c") 0.5.
    # b: (EPS - 0.5) ln(EPS / 0.5) = (0.5 - EPS) ln 5000; other: (0.5 - EPS) ln(0.5 / EPS) = (0.5 - EPS) ln 5000.
    assert EPS == 1e-4
    assert psi(["a", "b"], ["a", "c"], categorical=True) == pytest.approx(2 * 0.4999 * math.log(5000))


def test_numeric_psi_bins_on_reference_quantiles_with_out_of_range_values_in_the_end_bins():
    # ref 1,2,3,4 with 2 bins: quantiles 1, 2.5, 4 → bins (-inf, 2.5) and [2.5, inf), 0.5 each.
    assert psi([1, 2, 3, 4], [0, 2, 3, 100], bins=2) == 0.0  # 0 and 100 land in the end bins: 0.5 / 0.5
    # cur 1,1,1,4 → 0.75 / 0.25: 0.25 ln 3, as in the categorical case.
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(0.25 * math.log(3))


def test_numeric_psi_counts_missing_values_as_their_own_bin():
    # cur 1, None, NaN, 4 → bins 0.25 / 0.25, null 0.5; ref 0.5 / 0.5, null 0 (→ EPS).
    # 2 * (0.25 - 0.5) ln(0.25 / 0.5) + (0.5 - EPS) ln(0.5 / EPS) = 0.5 ln 2 + 0.4999 ln 5000
    expected = 0.5 * math.log(2) + 0.4999 * math.log(5000)
    assert psi([1, 2, 3, 4], [1, None, float("nan"), 4], bins=2) == pytest.approx(expected)


def test_numeric_psi_with_ten_bins_and_a_collapsed_current_sample():
    # ref 0..9: the 0.1-quantiles are 0, 0.9, 1.8, ..., 8.1, 9: one reference value per bin (0.1 each).
    # cur ten 0s: the first bin holds 1.0, the other nine EPS.
    # (1 - 0.1) ln(1 / 0.1) + 9 (EPS - 0.1) ln(EPS / 0.1) = 0.9 ln 10 + 9 * 0.0999 ln 1000
    expected = 0.9 * math.log(10) + 9 * 0.0999 * math.log(1000)
    assert psi(list(range(10)), [0] * 10) == pytest.approx(expected)


def test_numeric_psi_of_a_constant_reference_has_one_value_bin():
    # ref all 5: a single bin [-inf, inf) besides null; cur 1 and 9 both land in it.
    assert psi([5, 5, 5, 5], [1, 9]) == 0.0
    # cur None, 5: value bin 0.5 vs 1, null 0.5 vs EPS → 0.5 ln 2 + 0.4999 ln 5000
    assert psi([5, 5, 5, 5], [None, 5]) == pytest.approx(0.5 * math.log(2) + 0.4999 * math.log(5000))


def test_psi_refuses_an_empty_side():
    with pytest.raises(ValueError, match="values on both sides"):
        psi([1, 2], [])


def test_psi_readings():
    assert [psi_label(v) for v in (0.05, 0.1, 0.2, 0.21)] == ["stable", "moderate", "moderate", "significant"]


def test_calibration_per_uniform_bin_with_ece_and_brier():
    y = [0, 0, 1, 1, 1]
    p = [0.05, 0.15, 0.15, 0.85, 0.95]
    cal = calibration(y, p)
    used = [(b.lower, b.count, b.mean_predicted, b.observed_rate) for b in cal.bins if b.count]
    assert used == [
        (0.0, 1, pytest.approx(0.05), 0.0),
        (0.1, 2, pytest.approx(0.15), 0.5),
        (0.8, 1, pytest.approx(0.85), 1.0),
        (0.9, 1, pytest.approx(0.95), 1.0),
    ]
    assert len(cal.bins) == 10 and sum(b.count for b in cal.bins) == 5
    # ECE = 1/5 * 0.05 + 2/5 * |0.15 - 0.5| + 1/5 * 0.15 + 1/5 * 0.05 = 0.01 + 0.14 + 0.03 + 0.01
    assert cal.ece == pytest.approx(0.19)
    # Brier = (0.05² + 0.15² + 0.85² + 0.15² + 0.05²) / 5 = 0.7725 / 5
    assert cal.brier == pytest.approx(0.1545)
    assert calibration([1], [1.0]).bins[-1].count == 1  # a score of 1.0 is in the last bin


def test_realized_metrics_of_three_positives_and_three_negatives():
    y = [1, 1, 1, 0, 0, 0]
    p = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1]
    # Pairs (positive, negative) ordered correctly: 0.9 and 0.8 beat all three negatives (6), 0.3 beats
    # 0.2 and 0.1 but not 0.7 (2): 8 of 9.
    m = realized_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(8 / 9)
    assert (m["n"], m["positives"], m["positive_rate"]) == (6, 3, 0.5)
    assert m["mean_score"] == pytest.approx(0.5)  # 3.0 / 6
    # Brier = (0.1² + 0.2² + 0.7² + 0.7² + 0.2² + 0.1²) / 6 = 1.08 / 6
    assert m["brier"] == pytest.approx(0.18)
    # one prediction per bin: ECE = (0.1 + 0.2 + 0.7 + 0.7 + 0.2 + 0.1) / 6 = 2 / 6
    assert m["ece"] == pytest.approx(1 / 3)


def test_realized_roc_auc_is_none_with_one_class_and_ties_count_half():
    assert realized_metrics([1, 1], [0.2, 0.9])["roc_auc"] is None
    assert realized_metrics([1, 0], [0.5, 0.5])["roc_auc"] == 0.5
    empty = realized_metrics([], [])
    assert (empty["n"], empty["roc_auc"], empty["brier"], empty["ece"]) == (0, None, None, None)
