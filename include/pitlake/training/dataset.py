"""A training set as pandas, without a JVM: the pinned Delta version, a purged time split, the ground-truth ceiling.

1. :func:`read_training_set` reads ``training_sets.<use_case>`` with ``deltalake`` at the version
   the build's manifest recorded, only the ``training_set_id`` partition, and sorts the rows by
   (spine time, keys) so that a rebuild that wrote its files in another order trains the same model.
2. :func:`time_split` holds out the newest label dates (``eval_fraction`` of them) and trains
   only on rows whose label horizon ends by the start of that window (*purge*): a label at ``t``
   looks at ``(t, t + H]``, so a training row closer than ``H`` to the window would learn from
   the same future events the evaluation scores.
3. :func:`ground_truth_scores` joins the demo generator's ground truth to the evaluation rows.
   The ceiling scores each row with the customer's expected purchase rate that day (relative to
   all customers, which cancels the weekday factor): labels depend on how often a customer visits
   *and* their propensity, so that rate, not propensity alone, is the Bayes-optimal score a model
   trained on past behaviour cannot beat (except by sampling noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.training_set.build import UseCase
from pitlake.training_set.manifest import TrainingSetManifest


def vacuumed_files(path: str, version: int, partition_filters: list[tuple[str, str, Any]] | None = None) -> list[str]:
    """Data files of ``version`` that are gone from a local table (VACUUM removed them); [] if all there."""
    from deltalake import DeltaTable

    table = DeltaTable(path, version=version)
    missing = []
    for uri in table.file_uris(partition_filters=partition_filters):
        local = uri.removeprefix("file://")
        if "://" not in local and not Path(local).exists():
            missing.append(local)
    return missing


def read_training_set(settings: Settings, use_case: UseCase, manifest: TrainingSetManifest) -> pd.DataFrame:
    """The rows of one training set at the Delta version its manifest pinned, in a canonical order."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    training_set_id = manifest.training_set_id
    path = settings.table_path(use_case.table)
    version = manifest.delta_version
    partition = [("training_set_id", "=", training_set_id)]
    try:
        table = DeltaTable(path, version=version)
        gone = vacuumed_files(path, version, partition)
        if gone:
            raise InputError(
                f"{use_case.table} version {version} (training set {training_set_id}) has {len(gone)} data files "
                "removed by VACUUM: rebuild it with build_training_set --from-manifest "
                f"{training_set_id}"
            )
        frame = table.to_pandas(partitions=partition)
    except TableNotFoundError:
        raise InputError(f"{use_case.table} does not exist at {path}: run build_training_set first") from None
    except (DeltaError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"cannot read {use_case.table} version {version} at {path}: {first}") from None
    expected = manifest.row_count
    if len(frame) != expected:
        raise InputError(
            f"training set {training_set_id} has {len(frame)} rows at {use_case.table} version {version} but its "
            f"manifest says {expected}: rebuild it with build_training_set --from-manifest {training_set_id}"
        )
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    order = [use_case.spine_time, *use_case.keys]
    return frame.sort_values(order, kind="mergesort").reset_index(drop=True)


