"""A low-latency form of a fitted candidate pipeline, proven equal to it before it is used.

scikit-learn's per-call overhead dominates a one-row prediction (pandas column selection in the
``ColumnTransformer``, input validation in every step, a joblib dispatch per tree of a forest):
tens of milliseconds here for a ``random_forest`` candidate. :func:`compile_pipeline` turns the
candidate pipelines of :mod:`pitlake.training.candidates` into plain numpy, reusing the fitted
parameters as they are:

* numeric parts (``SimpleImputer`` with its missing indicator, then optionally ``StandardScaler``):
  the same elementwise operations in the same order (``where(isnan, statistic, x)``, then
  ``(x - mean_) / scale_``);
* categorical parts (imputer + ``OneHotEncoder``): each column's encoding is a function of its value
  alone, so it is tabulated by running the fitted part itself on every known category, null and an
  unseen value; a row's encoding is the sum of its columns' tabulated contributions (0/1 entries:
  exact);
* a ``RandomForestClassifier``: each tree's ``tree_.predict`` on float32 inputs, accumulated in
  estimator order and divided by their count, as ``predict_proba`` does; any other estimator's own
  ``predict_proba``.

:func:`compile_pipeline` then scores probe rows (the model's input example, all-null rows, unseen
categories) both ways and returns the compiled form only if every probability is identical; else
None, and serving uses the pipeline itself. The inputs are the served values as
:func:`pitlake.training.dataset.model_inputs` defines them: numeric as float64 with null as NaN,
categorical as the value or None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
UNSEEN = "\x00pitlake-unseen-category"

Block = Callable[[list[dict[str, Any]]], np.ndarray]


def _numeric_block(pipeline: Any, columns: list[str]) -> Block | None:
    steps = dict(pipeline.steps) if hasattr(pipeline, "steps") else {"impute": pipeline}
    imputer, scaler = steps.get("impute"), steps.get("scale")
    if imputer is None or set(steps) - {"impute", "scale"} or type(imputer).__name__ != "SimpleImputer":
        return None
    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    indicator = imputer.indicator_.features_ if imputer.add_indicator else None

    def block(values: list[dict[str, Any]]) -> np.ndarray:
        x = np.array([[v.get(c) for c in columns] for v in values], dtype=np.float64)
        missing = np.isnan(x)
        out = np.where(missing, stats, x)
        if indicator is not None:
            out = np.hstack((out, missing[:, indicator].astype(np.float64)))
        if scaler is not None:
            if scaler.with_mean:
                out -= scaler.mean_
            if scaler.with_std:
                out /= scaler.scale_
        return out

    return block


def _categorical_block(part: Any, columns: list[str]) -> Block:
    """Each column's additive contribution, tabulated with the fitted part itself."""

    def run(rows: list[list[Any]]) -> np.ndarray:
        frame = pd.DataFrame(rows, columns=columns, dtype=object)
        out = part.transform(frame)
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    encoder = dict(part.steps).get("one_hot") if hasattr(part, "steps") else None
    known = [list(c) for c in encoder.categories_] if encoder is not None else [[] for _ in columns]
    base = run([[None] * len(columns)])[0]
    tables: list[dict[Any, np.ndarray]] = []
    unseen: list[np.ndarray] = []
    for j in range(len(columns)):
        values = [v for v in known[j] if not (isinstance(v, float) and np.isnan(v))]
        probes = [*values, UNSEEN]
        rows = [[None] * j + [v] + [None] * (len(columns) - j - 1) for v in probes]
        encoded = run(rows) - base
        table = {v: encoded[i] for i, v in enumerate(values)}
        table[None] = np.zeros_like(base)
        tables.append(table)
        unseen.append(encoded[-1])

    def block(values: list[dict[str, Any]]) -> np.ndarray:
        out = np.tile(base, (len(values), 1))
        for i, row in enumerate(values):
            for j, c in enumerate(columns):
                value = row.get(c)
                out[i] += tables[j].get(value, unseen[j]) if isinstance(value, str) or value is None else unseen[j]
        return out

    return block


