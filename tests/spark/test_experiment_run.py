"""Experiment runs (pitlake.training.experiment_run): a search over variants logged as one parent run with a
nested run per trial, the best by mean fold score registered as challenger, its manifest enough to refit it,
and the comparison report. No Spark: the training set is the synthetic one of ``test_training`` (labels
from z1 = ``count_page_views_7d`` and z2 = ``count_purchases_28d``; ``segment`` and ``tenure_days`` noise).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.spark.test_training import aliases, client_for, synthetic, write_training_set

CONFIG = """
name: tiny_search
description: A logistic regression over three feature sets, two values of C each.
use_case: purchase_propensity
estimator: {class: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
search: {method: random, n_iter: 2, space: {C: {loguniform: [0.01, 10.0]}}}
variants:
  z1_only: {features: [count_page_views_7d]}
  noise_only: {features: [segment, tenure_days]}
  every_feature: {features: all}
cv: {folds: 3}
metric: roc_auc
seed: 3
"""


@pytest.fixture()
def home(mlflow_home):
    return mlflow_home


def test_an_experiment_logs_every_trial_and_registers_the_best_by_fold_score(home, tmp_path):
    from pitlake.lineage.manifest import LineageManifest
    from pitlake.training.compare import refit_chosen
    from pitlake.training.experiment_run import run_experiment
    from pitlake.training.train import load_snapshot, read_rows
    from pitlake.training_set.build import get_use_case

    frame, truth = synthetic()
    write_training_set(home, frame, "exp", truth=truth)
    config = tmp_path / "tiny_search.yaml"
    config.write_text(CONFIG)
    result = run_experiment(home, config)  # the newest training set: "exp"

    client = client_for(home)
    parent = client.get_run(result.run_id)
    assert parent.data.tags["pitlake.experiment"] == "tiny_search"
    assert parent.data.tags["pitlake.experiment_config_sha256"] == hashlib.sha256(CONFIG.encode()).hexdigest()
    children = client.search_runs([result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    names = sorted(c.info.run_name for c in children)
    assert names == sorted(f"{v}.trial{n}" for v in ("z1_only", "noise_only", "every_feature") for n in (1, 2))
    for child in children:
        metrics = child.data.metrics
        folds = [metrics[f"fold_{k}_roc_auc"] for k in (1, 2, 3)]
        assert metrics["cv_roc_auc_mean"] == pytest.approx(sum(folds) / 3)
        assert [m.value for m in client.get_metric_history(child.info.run_id, "cv_roc_auc")] == folds
        assert float(child.data.params["C"]) > 0 and child.data.tags["pitlake.training_set_id"] == "exp"
        assert metrics["cv_fit_seconds"] > 0 and "holdout_roc_auc" in metrics
    # The chosen trial is the one with the best mean fold score, never the best holdout score.
    best = max(children, key=lambda c: c.data.metrics["cv_roc_auc_mean"])
    assert parent.data.params["chosen_trial"] == best.info.run_name == result.selected_model
    assert best.data.tags["pitlake.chosen"] == "true"
    noise = [c for c in children if c.info.run_name.startswith("noise_only")]
    assert all(c.data.metrics["holdout_roc_auc"] < 0.6 for c in noise)  # noise alone: about random
    assert not best.info.run_name.startswith("noise_only")
    assert result.metrics["roc_auc"] >= result.quality_floor and not result.suspected_leakage
    assert result.model_version == 1 and aliases(home) == {"champion": 1}  # no champion yet: the gate promotes
    description = client.get_model_version("purchase_propensity", "1").description
    assert f"`{best.info.run_name}` (experiment `tiny_search`: best of 6 trials by mean roc_auc over 3 time-series " \
           "folds, " in description  # fmt: skip

    # The manifest pins the training set and records the trial; refitting from it gives the same metrics.
    path = client.download_artifacts(result.run_id, "lineage/manifest.json", str(tmp_path))
    manifest = LineageManifest.from_dict(json.loads(Path(path).read_text()))
    record = manifest.experiment
    assert record is not None and record.name == "tiny_search" and record.trials == 6
    assert record.estimator == "sklearn.linear_model.LogisticRegression"
    assert record.params == {"max_iter": 500, "C": float(best.data.params["C"])}
    assert manifest.training_set.training_set_id == "exp" and manifest.training.selected == result.selected_model
    uc = get_use_case("purchase_propensity")
    rows = read_rows(home, load_snapshot(home, uc, "exp"))
    refit = refit_chosen(rows, use_case=uc, record=record, training=manifest.training, what="test")
    assert refit.metrics()["roc_auc"] == manifest.metrics["roc_auc"] == result.metrics["roc_auc"]

    # The report: every trial, best mean fold score first; written to the home and to the run's artifacts.
    markdown = Path(result.experiment["report_markdown"]).read_text()
    table = [line.split(" | ")[0][2:] for line in markdown.splitlines() if line.startswith("| ") and ".trial" in line]
    means = {c.info.run_name: c.data.metrics["cv_roc_auc_mean"] for c in children}  # z1 alone: C cannot matter
    assert sorted(table) == sorted(means) and [means[n] for n in table] == sorted(means.values(), reverse=True)
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "report")}
    assert {"report/experiment.html", "report/experiment.md", "report/calibration.png",
            "report/tiny_search.yaml"} <= artifacts  # fmt: skip


def test_an_experiment_for_another_use_case_or_on_too_short_a_training_set_is_one_line(home, tmp_path):
    from pitlake.core.errors import ConfigError, InputError
    from pitlake.training.experiment_run import run_experiment

    with pytest.raises(ConfigError, match="experiment baseline is for use case purchase_propensity, not recs"):
        run_experiment(home, "baseline", use_case="recs")
    frame, truth = synthetic(customers=100)
    write_training_set(home, frame[frame["label_date"].astype(str) < "2026-01-16"], "short", truth=truth)
    with pytest.raises(
        InputError, match=r"experiment baseline on training set short: its training part spans \d+ label date\(s\)"
    ):
        run_experiment(home, "baseline")


def test_the_train_model_task_runs_the_experiment_its_param_names(home, tmp_path, monkeypatch):
    import runpy
    from types import SimpleNamespace

    from pitlake.core.settings import REPO_ROOT

    frame, truth = synthetic(customers=200)
    write_training_set(home, frame, "dagrun", truth=truth)
    config = tmp_path / "tiny_search.yaml"
    config.write_text(CONFIG)
    monkeypatch.setenv("PITLAKE_HOME", str(home.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(home.mlflow_tracking_uri))
    factory = runpy.run_path(str(REPO_ROOT / "dags" / "train_model.py"))["training_dag"]
    dag = factory("train_model", "purchase_propensity")
    pulled = {"build_training_set": {"training_set_id": "dagrun", "validation": [], "openlineage": {"run_id": "r1"}},
              "build_labels": {"validation": [], "source_version": 3}}  # fmt: skip
    ti = SimpleNamespace(task_id="train_and_register", xcom_pull=lambda task_ids: pulled[task_ids])
    dag_run = SimpleNamespace(dag_id="train_model", run_id="manual__1", run_after="2026-02-10T00:00:00+00:00")
    out = dag.get_task("train_and_register").python_callable(
        params={"use_case": "purchase_propensity", "experiment": str(config)}, ti=ti, dag_run=dag_run
    )
    assert out["experiment"]["name"] == "tiny_search" and out["experiment"]["trials"] == 6
    assert out["training_set_id"] == "dagrun" and out["gate_passed"] and out["aliases"] == {"champion": 1}
    run = client_for(home).get_run(out["run_id"])
    assert run.data.tags["airflow.run_id"] == "manual__1" and run.data.tags["pitlake.experiment"] == "tiny_search"
