"""Experiment configs (pitlake.training.experiments): the shipped ones load, and every mistake is one line
naming the file and the field."""

from __future__ import annotations

import pytest
from pitlake.core.errors import ConfigError
from pitlake.training.experiments import EXPERIMENTS_DIR, load_experiment

GOOD = """
name: t
use_case: purchase_propensity
estimator: {class: sklearn.linear_model.LogisticRegression, params: {max_iter: 100}}
"""


def test_the_shipped_configs_load_with_what_they_declare():
    names = {p.stem: load_experiment(p) for p in EXPERIMENTS_DIR.glob("*.yaml")}
    assert sorted(names) == ["baseline", "feature_ablation", "hgb_search", "random_forest", "rf_reference"]
    reference = names["rf_reference"]
    assert reference.estimator == "sklearn.ensemble.RandomForestClassifier"
    assert reference.params == {"n_estimators": 100, "max_depth": 10, "random_state": 42, "n_jobs": 1}
    search = load_experiment("hgb_search")  # by name, from conf/experiments
    assert search.search_method == "random" and search.n_iter == 12
    assert search.space["learning_rate"] == {"loguniform": [0.01, 0.3]}
    ablation = names["feature_ablation"].variants
    assert ablation["profile_only"] == ("segment", "country", "loyalty_tier", "tenure_days")
    assert len(ablation["activity_only"]) == 14 and "count_purchases_7d" in ablation["activity_only"]
    assert len(ablation["both"]) == 18


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour: red\n", "bad.yaml: colour: unknown field"),
        ("features: [count_purchases_7d, nope]\n", "bad.yaml: features: 'nope' is a feature no view of purchase"),
        ("features: {views: [customer_wishes]}\n", "bad.yaml: features: view 'customer_wishes' is not one of"),
        ("metric: f2\n", "bad.yaml: metric: 'f2' is not one of roc_auc, pr_auc, log_loss, accuracy"),
        ("cv: {folds: 1}\n", "bad.yaml: cv.folds: must be a whole number >= 2, got 1"),
        ("search: {method: grid, space: {C: {uniform: [0.1, 1]}}}\n", "bad.yaml: search.method: 'grid' is not one of"),
        ("search: {method: random, space: {C: {loguniform: [0, 1]}}}\n",
         r"bad.yaml: search.space.C: bad range \[0, 1\]: need low < high and low > 0"),
        ("search: {method: random, space: {depth: {int: [1, 5]}}}\n",
         "bad.yaml: search.space.depth: LogisticRegression has no parameter 'depth'"),
    ],
)  # fmt: skip
def test_a_bad_field_is_one_line_naming_the_file_and_the_field(tmp_path, extra, message):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD + extra)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        ("{class: sklearn.linear_model.Nope}", "estimator.class: 'sklearn.linear_model.Nope': no such class"),
        ("{class: os.path.join}", "only scikit-learn classifiers"),
        ("{class: sklearn.linear_model.LinearRegression}", "is not a classifier with predict_proba"),
        ("{class: sklearn.linear_model.LogisticRegression, params: {trees: 3}}",
         "estimator.params.trees: LogisticRegression has no such parameter"),
    ],
)  # fmt: skip
def test_an_unknown_or_unsafe_estimator_is_refused(tmp_path, estimator, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: t\nuse_case: purchase_propensity\nestimator: {estimator}\n")
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_a_missing_file_names_the_known_experiments():
    with pytest.raises(ConfigError, match=r"experiment 'nope' not found; known in conf/experiments: baseline, "):
        load_experiment("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a/b\nuse_case: purchase_propensity\nestimator: {class: sklearn.tree.DecisionTreeClassifier}\n",
         r"bad.yaml: name: name 'a/b' is not a valid name"),
        ("name: t\nuse_case: purchase_propensity\nestimator: {class: sklearn.tree.DecisionTreeClassifier}\n"
         "variants: {'two words': {features: all}}\n", r"bad.yaml: variants.two words: name 'two words' is not"),
        ("name: t\nuse_case: purchase_propensity\nestimator: {class: sklearn.tree.DecisionTreeClassifier, "
         "params: {class_weight: {0: 1, 1: 5}}}\n", "bad.yaml: estimator.params.class_weight: a mapping needs string"),
    ],
)  # fmt: skip
def test_names_that_mlflow_cannot_take_and_params_json_would_change_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)