def feature_kinds(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns, by their dtype in the frame."""
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    return numeric, [c for c in features if c not in numeric]


def model_inputs(frame: pd.DataFrame, features: list[str], numeric: list[str] | None = None) -> pd.DataFrame:
    """The features as the model sees them: numeric as float64 (null → NaN), categorical as object (null → None).

    One function for both sides: training passes a training set's rows (``numeric`` from their
    dtypes), serving the served values with ``numeric`` from the model's signature, which recorded
    the training side's kinds; columns come out in ``features`` order.
    """
    if numeric is None:
        numeric, _ = feature_kinds(frame, features)
    out = pd.DataFrame(index=frame.index)
    for column in features:
        if column in numeric:
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:
            values = frame[column].astype("object")
            out[column] = values.where(values.notna(), None)
    return out


@dataclass(frozen=True)
class TimeSplit:
    """Row positions of the training and evaluation parts, and the instants that separate them."""

    train_index: np.ndarray
    eval_index: np.ndarray
    eval_start: datetime
    purge: timedelta
    train_dates: tuple[date, ...]
    purged_dates: tuple[date, ...]
    eval_dates: tuple[date, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "eval_start": self.eval_start.isoformat(),
            "purge_days": self.purge.days,
            "train_label_dates": f"{self.train_dates[0]}..{self.train_dates[-1]}" if self.train_dates else "",
            "eval_label_dates": f"{self.eval_dates[0]}..{self.eval_dates[-1]}",
            "purged_label_dates": len(self.purged_dates),
        }


def time_split(
    frame: pd.DataFrame,
    *,
    eval_fraction: float,
    purge: timedelta,
    time_column: str = "label_time",
    date_column: str = "label_date",
    what: str = "training set",
) -> TimeSplit:
    """Evaluate on the newest ``ceil(eval_fraction * dates)`` label dates; train on rows whose horizon ends before.

    Training rows satisfy ``label_time + purge <= eval_start`` (the first evaluation date, 00:00),
    so every training ``label_time`` is earlier than every evaluation one, by at least ``purge``.
    """
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    dates = sorted(pd.to_datetime(frame[date_column]).dt.date.unique())
    n_eval = max(1, math.ceil(eval_fraction * len(dates)))
    if len(dates) <= n_eval:
        raise InputError(
            f"{what} spans {len(dates)} label date(s): a time split needs older dates to train on; "
            "build it over a wider label range"
        )
    eval_dates = tuple(dates[-n_eval:])
    eval_start = datetime.combine(eval_dates[0], datetime.min.time())
    label_dates = pd.to_datetime(frame[date_column]).dt.date
    times = pd.to_datetime(frame[time_column])
    eval_mask = label_dates.isin(eval_dates).to_numpy() & (times >= eval_start).to_numpy()
    train_mask = (times + purge <= eval_start).to_numpy()
    train_dates = tuple(sorted(label_dates[train_mask].unique()))
    if not train_mask.any():
        raise InputError(
            f"{what}: no label dates end their {purge.days}-day horizon before the evaluation window "
            f"{eval_dates[0]}..{eval_dates[-1]}: build it over a wider label range"
        )
    purged = tuple(d for d in dates if d not in eval_dates and d not in train_dates)
    return TimeSplit(
        train_index=np.flatnonzero(train_mask),
        eval_index=np.flatnonzero(eval_mask),
        eval_start=eval_start,
        purge=purge,
        train_dates=train_dates,
        purged_dates=purged,
        eval_dates=eval_dates,
    )


@dataclass(frozen=True)
class GroundTruth:
    """Per evaluation row: the Bayes-optimal score (expected purchase rate) and the true propensity."""

    rate: np.ndarray
    propensity: np.ndarray


def ground_truth_dir(settings: Settings) -> Path:
    return settings.landing / "ground_truth"


def ground_truth_scores(settings: Settings, rows: pd.DataFrame, *, keys: tuple[str, ...]) -> GroundTruth | str:
    """Ground truth for each row (by customer and label date), or why there is none (e.g. real data)."""
    folder = ground_truth_dir(settings)
    if not folder.is_dir():
        return f"no ground truth at {folder} (real data)"
    if keys != ("customer_id",):
        return f"ground truth is keyed by customer_id, not {keys}"
    label_dates = pd.to_datetime(rows["label_date"]).dt.date
    parts = []
    for day in sorted(label_dates.unique()):
        files = sorted((folder / f"date={day.isoformat()}").glob("part-*.jsonl"))
        if not files:
            return f"no ground truth for label date {day} in {folder}"
        truth = pd.concat([pd.read_json(f, lines=True, dtype={"customer_id": str}) for f in files], ignore_index=True)
        truth = truth.drop_duplicates("customer_id")
        mean = float(truth["expected_purchases"].mean())
        if not mean > 0:
            return f"ground truth for {day} has no positive expected_purchases"
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": truth["customer_id"].astype(str),
                    "_label_date": day,
                    "rate": truth["expected_purchases"].astype(float) / mean,
                    "propensity": truth["propensity"].astype(float),
                }
            )
        )
    truth_all = pd.concat(parts, ignore_index=True)
    wanted = pd.DataFrame({"customer_id": rows["customer_id"].astype(str).to_numpy(), "_label_date": label_dates})
    joined = wanted.merge(truth_all, on=["customer_id", "_label_date"], how="left", validate="many_to_one")
    unmatched = int(joined["rate"].isna().sum())
    if unmatched:
        return f"{unmatched} evaluation rows have no ground truth (customers unknown to the generator)"
    return GroundTruth(rate=joined["rate"].to_numpy(), propensity=joined["propensity"].to_numpy())
