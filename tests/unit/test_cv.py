"""Time-series cross-validation (pitlake.training.cv): exact folds on a hand-built frame, a canary row
whose label horizon reaches into a validation window, the warm-up dates, and the no-leak rule on random frames."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pitlake.core.errors import ConfigError, InputError
from pitlake.training.cv import expanding_folds, mean_and_spread

DAY = timedelta(days=1)


def frame(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """(label_date, label_time) rows."""
    return pd.DataFrame(
        {
            "label_date": [date.fromisoformat(d) for d, _ in rows],
            "label_time": [datetime.fromisoformat(t) for _, t in rows],
        }
    )


ROWS = [(f"2026-01-0{d}", f"2026-01-0{d}T12:00:00") for d in range(1, 9)] + [
    ("2026-01-03", "2026-01-03T00:30:00"),  # 8: the canary, its horizon ends inside fold 1's validation window
    ("2026-01-04", "2026-01-04T00:00:00"),  # 9: its horizon ends exactly when fold 2 validates: it may train
]


def test_expanding_folds_validate_on_newer_blocks_and_train_on_purged_older_rows():
    # Jan 1 and 2 are the warm-up (the oldest label, Jan 1 12:00, is known only from Jan 2 12:00); Jan 3..8
    # make four blocks of 1, 1, 2, 2 dates, the first training only.
    folds = expanding_folds(frame(ROWS), n_folds=3, purge=DAY)
    assert [f.valid_dates for f in folds] == [
        (date(2026, 1, 4),),
        (date(2026, 1, 5), date(2026, 1, 6)),
        (date(2026, 1, 7), date(2026, 1, 8)),
    ]
    assert [f.valid_start for f in folds] == [datetime(2026, 1, 4), datetime(2026, 1, 5), datetime(2026, 1, 7)]
    assert [list(f.train_index) for f in folds] == [[0, 1], [0, 1, 2, 8, 9], [0, 1, 2, 3, 4, 8, 9]]
    assert [list(f.valid_index) for f in folds] == [[3, 9], [4, 5], [6, 7]]
    assert 8 not in folds[0].train_index  # the canary never trains the fold whose window holds its outcome


def test_uneven_dates_give_the_newest_blocks_one_date_more():
    rows = [(f"2026-01-0{d}", f"2026-01-0{d}T06:00:00") for d in range(1, 10)]
    folds = expanding_folds(frame(rows), n_folds=3, purge=DAY)  # warm-up Jan 1-2, then blocks of 1, 2, 2, 2 dates
    assert [f.valid_dates[0] for f in folds] == [date(2026, 1, 4), date(2026, 1, 6), date(2026, 1, 8)]
    assert [len(f.valid_dates) for f in folds] == [2, 2, 2]


def test_too_few_dates_after_the_warm_up_or_too_few_folds_are_one_line_errors():
    with pytest.raises(ConfigError, match="n_folds must be at least 2"):
        expanding_folds(frame(ROWS), n_folds=1, purge=DAY)
    with pytest.raises(InputError, match=r"spans 8 label date\(s\), 2 of them before the oldest label's 1-day horizon "
                       r"ends: 8 folds need 9 dates after those, it has 6; use fewer folds"):  # fmt: skip
        expanding_folds(frame(ROWS[:8]), n_folds=8, purge=DAY)
    with pytest.raises(InputError, match=r"spans 8 label date\(s\), 8 of them before the oldest label's 7-day"):
        expanding_folds(frame(ROWS), n_folds=3, purge=7 * DAY)


def test_no_fold_ever_trains_on_a_row_whose_horizon_reaches_its_validation_window():
    rng = np.random.default_rng(3)
    for _ in range(50):
        start = datetime(2026, 1, 1)
        times = [start + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 40, 300)]
        data = pd.DataFrame({"label_time": times, "label_date": [t.date() for t in times]})
        purge = timedelta(days=int(rng.integers(1, 5)))
        for fold in expanding_folds(data, n_folds=int(rng.integers(2, 5)), purge=purge):
            assert (data["label_time"].iloc[fold.train_index] + purge <= fold.valid_start).all()
            assert not set(fold.train_index) & set(fold.valid_index)
            assert (data["label_time"].iloc[fold.valid_index] >= fold.valid_start).all()


def test_mean_and_spread_are_the_mean_and_sample_standard_deviation():
    assert mean_and_spread([0.7, 0.8, 0.9]) == pytest.approx((0.8, 0.1))
    assert mean_and_spread([0.75]) == (0.75, 0.0)


def test_the_warm_up_lasts_until_a_usable_label_is_known():
    # Rows 0-2 (Jan 1-3) have no feature value yet: with them marked unusable, the warm-up runs until the
    # oldest usable label (row 3, Jan 4 12:00) is known, Jan 5 12:00; Jan 6..8 then make three blocks of one
    # date. Without the mask the warm-up is Jan 1-2 and Jan 3..8 make three blocks of two.
    rows = [(f"2026-01-0{d}", f"2026-01-0{d}T12:00:00") for d in range(1, 9)]
    usable = np.array([False, False, False, True, True, True, True, True])
    folds = expanding_folds(frame(rows), n_folds=2, purge=DAY, usable=usable)
    assert [f.valid_dates for f in folds] == [(date(2026, 1, 7),), (date(2026, 1, 8),)]
    assert [list(f.train_index) for f in folds] == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]]
    assert [f.valid_dates for f in expanding_folds(frame(rows), n_folds=2, purge=DAY)] == [
        (date(2026, 1, 5), date(2026, 1, 6)),
        (date(2026, 1, 7), date(2026, 1, 8)),
    ]
