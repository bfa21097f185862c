"""Time-series cross-validation on label time: expanding-window folds with the holdout split's purge.

The first label dates, before the oldest (usable) label's horizon has ended, can only train (the warm-up).
The dates after them are cut into ``n_folds + 1`` consecutive blocks (the newest blocks one date larger
when they do not divide evenly); the first block trains only. Fold ``i`` validates on block ``i + 1`` and
trains on every older row whose label horizon has ended by the first validation date
(``label_time + purge <= valid_start``, the rule of :func:`pitlake.training.dataset.time_split`), so no
fold trains on a row whose outcome it could only know from inside its validation window. Later folds
train on more history (an expanding window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from pitlake.core.errors import ConfigError, InputError


@dataclass(frozen=True)
class Fold:
    """One fold: row positions (``iloc``) to train and validate on, and the instant that separates them."""

    number: int
    train_index: np.ndarray
    valid_index: np.ndarray
    valid_dates: tuple[date, ...]
    valid_start: datetime


def expanding_folds(
    frame: pd.DataFrame,
    *,
    n_folds: int,
    purge: timedelta,
    time_column: str = "label_time",
    date_column: str = "label_date",
    usable: np.ndarray | None = None,
    what: str = "training set",
) -> list[Fold]:
    """``n_folds`` expanding-window folds over ``frame``'s label dates, oldest first (see the module).

    ``usable`` marks the rows a model can learn from (e.g. with any feature value): the warm-up lasts
    until the oldest *usable* label's horizon has ended, so no fold trains only on rows before the
    feature history began. Every row still trains and validates the folds its times allow.
    """
    if n_folds < 2:
        raise ConfigError(f"n_folds must be at least 2, got {n_folds}: one fold is the holdout split")
    label_dates = pd.to_datetime(frame[date_column]).dt.date
    times = pd.to_datetime(frame[time_column])
    all_dates = sorted(label_dates.unique())
    first = times[usable].min() if usable is not None and usable.any() else times.min()
    warm_up = [d for d in all_dates if datetime.combine(d, datetime.min.time()) < first + purge]
    dates = all_dates[len(warm_up) :]
    if len(dates) < n_folds + 1:
        raise InputError(
            f"{what} spans {len(all_dates)} label date(s), {len(warm_up)} of them before the oldest "
            f"{'usable ' if usable is not None else ''}label's "
            f"{purge.days}-day horizon ends: {n_folds} folds need {n_folds + 1} dates after those, it has "
            f"{len(dates)}; use fewer folds or a wider label range"
        )
    base = len(dates) // (n_folds + 1)
    extra = len(dates) - base * (n_folds + 1)  # the newest `extra` blocks take one date more
    sizes = [base] * (n_folds + 1 - extra) + [base + 1] * extra
    bounds = np.cumsum([0, *sizes])
    folds = []
    for number in range(1, n_folds + 1):
        valid_dates = tuple(dates[bounds[number] : bounds[number + 1]])
        valid_start = datetime.combine(valid_dates[0], datetime.min.time())
        valid_mask = label_dates.isin(valid_dates).to_numpy() & (times >= valid_start).to_numpy()
        train_mask = (times + purge <= valid_start).to_numpy()  # never empty: the warm-up's horizon has ended
        folds.append(Fold(number, np.flatnonzero(train_mask), np.flatnonzero(valid_mask), valid_dates, valid_start))
    return folds


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """The mean of fold metrics and their sample standard deviation (0 for a single value)."""
    if not values:
        raise ValueError("no fold metrics")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
