"""Train a use case's model from one training set snapshot, log it to MLflow, register it and run the gate.

``train(settings, training_set_id=...)``:

1. reads the training set at the Delta version its manifest pinned (no JVM) and refuses an empty
   or single-class one, or a failed validation result, before anything is logged;
2. fits and evaluates every candidate on a purged time split (:mod:`pitlake.training.fit`,
   candidates in :mod:`pitlake.training.candidates`) and selects the one with the higher
   evaluation ROC AUC;
3. checks it against the ground-truth ceiling and for leakage (:mod:`pitlake.training.quality`);
4. logs one parent run with a nested run per candidate (:mod:`pitlake.training.mlflow_log`) and
   the lineage manifest (:mod:`pitlake.training.provenance`), registers the model as
   ``<use_case>`` with alias ``challenger``, and runs the promotion gate
   (:mod:`pitlake.registry.promote`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from pitlake.core import tracking
from pitlake.core.errors import ConfigError, InputError
from pitlake.core.settings import Settings
from pitlake.lineage import manifest as lineage
from pitlake.registry import promote as registry
from pitlake.registry.lock import registry_lock
from pitlake.training import dataset, mlflow_log
from pitlake.training.candidates import CANDIDATES, FitOutcome, check_candidates
from pitlake.training.fit import fit_and_evaluate, training_record
from pitlake.training.provenance import Provenance, Snapshot, build_manifest
from pitlake.training.quality import assess_quality, run_metrics
from pitlake.training_set.build import UseCase, get_use_case
from pitlake.training_set.manifest import read_manifest

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pitlake.core.openlineage import JobRun

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """The registered version, the run that logged it, its metrics and quality bar, and the gate's decision."""

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
    model_id: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)  # OpenLineage inputs and outputs (core.openlineage)
    experiment: dict[str, Any] | None = None  # an experiment's report paths, trials and pace (experiment_run)

    @property
    def gate_passed(self) -> bool:
        return bool(self.gate.get("passed"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_snapshot(settings: Settings, uc: UseCase, training_set_id: str) -> Snapshot:
    """Training set ``training_set_id`` as its build manifest pinned it."""
    build = read_manifest(settings, uc.name, training_set_id)
    return Snapshot(use_case=uc, training_set_id=training_set_id, build=build, path=settings.table_path(uc.table))


def select_features(snapshot: Snapshot, feature_columns: list[str] | None) -> list[str]:
    """``feature_columns`` (all of the training set's when None); a :class:`ConfigError` for one it lacks."""
    available = snapshot.feature_columns
    features = list(feature_columns) if feature_columns else available
    unknown = [c for c in features if c not in available]
    if unknown:
        raise ConfigError(
            f"feature columns {unknown} are not in training set {snapshot.training_set_id}; it has {available}"
        )
    return features


def passed_validations(results: list[dict[str, Any]] | None) -> tuple[lineage.ValidationRecord, ...]:
    """The validation results as records; an :class:`InputError` when any failed."""
    validations = lineage.validation_records(results)
    failed = [v.result_id for v in validations if not v.success]
    if failed:
        raise InputError(f"validation results {failed} failed: a failed gate stops training; fix the data first")
    return validations


def read_rows(settings: Settings, snapshot: Snapshot) -> pd.DataFrame:
    """The snapshot's rows; an :class:`InputError` when it is empty or holds a single class."""
    frame = dataset.read_training_set(settings, snapshot.use_case, snapshot.build)
    training_set_id, label = snapshot.training_set_id, snapshot.use_case.label_column
    if frame.empty:
        raise InputError(
            f"training set {training_set_id} has no rows at version {snapshot.version}: rebuild it over a label range "
            "with labels (build_labels, then build_training_set)"
        )
    counts = frame[label].value_counts().to_dict()
    if len(counts) < 2:
        only, n = next(iter(counts.items()))
        raise InputError(
            f"training set {training_set_id} has only {label}={only} ({n} rows): a classifier needs both classes; "
            "widen the label range or check the labels"
        )
    return frame


def _gate(
    settings: Settings,
    client: MlflowClient,
    snapshot: Snapshot,
    version: int,
    frame: pd.DataFrame,
    outcome: FitOutcome,
    quality: lineage.QualityRecord,
) -> tuple[registry.GateDecision, dict[str, int]]:
    """Gate ``version`` on the evaluation rows, move the aliases and log the decision; returns it and the aliases."""
    name = snapshot.use_case.name
    # The champion may use features this challenger does not: score it on every feature of the snapshot.
    x_gate = dataset.model_inputs(frame.iloc[outcome.split.eval_index], snapshot.feature_columns)
    # Decide and move under the model's lock: the champion the gate re-scored is still the champion when
    # the alias moves, also when another training or a promote_model run races this one.
    with registry_lock(settings, name):
        decision = registry.gate(client, name, version, x_gate, outcome.y_eval, outcome.selected.metrics, quality)
        aliases = registry.apply_gate(client, name, decision)
    mlflow_log.log_gate(decision)
    return decision, aliases


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
    lineage_parent: str | None = None,
    lineage_root: str | None = None,
    training_set_run_id: str | None = None,
    lineage_run: JobRun | None = None,
) -> TrainResult:
    """Train, log, register and gate a model for ``use_case`` on training set ``training_set_id``.

    ``feature_columns`` restricts the features (a subset of the training set's); ``upstream_versions``
    maps source tables to the versions behind this training set (``{"bronze.events": 12}``).
    The training is one OpenLineage job ``train_model.<use_case>`` (a child of ``lineage_parent``, the
    Airflow task's run): the training set's Delta version in, the registered model version out; the
    manifest records its run id, its parent and ``training_set_run_id`` (the build's run). Called from
    ``jobs/train_model.py``, ``lineage_run`` is the job frame's run, which emits the events.
    """
    from functools import partial

    run_in = partial(
        _train, settings, use_case=use_case, training_set_id=training_set_id, airflow=airflow,
        validation_results=validation_results, upstream_versions=upstream_versions,
        feature_columns=feature_columns, candidates=candidates, seed=seed, training_set_run_id=training_set_run_id,
    )  # fmt: skip
    return as_training_job(settings, use_case, run_in, lineage_parent, lineage_root, lineage_run)


def as_training_job(
    settings: Settings,
    use_case: str,
    run_in: Callable[[JobRun], TrainResult],
    lineage_parent: str | None,
    lineage_root: str | None,
    lineage_run: JobRun | None,
) -> TrainResult:
    """``run_in`` as the OpenLineage job ``train_model.<use_case>`` (a child of ``lineage_parent``), or in
    ``lineage_run`` when a job frame already emits the events; the result's datasets are the job's."""
    from pitlake.core.openlineage import RunRef, job_run

    if lineage_run is not None:
        return run_in(lineage_run)
    parent, root = RunRef.parse(lineage_parent), RunRef.parse(lineage_root, "lineage_root")
    with job_run(settings, f"train_model.{use_case}", parent=parent, root=root) as run:
        result = run_in(run)
        run.io = result.lineage
    return result


def _train(
    settings: Settings,
    run_record: JobRun,
    *,
    use_case: str,
    training_set_id: str,
    airflow: dict[str, Any] | None,
    validation_results: list[dict[str, Any]] | None,
    upstream_versions: dict[str, Any] | None,
    feature_columns: list[str] | None,
    candidates: tuple[str, ...],
    seed: int,
    training_set_run_id: str | None,
) -> TrainResult:
    uc = get_use_case(use_case)
    snapshot = load_snapshot(settings, uc, training_set_id)
    features = select_features(snapshot, feature_columns)
    check_candidates(candidates)
    validations = passed_validations(validation_results)

    frame = read_rows(settings, snapshot)
    outcome = fit_and_evaluate(
        frame, use_case=uc, features=features, seed=seed, candidates=candidates, what=f"training set {training_set_id}"
    )
    quality = assess_quality(settings, uc, frame, outcome)
    provenance = Provenance(
        code=lineage.git_state(),
        airflow=lineage.airflow_record(airflow),
        validations=validations,
        upstream_versions=upstream_versions,
    )
    logged = Logged(run_name=f"{uc.name}-{training_set_id[:8]}", candidates=candidates, seed=seed)
    return log_register_gate(settings, run_record, snapshot, frame, outcome, quality, provenance, logged,
                             training_set_run_id)  # fmt: skip


@dataclass
class Logged:
    """How one training run is logged beyond what every run logs (:func:`log_register_gate`): ``train``'s
    candidates, or an experiment's trials (its nested runs, its report, its manifest record)."""

    run_name: str
    candidates: tuple[str, ...]
    seed: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    nested: Callable[[str, dict[str, str]], None] | None = None  # (experiment id, tags): log the nested runs
    artifacts: Callable[[str], None] | None = None  # (run id): log more artifacts in the parent run
    importance: pd.DataFrame | None = None  # the permutation importance, when already computed
    experiment: lineage.ExperimentRecord | None = None


def log_register_gate(
    settings: Settings,
    run_record: JobRun,
    snapshot: Snapshot,
    frame: pd.DataFrame,
    outcome: FitOutcome,
    quality: lineage.QualityRecord,
    provenance: Provenance,
    logged: Logged,
    training_set_run_id: str | None,
) -> TrainResult:
    """One MLflow parent run for ``outcome.selected`` (nested runs, params, metrics, plots, model, manifest),
    registered as ``challenger`` and gated against the champion."""
    import mlflow

    uc, training_set_id, seed = snapshot.use_case, snapshot.training_set_id, logged.seed
    metrics = run_metrics(outcome, quality) | logged.metrics
    client = tracking.connect(settings)
    experiment_id = tracking.ensure_experiment(client, settings, uc.name)
    tags = mlflow_log.run_tags(snapshot, provenance, quality) | logged.tags
    with mlflow.start_run(experiment_id=experiment_id, run_name=logged.run_name, tags=tags) as run:
        run_id = run.info.run_id
        mlflow_log.log_training_data(frame, snapshot, outcome.features)
        if logged.nested is not None:
            logged.nested(experiment_id, tags)
        else:
            mlflow_log.log_candidates(outcome, experiment_id, tags)
        mlflow.log_params(mlflow_log.run_params(snapshot, outcome, seed, logged.candidates) | logged.params)
        mlflow.log_metrics(metrics)
        mlflow_log.log_plots(outcome, quality, frame, uc.label_column, seed, logged.importance)
        if logged.artifacts is not None:
            logged.artifacts(run_id)
        info = mlflow_log.log_model(outcome)
        version = registry.register(
            client, uc.name, info.model_uri, run_id, {"training_set_id": training_set_id, "use_case": uc.name}
        )
        model_id = getattr(info, "model_id", None)
        model = lineage.ModelRecord(
            name=uc.name, version=version, run_id=run_id, model_uri=info.model_uri, estimator=outcome.selected.name,
            model_id=model_id,
        )  # fmt: skip
        record = build_manifest(
            settings,
            snapshot,
            provenance,
            model=model,
            training=training_record(outcome, seed, logged.candidates),
            quality=quality,
            metrics=metrics,
            openlineage=lineage.OpenLineageRecord(
                namespace=run_record.namespace, job=run_record.name, run_id=run_record.run_id,
                parent=str(run_record.parent) if run_record.parent else None,
                root=str(run_record.root) if run_record.root else None, training_set_run_id=training_set_run_id,
            ),
            experiment=logged.experiment,
        )  # fmt: skip
        mlflow.set_tag("openlineage.run_id", run_record.run_id)
        mlflow.log_dict(record.to_dict(), lineage.MANIFEST_ARTIFACT)
        decision, aliases = _gate(settings, client, snapshot, version, frame, outcome, quality)
    log.info(
        "model %s v%d (%s): ROC AUC %.4f, gate %s, aliases %s",
        uc.name,
        version,
        outcome.selected.name,
        metrics["roc_auc"],
        "passed" if decision.passed else "failed",
        aliases,
    )
    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=uc.name,
        model_version=version,
        model_uri=f"models:/{uc.name}/{version}",
        selected_model=outcome.selected.name,
        use_case=uc.name,
        training_set_id=training_set_id,
        training_set_version=snapshot.version,
        metrics=metrics,
        ceiling_auc=quality.ceiling_auc,
        quality_floor=quality.quality_floor,
        suspected_leakage=quality.suspected_leakage,
        gate=decision.to_dict(),
        aliases=aliases,
        manifest_uri=f"runs:/{run_id}/{lineage.MANIFEST_ARTIFACT}",
        notes=list(record.notes),
        model_id=model_id,
        lineage=lineage_datasets(settings, uc, snapshot, version, run_id, experiment_id, model_id, metrics, aliases),
    )


def lineage_datasets(settings: Settings, uc: UseCase, snapshot: Snapshot, version: int, run_id: str, experiment_id: str,
             model_id: str | None, metrics: dict[str, float], aliases: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """The training job's OpenLineage datasets: the training set at its Delta version in, the model version out."""
    from pitlake.core.openlineage import MLFLOW_NAMESPACE, lineage, other_dataset, table_dataset

    model = other_dataset(
        MLFLOW_NAMESPACE,
        f"models:/{uc.name}/{version}",
        pitlake_model={
            "registered_model": uc.name, "version": version, "mlflow_run_id": run_id, "experiment_id": experiment_id,
            "model_id": model_id, "roc_auc": metrics.get("roc_auc"),
            "aliases": sorted(a for a, v in aliases.items() if v == version),
        },
    )  # fmt: skip
    ts = table_dataset(uc.table, snapshot.version, pitlake_training_set={"training_set_id": snapshot.training_set_id})
    return lineage([ts], [model])
