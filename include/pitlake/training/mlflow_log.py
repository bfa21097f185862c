"""What a training run logs to MLflow (inside the active parent run, started by ``train``).

* tags (:func:`run_tags`): use case, training set id and version, git commit and dirtiness,
  ``suspected_leakage``, whether the ceiling was computed, and ``airflow.*`` inside Airflow;
* the training set as a dataset input whose source is the Delta table at the pinned version;
* one nested run per candidate (its hyperparameters, threshold method and evaluation metrics);
* the parent's params (the split, the selection, the selected model's hyperparameters) and metrics;
* PNG plots under ``plots/`` (ROC, precision-recall, calibration, permutation importance on the
  evaluation window, feature distributions and correlations of the training part) and the
  importance table as ``plots/feature_importance.csv``;
* the selected model (sklearn flavour, skops serialisation, signature, input example, pinned
  requirements), whose pyfunc predicts probabilities;
* the gate's decision as ``gate/decision.json`` and ``gate.outcome`` / ``model_version`` tags.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pitlake.lineage import manifest as lineage
from pitlake.training.candidates import FitOutcome
from pitlake.training.fit import EVAL_FRACTION
from pitlake.training.provenance import Provenance, Snapshot

if TYPE_CHECKING:
    from pitlake.registry.promote import GateDecision

IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
MODEL_PACKAGES = ("scikit-learn", "mlflow", "pandas", "numpy", "skops", "scipy")


def run_tags(snapshot: Snapshot, provenance: Provenance, quality: lineage.QualityRecord) -> dict[str, str]:
    """The tags of the parent run and of every candidate run."""
    code = provenance.code
    tags = {
        "pitlake.use_case": snapshot.use_case.name,
        "pitlake.training_set_id": snapshot.training_set_id,
        "pitlake.training_set_version": str(snapshot.version),
        "git_commit": code.git_commit or "unknown",
        "git_dirty": str(code.git_dirty).lower() if code.git_dirty is not None else "unknown",
        "suspected_leakage": str(quality.suspected_leakage).lower(),
        "ceiling": "computed" if quality.ceiling_auc is not None else f"skipped: {quality.ceiling_skipped}",
    }
    if provenance.airflow is not None:
        tags |= {f"airflow.{k}": str(v) for k, v in asdict(provenance.airflow).items() if v is not None}
    return tags


def log_training_data(frame: pd.DataFrame, snapshot: Snapshot, features: list[str]) -> None:
    """The keys, times, label and ``features`` of ``frame`` as the run's ``training`` input, sourced at the pin."""
    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.pandas_dataset import from_pandas

    uc = snapshot.use_case
    source = DeltaDatasetSource(path=snapshot.path, delta_table_version=snapshot.version)
    data = frame[[*uc.keys, uc.spine_time, "label_date", uc.label_column, *features]]
    with warnings.catch_warnings():  # the label is an int column by design: no missing-values hint
        warnings.simplefilter("ignore", UserWarning)
        training_data = from_pandas(
            data,
            source=source,
            targets=uc.label_column,
            name=f"{uc.table}@{snapshot.training_set_id}",
            digest=snapshot.content_hash[:32],
        )
        mlflow.log_input(training_data, context="training")


def log_candidates(outcome: FitOutcome, experiment_id: str, tags: dict[str, str]) -> None:
    """One nested run per candidate, named after it."""
    import mlflow

    for c in outcome.candidates:
        with mlflow.start_run(run_name=c.name, nested=True, experiment_id=experiment_id, tags=tags):
            mlflow.log_params(c.params() | {"candidate": c.name, "threshold_method": c.threshold_method})
            mlflow.log_metrics(c.metrics)


def run_params(snapshot: Snapshot, outcome: FitOutcome, seed: int, candidates: tuple[str, ...]) -> dict[str, Any]:
    """The parent run's params: what was trained on, how it was split and which candidate was selected."""
    return {
        "use_case": snapshot.use_case.name,
        "training_set_id": snapshot.training_set_id,
        "training_set_version": snapshot.version,
        "seed": seed,
        "candidates": ",".join(candidates),
        "selected_model": outcome.selected.name,
        "selection_rule": "highest evaluation ROC AUC",
        "eval_fraction": EVAL_FRACTION,
        "threshold_method": outcome.selected.threshold_method,
        "n_features": len(outcome.features),
        "feature_columns": ",".join(outcome.features),
        **outcome.split.describe(),
        **outcome.selected.params(),
    }


