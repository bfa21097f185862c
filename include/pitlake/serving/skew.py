"""Training/serving skew check: what the app serves against the training-set assembly at the same instant.

For a sample of keys and an instant ``at``, the offline side is a training set's assembly itself:
a spine of ``(keys, at)`` joined to the use case's views by
:func:`~pitlake.training_set.build.build_training_set` (each table read at the Delta version the
online store's last materialization of it read), and the champion applied to those rows as
training applies it (:func:`~pitlake.training.dataset.model_inputs`). The online side is the app's
``/features`` and ``/predict`` answers for the same keys, asked at ``at`` (the app's clock). Every
feature must be equal (null for null, the same number, the same string) and every score within
``tolerance``. ``make demo`` runs it on a sample of keys; the test suite on a hand-built history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pitlake.core.settings import Settings
from pitlake.serving.materialize import view_ref
from pitlake.serving.store import OnlineStore, last_materialization
from pitlake.training_set.build import UseCase

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

TOLERANCE = 1e-9


@dataclass
class SkewReport:
    at: str
    model_version: int
    keys: int
    found: int
    stale: int
    values_compared: int
    max_score_difference: float
    versions: dict[str, int]
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def line(self) -> str:
        head = (
            f"served vs offline at {self.at}: {self.keys} keys ({self.found} found, {self.stale} stale), "
            f"{self.values_compared} feature values, model v{self.model_version}"
        )
        if self.ok:
            return f"{head}: all equal, scores within {self.max_score_difference:.1e}"
        return f"{head}: {len(self.mismatches)} MISMATCHES, first: {self.mismatches[0]}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def same(a: Any, b: Any) -> bool:
    """Equal as feature values: both null (None/NaN), equal numbers (2 == 2.0), or equal strings."""
    a_null = a is None or (isinstance(a, float) and math.isnan(a))
    b_null = b is None or (isinstance(b, float) and math.isnan(b))
    if a_null or b_null:
        return a_null and b_null
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return float(a) == float(b)


def offline_rows(
    spark: SparkSession, settings: Settings, use_case: UseCase, keys: Sequence[tuple[str, ...]], at: datetime,
    versions: dict[str, int],
) -> pd.DataFrame:  # fmt: skip
    """The training-set rows of ``keys`` at ``at``: the spine ``(keys, at)`` joined as a training set joins it."""
    from pitlake.training_set.build import build_training_set, feature_inputs

    ddl = ", ".join(f"{k} string" for k in use_case.keys) + f", {use_case.spine_time} timestamp"
    spine = spark.createDataFrame([(*k, at) for k in keys], ddl)
    joined = build_training_set(
        spine, feature_inputs(spark, settings, use_case, versions), spine_time=use_case.spine_time
    )
    return joined.toPandas()


def check_no_skew(
    spark: SparkSession,
    settings: Settings,
    client: Any,
    store: OnlineStore,
    use_case: UseCase,
    keys: Sequence[tuple[str, ...]],
    at: datetime,
    tolerance: float = TOLERANCE,
) -> SkewReport:
    """Compare the app (``client``: an HTTP client of it, whose clock reads ``at``) with the offline rows."""
    import numpy as np

    from pitlake.serving.champion import load_champion
    from pitlake.training.dataset import model_inputs

    views = use_case.feature_views()
    versions = {}
    for view in views:
        record = last_materialization(store, view_ref(view))
        if record is None:
            raise ValueError(f"{view.table} was never materialized: nothing to compare")
        versions[view.table] = int(record["delta_version"])
    entities = [dict(zip(use_case.keys, k, strict=True)) for k in keys]
    served, scores, model_versions = [], [], set()
    for i in range(0, len(entities), 1000):
        chunk = entities[i : i + 1000]
        features = client.post("/features", json={"entities": chunk})
        predicted = client.post("/predict", json={"entities": chunk})
        if features.status_code != 200 or predicted.status_code != 200:
            raise RuntimeError(
                f"the app answered {features.status_code}/{predicted.status_code}: {features.text[:200]}"
            )
        served += features.json()["results"]
        body = predicted.json()
        model_versions.add(body["model_version"])
        scores += [p["score"] for p in body["predictions"]]
    champion = load_champion(settings, use_case.name)
    offline = offline_rows(spark, settings, use_case, keys, at, versions)
    offline = offline.set_index(list(use_case.keys)).loc[[k[0] if len(k) == 1 else k for k in keys]]
    expected = champion.model.predict_proba(model_inputs(offline.reset_index(), champion.features))[:, 1]
    mismatches = []
    compared = 0
    for key, result, row in zip(keys, served, offline.to_dict("records"), strict=True):
        for ref, value in result["features"].items():
            name = ref.split(":", 1)[1]
            compared += 1
            if not same(value, row[name]):
                mismatches.append(f"{key} {ref}: served {value!r}, offline {row[name]!r}")
    differences = np.abs(np.asarray(scores) - expected)
    for key, diff, s, e in zip(keys, differences, scores, expected, strict=True):
        if not diff <= tolerance:
            mismatches.append(f"{key} score: served {s!r}, offline {float(e)!r}")
    if model_versions != {champion.version}:
        mismatches.append(f"served by model versions {sorted(model_versions)}, champion is v{champion.version}")
    return SkewReport(
        at=at.isoformat(),
        model_version=champion.version,
        keys=len(keys),
        found=sum(r["found"] for r in served),
        stale=sum(r["stale"] for r in served),
        values_compared=compared,
        max_score_difference=float(differences.max()) if len(differences) else 0.0,
        versions=versions,
        mismatches=mismatches,
    )
