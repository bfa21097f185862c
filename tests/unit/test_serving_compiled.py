"""The compiled form of a candidate pipeline gives exactly the pipeline's probabilities, or is not used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pitlake.serving.compiled import UNSEEN, compile_pipeline
from pitlake.training.candidates import make_pipeline
from pitlake.training.dataset import feature_kinds, model_inputs

from tests.builders import training_frame


@pytest.mark.parametrize("candidate", ["logistic_regression", "random_forest"])
def test_the_compiled_candidate_equals_the_pipeline_on_rows_it_never_saw(candidate):
    frame, label = training_frame(n=300, seed=4)
    features = list(frame.columns)
    numeric, categorical = feature_kinds(frame, features)
    model = make_pipeline(candidate, numeric, categorical, seed=7).fit(model_inputs(frame, features), label)
    compiled = compile_pipeline(model, features, numeric)
    assert compiled is not None

    fresh, _ = training_frame(n=200, seed=99)
    fresh.loc[::3, "segment"] = "a segment nobody had"  # unseen category
    fresh.loc[::4, "count_page_views_1d"] = np.nan
    fresh.loc[1, features] = np.nan  # a key the store never saw: every feature null
    rows = [{f: (None if pd.isna(v) else v) for f, v in r.items()} for r in fresh.to_dict("records")]
    expected = model.predict_proba(model_inputs(fresh, features, numeric=numeric))
    assert np.array_equal(compiled.predict_proba(rows), expected)
    assert compiled.predict_proba([dict.fromkeys(features, None) | {"country": UNSEEN}]).shape == (1, 2)


def test_a_pipeline_of_another_shape_is_served_uncompiled():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    frame, label = training_frame(n=100, seed=4)
    features = [c for c in frame.columns if c.startswith("count_")]
    model = Pipeline([("preprocess", FunctionTransformer(np.nan_to_num)), ("model", LogisticRegression())])
    model.fit(model_inputs(frame, features), label)
    assert compile_pipeline(model, features, features) is None
