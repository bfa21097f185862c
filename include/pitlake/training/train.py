"""Train a use case's model from one training set snapshot, log it to MLflow, register it and run the gate.

``train(settings, training_set_id=...)``:

1. reads the training set at the Delta version its manifest pinned (no JVM) and refuses an empty
   or single-class one before anything is logged;
2. splits by time (:func:`pitlake.training.dataset.time_split`): the newest 20% of label dates
   evaluate, older rows whose label horizon ended before that window train;
3. fits each candidate pipeline (impute, scale, one-hot + logistic regression; impute, one-hot +
   random forest). The decision threshold for accuracy/F1 is the one that maximises F1 on the
   newest 20% of the *training* dates, for a copy fit on the older ones (the evaluation window
   never chooses its own threshold); the model is then refit on the whole training part;
4. picks the candidate with the higher evaluation ROC AUC, and checks it against the
   ground-truth ceiling: ``quality_floor = 0.5 + 0.9 * (ceiling - 0.5)``, and an AUC above the
   ceiling (plus sampling tolerance) or a single feature that alone separates the labels means
   ``suspected_leakage``;
5. logs one parent run (params, metrics, PNG plots, the dataset input with its Delta source, the
   model with signature and input example, ``lineage/manifest.json``) with a nested run per
   candidate, registers the model as ``<use_case>`` with alias ``challenger``, and runs the
   promotion gate (:mod:`pitlake.training.registry`).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pitlake.dates import utc_now
from pitlake.errors import ConfigError, InputError
from pitlake.labels import HORIZON
from pitlake.settings import Settings
from pitlake.training import dataset, lineage
from pitlake.training_sets import UseCase, get_use_case, load_manifest

log = logging.getLogger(__name__)

CANDIDATES = ("logistic_regression", "random_forest")
EVAL_FRACTION = 0.2
THRESHOLD_FRACTION = 0.2
CEILING_SHARE = 0.9  # the floor keeps this share of the ceiling's lift over random
FALLBACK_FLOOR = 0.55  # without ground truth: clearly better than random
MIN_LEAKAGE_TOLERANCE = 0.01
SINGLE_FEATURE_LEAKAGE_AUC = 0.99
NO_CEILING_LEAKAGE_AUC = 0.995
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
# Counts and sums of activity: null means "no activity in the window", i.e. zero.
ZERO_FILL_PREFIXES = ("count_", "sum_")


# --------------------------------------------------------------------------- models


def make_pipeline(name: str, numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    """A candidate: the preprocessing every model needs, then the estimator ``name``."""
    zero = [c for c in numeric if c.startswith(ZERO_FILL_PREFIXES)]
    other = [c for c in numeric if c not in zero]
    scale = name == "logistic_regression"

    def numeric_steps(imputer: SimpleImputer) -> Pipeline:
        steps: list[tuple[str, Any]] = [("impute", imputer)]
        if scale:
            steps.append(("scale", StandardScaler()))
        return Pipeline(steps)

    parts: list[tuple[str, Any, list[str]]] = []
    if zero:
        parts.append(
            (
                "zero_filled",
                numeric_steps(
                    SimpleImputer(strategy="constant", fill_value=0.0, add_indicator=True, keep_empty_features=True)
                ),
                zero,
            )
        )
    if other:
        parts.append(
            (
                "median_filled",
                numeric_steps(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                other,
            )
        )
    if categorical:
        parts.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="(null)")),
                        ("one_hot", OneHotEncoder(handle_unknown="ignore", min_frequency=5)),
                    ]
                ),
                categorical,
            )
        )
    if not parts:
        raise ConfigError("no feature columns to train on")
    estimator: Any
    if name == "logistic_regression":
        estimator = LogisticRegression(C=1.0, max_iter=2000)
    elif name == "random_forest":
        estimator = RandomForestClassifier(
            n_estimators=100, max_depth=10, min_samples_leaf=5, random_state=seed, n_jobs=1
        )
    else:
        raise ConfigError(f"unknown candidate model {name!r}; known: {', '.join(CANDIDATES)}")
    return Pipeline([("preprocess", ColumnTransformer(parts, remainder="drop")), ("model", estimator)])


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (p >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "threshold": float(threshold),
    }


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


@dataclass
class Candidate:
    name: str
    model: Pipeline
    threshold: float
    threshold_method: str
    metrics: dict[str, float]
    eval_scores: np.ndarray

    def params(self) -> dict[str, Any]:
        est = self.model.named_steps["model"]
        keep = ("C", "max_iter", "n_estimators", "max_depth", "min_samples_leaf", "random_state", "penalty")
        return {f"{self.name}.{k}": v for k, v in est.get_params(deep=False).items() if k in keep}


@dataclass
class FitOutcome:
    """Everything the fit decided, without MLflow: shared by :func:`train` and ``reproduce``."""

    features: list[str]
    numeric: list[str]
    categorical: list[str]
    split: dataset.TimeSplit
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_eval: pd.DataFrame
    y_eval: np.ndarray
    candidates: list[Candidate]
    selected: Candidate

    def metrics(self) -> dict[str, float]:
        """The selected model's evaluation metrics, each candidate's ROC AUC, and the split sizes."""
        out = dict(self.selected.metrics)
        for c in self.candidates:
            out[f"candidate.{c.name}.roc_auc"] = c.metrics["roc_auc"]
            out[f"candidate.{c.name}.pr_auc"] = c.metrics["pr_auc"]
        out |= {
            "train_rows": float(len(self.y_train)),
            "eval_rows": float(len(self.y_eval)),
            "train_positive_rate": float(np.mean(self.y_train)),
            "eval_positive_rate": float(np.mean(self.y_eval)),
        }
        return out


def _threshold(
    name: str,
    frame: pd.DataFrame,
    x: pd.DataFrame,
    y: np.ndarray,
    split: dataset.TimeSplit,
    seed: int,
    numeric: list[str],
    categorical: list[str],
) -> tuple[float, str]:
    """F1-maximising threshold on the newest training dates, for a copy fit on the older ones."""
    try:
        inner = dataset.time_split(frame, eval_fraction=THRESHOLD_FRACTION, purge=split.purge, what="training part")
    except InputError:
        return 0.5, "default 0.5 (training part too short for a threshold window)"
    y_fit, y_val = y[inner.train_index], y[inner.eval_index]
    if len(set(y_fit)) < 2 or len(set(y_val)) < 2:
        return 0.5, "default 0.5 (threshold window has a single class)"
    model = make_pipeline(name, numeric, categorical, seed).fit(x.iloc[inner.train_index], y_fit)
    p = model.predict_proba(x.iloc[inner.eval_index])[:, 1]
    return best_f1_threshold(y_val, p), (
        f"max F1 on label dates {inner.eval_dates[0]}..{inner.eval_dates[-1]} (newest {THRESHOLD_FRACTION:.0%} of "
        "training dates) for a copy fit on the older ones"
    )


def fit_and_evaluate(
    frame: pd.DataFrame,
    *,
    use_case: UseCase,
    features: list[str],
    seed: int,
    candidates: tuple[str, ...] = CANDIDATES,
    eval_fraction: float = EVAL_FRACTION,
    purge: timedelta = HORIZON,
    what: str = "training set",
) -> FitOutcome:
    """Split by time, fit every candidate, evaluate on the newest window; deterministic for a given frame and seed."""
    label = use_case.label_column
    y = frame[label].astype(int).to_numpy()
    split = dataset.time_split(
        frame, eval_fraction=eval_fraction, purge=purge, time_column=use_case.spine_time, what=what
    )
    for part, index in (("training", split.train_index), ("evaluation", split.eval_index)):
        classes = set(y[index].tolist())
        if len(classes) < 2:
            raise InputError(
                f"{what}: the {part} part has only label={classes.pop() if classes else 'nothing'} "
                f"({len(index)} rows): widen the label range so both parts hold both classes"
            )
    numeric, categorical = dataset.feature_kinds(frame, features)
    x = dataset.model_inputs(frame, features)
    x_train, y_train = x.iloc[split.train_index], y[split.train_index]
    x_eval, y_eval = x.iloc[split.eval_index], y[split.eval_index]
    empty = [c for c in features if x_train[c].isna().all()]
    if empty and len(empty) == len(features):
        first, last = split.train_dates[0], split.train_dates[-1]
        raise InputError(
            f"{what}: no feature has a value in the training part ({len(y_train)} rows, label dates "
            f"{first}..{last}): the label range starts before the feature history; build features "
            "for those days first, or train on a later label range"
        )
    if empty:
        log.warning("%s: features without any value in the training part: %s", what, ", ".join(empty))
    train_frame = frame.iloc[split.train_index].reset_index(drop=True)
    fitted = []
    for name in candidates:
        threshold, method = _threshold(
            name, train_frame, x_train.reset_index(drop=True), y_train, split, seed, numeric, categorical
        )
        model = make_pipeline(name, numeric, categorical, seed).fit(x_train, y_train)
        scores = model.predict_proba(x_eval)[:, 1]
        fitted.append(
            Candidate(name, model, threshold, method, classification_metrics(y_eval, scores, threshold), scores)
        )
    selected = max(fitted, key=lambda c: c.metrics["roc_auc"])  # ties: the first (simpler) candidate
    return FitOutcome(features, numeric, categorical, split, x_train, y_train, x_eval, y_eval, fitted, selected)


# --------------------------------------------------------------------------- honest quality bar


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an ROC AUC estimate."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / max(
        positives * negatives, 1
    )
    return math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class Quality:
    ceiling_auc: float | None
    ceiling_auc_propensity: float | None
    ceiling_skipped: str | None
    quality_floor: float
    floor_source: str
    leakage_tolerance: float | None
    suspected_leakage: bool
    leakage_reasons: tuple[str, ...]


def assess_quality(settings: Settings, use_case: UseCase, frame: pd.DataFrame, outcome: FitOutcome) -> Quality:
    y = outcome.y_eval
    eval_rows = frame.iloc[outcome.split.eval_index]
    truth = dataset.ground_truth_scores(settings, eval_rows, keys=use_case.keys)
    reasons: list[str] = []
    best = max(c.metrics["roc_auc"] for c in outcome.candidates)
    for column in outcome.numeric:
        values = outcome.x_eval[column].fillna(-1.0).to_numpy()
        if len(np.unique(values)) > 1:
            auc = float(roc_auc_score(y, values))
            if max(auc, 1 - auc) >= SINGLE_FEATURE_LEAKAGE_AUC:
                reasons.append(f"feature {column} alone separates the evaluation labels (AUC {max(auc, 1 - auc):.4f})")
    if isinstance(truth, str):
        if best >= NO_CEILING_LEAKAGE_AUC:
            reasons.append(f"evaluation ROC AUC {best:.4f} >= {NO_CEILING_LEAKAGE_AUC} without ground truth")
        return Quality(
            None, None, truth, FALLBACK_FLOOR, "fallback: no ground truth", None, bool(reasons), tuple(reasons)
        )
    ceiling = float(roc_auc_score(y, truth.rate))
    tolerance = max(MIN_LEAKAGE_TOLERANCE, 2 * auc_standard_error(ceiling, int(y.sum()), int(len(y) - y.sum())))
    for c in outcome.candidates:
        if c.metrics["roc_auc"] > ceiling + tolerance:
            reasons.append(
                f"{c.name} evaluation ROC AUC {c.metrics['roc_auc']:.4f} exceeds the ground-truth ceiling "
                f"{ceiling:.4f} + tolerance {tolerance:.4f}"
            )
    return Quality(
        ceiling_auc=ceiling,
        ceiling_auc_propensity=float(roc_auc_score(y, truth.propensity)),
        ceiling_skipped=None,
        quality_floor=0.5 + CEILING_SHARE * (ceiling - 0.5),
        floor_source="ground_truth",
        leakage_tolerance=tolerance,
        suspected_leakage=bool(reasons),
        leakage_reasons=tuple(reasons),
    )


# --------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    run_id: str
    experiment_id: str
    model_name: str
    model_version: int
    model_uri: str
    selected_model: str
    use_case: str
    training_set_id: str
    training_set_version: int
    metrics: dict[str, float]
    ceiling_auc: float | None
    quality_floor: float
    suspected_leakage: bool
    gate: dict[str, Any]
    aliases: dict[str, int]
    manifest_uri: str
    notes: list[str] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool:
        return bool(self.gate.get("passed"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_labels(frame: pd.DataFrame, label: str, training_set_id: str, version: int) -> None:
    if frame.empty:
        raise InputError(
            f"training set {training_set_id} has no rows at version {version}: rebuild it over a label range "
            "with labels (build_labels, then build_training_set)"
        )
    counts = frame[label].value_counts().to_dict()
    if len(counts) < 2:
        only, n = next(iter(counts.items()))
        raise InputError(
            f"training set {training_set_id} has only {label}={only} ({n} rows): a classifier needs both classes; "
            "widen the label range or check the labels"
        )


def _importance(outcome: FitOutcome, seed: int) -> pd.DataFrame:
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


def _log_plots(outcome: FitOutcome, quality: Quality, frame: pd.DataFrame, label: str, seed: int) -> pd.DataFrame:
    import mlflow

    from pitlake.training import plots

    y = outcome.y_eval
    scores = {c.name: c.eval_scores for c in outcome.candidates}
    importance = _importance(outcome, seed)
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
            importance, f"Permutation importance ({outcome.selected.name}, evaluation window)"
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
    return importance


def _log_model(outcome: FitOutcome) -> Any:
    import mlflow
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    model = outcome.selected.model
    trusted = [
        t for t in skops.io.get_untrusted_types(data=skops.io.dumps(model)) if t.startswith(("numpy.", "sklearn."))
    ]
    example = outcome.x_train.head(5)
    signature = infer_signature(outcome.x_eval.head(200), model.predict_proba(outcome.x_eval.head(200)))
    versions = lineage.package_versions(("scikit-learn", "mlflow", "pandas", "numpy", "skops", "scipy"))
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=[f"{name}=={v}" for name, v in versions.items() if v],
        skops_trusted_types=trusted,
    )


def train(
    settings: Settings,
    *,
    use_case: str = "purchase_propensity",
    training_set_id: str,
    airflow: dict[str, Any] | None = None,
    validation_results: list[dict[str, Any]] | None = None,
    upstream_versions: dict[str, Any] | None = None,
    feature_columns: list[str] | None = None,
    candidates: tuple[str, ...] = CANDIDATES,
    seed: int = 7,
) -> TrainResult:
    """Train, log, register and gate a model for ``use_case`` on training set ``training_set_id``.

    ``feature_columns`` restricts the features (a subset of the training set's); ``upstream_versions``
    maps source tables to the versions behind this training set (``{"bronze.events": 12}``).
    """
    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.pandas_dataset import from_pandas

    from pitlake.training import registry, tracking

    uc = get_use_case(use_case)
    manifest = load_manifest(settings, uc.name, training_set_id)
    ts_version = int(manifest["delta_version"])
    available = list(manifest["feature_columns"])
    features = list(feature_columns) if feature_columns else available
    unknown = [c for c in features if c not in available]
    if unknown:
        raise ConfigError(f"feature columns {unknown} are not in training set {training_set_id}; it has {available}")
    for name in candidates:
        if name not in CANDIDATES:
            raise ConfigError(f"unknown candidate model {name!r}; known: {', '.join(CANDIDATES)}")
    validations = lineage.validation_records(validation_results)
    failed = [v.result_id for v in validations if not v.success]
    if failed:
        raise InputError(f"validation results {failed} failed: a failed gate stops training; fix the data first")

    frame = dataset.read_training_set(settings, uc, manifest)
    _check_labels(frame, uc.label_column, training_set_id, ts_version)
    outcome = fit_and_evaluate(
        frame, use_case=uc, features=features, seed=seed, candidates=candidates, what=f"training set {training_set_id}"
    )
    quality = assess_quality(settings, uc, frame, outcome)
    metrics = outcome.metrics() | {"quality_floor": quality.quality_floor}
    if quality.ceiling_auc is not None:
        metrics |= {"ceiling_auc": quality.ceiling_auc, "leakage_tolerance": quality.leakage_tolerance or 0.0}
        metrics["ceiling_auc_propensity"] = quality.ceiling_auc_propensity or 0.0
    code = lineage.git_state()
    airflow_rec = lineage.airflow_record(airflow)
    path = settings.table_path(uc.table)

    client = tracking.connect(settings)
    experiment_id = tracking.ensure_experiment(client, settings, uc.name)
    tags = {
        "pitlake.use_case": uc.name,
        "pitlake.training_set_id": training_set_id,
        "pitlake.training_set_version": str(ts_version),
        "git_commit": code.git_commit or "unknown",
        "git_dirty": str(code.git_dirty).lower() if code.git_dirty is not None else "unknown",
        "suspected_leakage": str(quality.suspected_leakage).lower(),
        "ceiling": "computed" if quality.ceiling_auc is not None else f"skipped: {quality.ceiling_skipped}",
    }
    if airflow_rec is not None:
        tags |= {f"airflow.{k}": str(v) for k, v in asdict(airflow_rec).items() if v is not None}
    split = outcome.split.describe()
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{uc.name}-{training_set_id[:8]}", tags=tags) as run:
        source = DeltaDatasetSource(path=path, delta_table_version=ts_version)
        data = frame[[*uc.keys, uc.spine_time, "label_date", uc.label_column, *features]]
        with warnings.catch_warnings():  # the label is an int column by design: no missing-values hint
            warnings.simplefilter("ignore", UserWarning)
            training_data = from_pandas(
                data,
                source=source,
                targets=uc.label_column,
                name=f"{uc.table}@{training_set_id}",
                digest=manifest["content_hash"][:32],
            )
            mlflow.log_input(training_data, context="training")
        for c in outcome.candidates:
            with mlflow.start_run(run_name=c.name, nested=True, experiment_id=experiment_id, tags=tags):
                mlflow.log_params(c.params() | {"candidate": c.name, "threshold_method": c.threshold_method})
                mlflow.log_metrics(c.metrics)
        mlflow.log_params(
            {
                "use_case": uc.name,
                "training_set_id": training_set_id,
                "training_set_version": ts_version,
                "seed": seed,
                "candidates": ",".join(candidates),
                "selected_model": outcome.selected.name,
                "selection_rule": "highest evaluation ROC AUC",
                "eval_fraction": EVAL_FRACTION,
                "threshold_method": outcome.selected.threshold_method,
                "n_features": len(features),
                "feature_columns": ",".join(features),
                **split,
                **outcome.selected.params(),
            }
        )
        mlflow.log_metrics(metrics)
        importance = _log_plots(outcome, quality, frame, uc.label_column, seed)
        mlflow.log_text(importance.to_csv(index=False), "plots/feature_importance.csv")
        info = _log_model(outcome)
        version = registry.register(
            client, uc.name, info.model_uri, run.info.run_id, {"training_set_id": training_set_id, "use_case": uc.name}
        )
        record = _manifest(
            settings,
            uc,
            manifest,
            outcome,
            quality,
            metrics,
            run.info.run_id,
            info.model_uri,
            version,
            code,
            airflow_rec,
            validations,
            upstream_versions,
            seed,
            candidates,
        )
        mlflow.log_dict(record.to_dict(), lineage.MANIFEST_ARTIFACT)
        # The champion may use features this challenger does not: score it on every feature of the snapshot.
        x_gate = dataset.model_inputs(frame.iloc[outcome.split.eval_index], available)
        decision = registry.gate(client, uc.name, version, x_gate, outcome.y_eval, outcome.selected.metrics, quality)
        aliases = registry.apply_gate(client, uc.name, decision)
        mlflow.log_dict(decision.to_dict(), "gate/decision.json")
        mlflow.set_tags({"gate.outcome": "passed" if decision.passed else "failed", "model_version": str(version)})
    result = TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_name=uc.name,
        model_version=version,
        model_uri=f"models:/{uc.name}/{version}",
        selected_model=outcome.selected.name,
        use_case=uc.name,
        training_set_id=training_set_id,
        training_set_version=ts_version,
        metrics=metrics,
        ceiling_auc=quality.ceiling_auc,
        quality_floor=quality.quality_floor,
        suspected_leakage=quality.suspected_leakage,
        gate=decision.to_dict(),
        aliases=aliases,
        manifest_uri=f"runs:/{run.info.run_id}/{lineage.MANIFEST_ARTIFACT}",
        notes=list(record.notes),
    )
    log.info(
        "model %s v%d (%s): ROC AUC %.4f, gate %s, aliases %s",
        uc.name,
        version,
        outcome.selected.name,
        metrics["roc_auc"],
        "passed" if decision.passed else "failed",
        aliases,
    )
    return result


def _manifest(
    settings: Settings,
    uc: UseCase,
    ts: dict[str, Any],
    outcome: FitOutcome,
    quality: Quality,
    metrics: dict[str, float],
    run_id: str,
    model_uri: str,
    version: int,
    code: lineage.CodeRecord,
    airflow_rec: lineage.AirflowRecord | None,
    validations: tuple[lineage.ValidationRecord, ...],
    upstream_versions: dict[str, Any] | None,
    seed: int,
    candidates: tuple[str, ...],
) -> lineage.LineageManifest:
    views = {v.table: v for v in uc.feature_views()}
    inputs = tuple(
        lineage.InputRecord(
            role=lineage.InputRole.LABELS if table == uc.label_table else lineage.InputRole.FEATURES,
            table=table,
            path=str(info["path"]),
            delta_version=int(info["version"]),
            committed_at=lineage.commit_time(str(info["path"]), int(info["version"])),
        )
        for table, info in sorted(ts["inputs"].items())
    )
    feature_views = tuple(
        lineage.FeatureViewRecord(
            name=view.name,
            version=view.version,
            table=view.table,
            path=str(ts["inputs"][view.table]["path"]),
            delta_version=int(ts["inputs"][view.table]["version"]),
            ttl_seconds=int(view.ttl.total_seconds()) if view.ttl is not None else None,
            source=view.source,
            features=tuple(view.feature_names()),
        )
        for table, view in views.items()
        if table in ts["inputs"]
    )
    upstream = lineage.upstream_records(settings, inputs, upstream_versions)
    notes = []
    covered = {u.via for u in upstream if u.via}
    for record in inputs:
        if record.table not in covered:
            notes.append(f"no job records in {settings.runs_dir} for {record.table}: its bronze versions are unknown")
    sel = outcome.selected
    return lineage.LineageManifest(
        schema_version=lineage.SCHEMA_VERSION,
        created_at=utc_now().isoformat(),
        model=lineage.ModelRecord(
            name=uc.name, version=version, run_id=run_id, model_uri=model_uri, estimator=sel.name
        ),
        training_set=lineage.TrainingSetRecord(
            training_set_id=ts["training_set_id"],
            use_case=uc.name,
            table=uc.table,
            path=settings.table_path(uc.table),
            delta_version=int(ts["delta_version"]),
            content_hash=ts["content_hash"],
            row_count=int(ts["row_count"]),
            positives=ts.get("positives"),
            label_start=ts["label_start"],
            label_end=ts["label_end"],
            as_of_write=bool(ts.get("as_of_write", False)),
            feature_columns=tuple(ts["feature_columns"]),
            manifest_path=ts.get("manifest_path"),
        ),
        inputs=inputs,
        feature_views=feature_views,
        upstream=upstream,
        validations=validations,
        code=code,
        packages=lineage.package_versions(),
        airflow=airflow_rec,
        training=lineage.TrainingRecord(
            seed=seed,
            candidates=candidates,
            selected=sel.name,
            feature_columns=tuple(outcome.features),
            eval_fraction=EVAL_FRACTION,
            purge_days=outcome.split.purge.days,
            eval_start=outcome.split.eval_start.isoformat(),
            train_rows=len(outcome.y_train),
            eval_rows=len(outcome.y_eval),
            threshold=sel.threshold,
            threshold_method=sel.threshold_method,
        ),
        quality=lineage.QualityRecord(**asdict(quality)),
        metrics=metrics,
        notes=tuple(notes),
    )