def importance(outcome: FitOutcome, seed: int) -> pd.DataFrame:
    """Permutation importance (ROC AUC) of the selected model on up to :data:`IMPORTANCE_ROWS` evaluation rows."""
    from sklearn.inspection import permutation_importance

    n = len(outcome.y_eval)
    rows = np.random.default_rng(seed).choice(n, size=min(n, IMPORTANCE_ROWS), replace=False)
    rows.sort()
    result = permutation_importance(
        outcome.selected.model,
        outcome.x_eval.iloc[rows],
        outcome.y_eval[rows],
        scoring="roc_auc",
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
        n_jobs=1,
    )
    return pd.DataFrame(
        {"feature": outcome.features, "mean": result.importances_mean, "std": result.importances_std}
    ).sort_values("mean", ascending=False)


def log_plots(
    outcome: FitOutcome,
    quality: lineage.QualityRecord,
    frame: pd.DataFrame,
    label: str,
    seed: int,
    table: pd.DataFrame | None = None,
) -> None:
    """The PNG plots under ``plots/``, then the importance table (``table``: computed when None) as
    ``plots/feature_importance.csv``."""
    import mlflow

    from pitlake.training import plots

    y = outcome.y_eval
    scores = {c.name: c.eval_scores for c in outcome.candidates}
    table = importance(outcome, seed) if table is None else table
    train_frame = frame.iloc[outcome.split.train_index]
    figures = {
        "plots/roc.png": plots.roc(
            y, scores, {c.name: c.metrics["roc_auc"] for c in outcome.candidates}, quality.ceiling_auc
        ),
        "plots/precision_recall.png": plots.precision_recall(
            y, scores, {c.name: c.metrics["pr_auc"] for c in outcome.candidates}
        ),
        "plots/calibration.png": plots.calibration(y, scores),
        "plots/feature_importance.png": plots.feature_importance(
            table, f"Permutation importance ({outcome.selected.name}, evaluation window)"
        ),
        "plots/eda_feature_distributions.png": plots.feature_distributions(
            outcome.x_train, train_frame[label].to_numpy(), outcome.numeric, outcome.categorical
        ),
        "plots/eda_correlation.png": plots.correlation_matrix(
            outcome.x_train, train_frame[label].to_numpy(), outcome.numeric
        ),
    }
    for path, fig in figures.items():
        mlflow.log_figure(fig, path)
    mlflow.log_text(table.to_csv(index=False), "plots/feature_importance.csv")


def log_model(outcome: FitOutcome) -> Any:
    """Log the selected model as ``model``; returns MLflow's ``ModelInfo`` (its ``model_uri`` is registered)."""
    return log_sklearn_model(outcome.selected.model, outcome.x_eval.head(200), outcome.x_train.head(5))


def log_sklearn_model(model: Any, sample: pd.DataFrame, example: pd.DataFrame) -> Any:
    """Log a fitted pipeline as ``model`` of the active run: skops serialisation, the signature of
    ``sample`` (model inputs: its columns, order and kinds, which serving reads back), ``example``."""
    import mlflow
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    trusted = [
        t for t in skops.io.get_untrusted_types(data=skops.io.dumps(model)) if t.startswith(("numpy.", "sklearn."))
    ]
    signature = infer_signature(sample, model.predict_proba(sample))
    versions = lineage.package_versions(MODEL_PACKAGES)
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=[f"{name}=={v}" for name, v in versions.items() if v],
        skops_trusted_types=trusted,
    )


def log_gate(decision: GateDecision) -> None:
    """The gate's decision as ``gate/decision.json``, and its outcome and the model version as run tags."""
    import mlflow

    mlflow.log_dict(decision.to_dict(), "gate/decision.json")
    mlflow.set_tags(
        {"gate.outcome": "passed" if decision.passed else "failed", "model_version": str(decision.candidate_version)}
    )