class CompiledPipeline:
    """``predict_proba`` of a candidate pipeline on served values (list of dicts), in numpy."""

    def __init__(self, blocks: list[Block], estimator: Any) -> None:
        self.blocks = blocks
        self.estimator = estimator
        forest = type(estimator).__name__ == "RandomForestClassifier" and getattr(estimator, "n_outputs_", 1) == 1
        self._trees = [(t.tree_, int(estimator.n_classes_)) for t in estimator.estimators_] if forest else None

    def predict_proba(self, values: list[dict[str, Any]]) -> np.ndarray:
        z = np.hstack([b(values) for b in self.blocks]) if len(self.blocks) > 1 else self.blocks[0](values)
        if self._trees is None:
            return np.asarray(self.estimator.predict_proba(z))
        x = np.ascontiguousarray(z, dtype=np.float32)
        out = np.zeros((len(values), self._trees[0][1]), dtype=np.float64)
        for tree, n_classes in self._trees:
            out += tree.predict(x)[:, :n_classes]
        out /= len(self._trees)
        return out


def _compile(model: Any) -> CompiledPipeline | None:
    steps = dict(getattr(model, "steps", []))
    preprocess, estimator = steps.get("preprocess"), steps.get("model")
    if preprocess is None or estimator is None or len(steps) != 2:
        return None
    blocks: list[Block] = []
    for name, part, columns in preprocess.transformers_:
        if part == "drop" or name == "remainder":
            continue
        if name == "categorical":
            blocks.append(_categorical_block(part, list(columns)))
        else:
            block = _numeric_block(part, list(columns))
            if block is None:
                return None
            blocks.append(block)
    return CompiledPipeline(blocks, estimator) if blocks else None


def categories(model: Any) -> dict[str, list[Any]]:
    """The categories the pipeline's one-hot encoder learned, per categorical column."""
    out: dict[str, list[Any]] = {}
    for name, part, columns in model.named_steps["preprocess"].transformers_:
        encoder = dict(part.steps).get("one_hot") if name == "categorical" and hasattr(part, "steps") else None
        if encoder is not None:
            out |= {
                c: [v for v in cats if isinstance(v, str)] for c, cats in zip(columns, encoder.categories_, strict=True)
            }
    return out


def probes(
    features: Sequence[str], numeric: Sequence[str], known: dict[str, list[Any]], n: int = 64
) -> list[dict[str, Any]]:
    """Rows to prove equality on: random mixes of values, nulls, known and unseen categories; all-null; extremes."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = [dict.fromkeys(features)]
    rows.append({f: (0.0 if f in numeric else UNSEEN) for f in features})
    rows.append({f: (1e6 if f in numeric else None) for f in features})
    rows.append({f: (-3.5 if f in numeric else "") for f in features})
    for _ in range(n):
        row: dict[str, Any] = {}
        for f in features:
            if rng.random() < 0.2:
                row[f] = None
            elif f in numeric:
                row[f] = int(rng.integers(0, 12)) if rng.random() < 0.5 else float(rng.gamma(2.0, 20.0))
            else:
                choices = [*known.get(f, []), UNSEEN]
                row[f] = choices[int(rng.integers(0, len(choices)))]
        rows.append(row)
    return rows


def compile_pipeline(model: Any, features: Sequence[str], numeric: Sequence[str]) -> CompiledPipeline | None:
    """The compiled form of ``model``, or None when it is not a candidate pipeline or differs on any probe."""
    from pitlake.training.dataset import model_inputs

    try:
        compiled = _compile(model)
        if compiled is None:
            return None
        rows = probes(features, numeric, categories(model))
        frame = pd.DataFrame({f: [r.get(f) for r in rows] for f in features})
        expected = model.predict_proba(model_inputs(frame, list(features), numeric=list(numeric)))
        got = compiled.predict_proba(rows)
    except Exception as err:  # an unexpected structure: serve with the pipeline itself
        log.warning("serving the pipeline uncompiled: %s", err)
        return None
    if got.shape != expected.shape or not np.array_equal(got, expected):
        log.warning("serving the pipeline uncompiled: the compiled form differs by %s", np.abs(got - expected).max())
        return None
    return compiled
