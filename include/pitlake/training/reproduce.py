"""Reproduce a registered model from its lineage manifest: same pins → same rows → same metrics.

``reproduce(spark, settings, model, version)``:

1. reads the version's ``lineage/manifest.json`` and checks that every input it pins (label spine,
   feature tables) still has all its data files at that Delta version (VACUUM may have removed
   them: then the model can no longer be rebuilt, and the error says so);
2. rebuilds the training set with :func:`pitlake.training_set.build.build` from exactly those pins and
   label window, and requires the same content hash;
3. retrains with the recorded seed, candidates, features and split (an experiment's model: its
   recorded estimator and trial params; nothing is logged or registered) and requires every recorded
   evaluation metric to match within :data:`METRIC_TOLERANCE`: scikit-learn's fits are deterministic
   for a fixed seed, row order and single thread, so any larger difference means the data or code changed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pitlake.core import tracking
from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.lineage.manifest import InputRecord, LineageManifest
from pitlake.registry import promote as registry
from pitlake.training import dataset
from pitlake.training_set.manifest import TrainingSetManifest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

METRIC_TOLERANCE = 1e-9
COMPARED = ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "precision", "recall", "threshold")
RANKING_COMPARED = (
    "roc_auc", "pr_auc",
    *(f"{p}{m}_at_{k}" for p in ("", "baseline_") for m in ("ndcg", "precision", "recall", "coverage")
      for k in (5, 10)),
)  # fmt: skip


def check_pins_readable(inputs: tuple[InputRecord, ...], model: str, version: int) -> None:
    from deltalake.exceptions import DeltaError

    for record in inputs:
        try:
            gone = dataset.vacuumed_files(record.path, record.delta_version)
        except (DeltaError, OSError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(
                f"{record.table} version {record.delta_version} pinned by {model} v{version} cannot be read ({first}): "
                "restore the table or retrain on a new training set"
            ) from None
        if gone:
            raise InputError(
                f"{record.table} version {record.delta_version} pinned by {model} v{version} was vacuumed "
                f"({len(gone)} data files gone): it cannot be rebuilt; restore them from a backup or retrain on a new "
                "training set (keep pins with pitlake.registry.promote.pinned_versions in the maintenance DAG)"
            )


def preflight(settings: Settings, model_name: str, version: int) -> LineageManifest:
    """The version's lineage manifest, after checking its pins are still readable (no Spark needed)."""
    from pitlake.core.names import check_name

    check_name(model_name, "model name")  # it goes into a registry filter and the result's file name
    manifest = registry.model_manifest(tracking.connect(settings), model_name, version)
    check_pins_readable(manifest.inputs, model_name, version)
    return manifest


def reproduce(spark: SparkSession, settings: Settings, model_name: str, version: int) -> dict[str, Any]:
    from pitlake.training.fit import fit_and_evaluate
    from pitlake.training_set.build import build, get_use_case

    manifest = preflight(settings, model_name, version)
    ts = manifest.training_set
    use_case = get_use_case(ts.use_case)
    pins = {record.table: record.delta_version for record in manifest.inputs}
    rebuilt = build(
        spark,
        settings,
        use_case,
        date.fromisoformat(ts.label_start),
        date.fromisoformat(ts.label_end),
        pins=pins,
        as_of_write=ts.as_of_write,
    )
    if rebuilt.content_hash != ts.content_hash or rebuilt.row_count != ts.row_count:
        raise InputError(
            f"rebuilt training set of {model_name} v{version} differs: hash {rebuilt.content_hash[:12]} "
            f"({rebuilt.row_count} rows) vs recorded {ts.content_hash[:12]} ({ts.row_count} rows) from the same pins; "
            "the PIT join or the input tables changed"
        )
    frame = dataset.read_training_set(settings, use_case, rebuilt)
    training = manifest.training
    what = f"rebuilt training set {rebuilt.training_set_id}"
    if use_case.task == "ranking":  # the recommender: its ranker refit, both rankings measured again
        from pitlake.training.recommend import BASELINE, RANKER, fit_ranker

        ranked = fit_ranker(frame, use_case=use_case, features=list(training.feature_columns), seed=training.seed,
                            what=what)  # fmt: skip
        reproduced = ranked.metrics[RANKER] | {f"baseline_{k}": v for k, v in ranked.metrics[BASELINE].items()}
        return _compare(manifest, model_name, version, rebuilt, pins, RANKER, reproduced, RANKING_COMPARED)
    if manifest.experiment is not None:  # an experiment's chosen trial: its estimator and params, refit
        from pitlake.training.compare import refit_chosen

        outcome = refit_chosen(frame, use_case=use_case, record=manifest.experiment, training=training, what=what)
    else:
        outcome = fit_and_evaluate(
            frame,
            use_case=use_case,
            features=list(training.feature_columns),
            seed=training.seed,
            candidates=training.candidates,
            eval_fraction=training.eval_fraction,
            purge=timedelta(days=training.purge_days),
            what=what,
        )
    return _compare(manifest, model_name, version, rebuilt, pins, outcome.selected.name, outcome.metrics(), COMPARED)


def _compare(
    manifest: LineageManifest, model_name: str, version: int, rebuilt: TrainingSetManifest, pins: dict[str, int],
    selected: str, reproduced: dict[str, float], compared: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    """The reproduction's report; an :class:`InputError` when the refit chose another model or a metric moved."""
    training = manifest.training
    keys = [k for k in manifest.metrics if k in compared or k.startswith("candidate.")]
    differences = {k: abs(float(reproduced[k]) - float(manifest.metrics[k])) for k in keys if k in reproduced}
    worst = max(differences.items(), key=lambda kv: kv[1], default=("", 0.0))
    if selected != training.selected or worst[1] > METRIC_TOLERANCE:
        raise InputError(
            f"retraining {model_name} v{version} on the rebuilt training set does not reproduce it: selected "
            f"{selected} (recorded {training.selected}), largest metric difference {worst[0]} = "
            f"{worst[1]:.3g} > {METRIC_TOLERANCE}; check the code commit ({manifest.code.git_commit}) and packages"
        )
    return {
        "model": model_name,
        "version": version,
        "run_id": manifest.model.run_id,
        "training_set_id": rebuilt.training_set_id,
        "content_hash": rebuilt.content_hash,
        "hash_matches": True,
        "rebuilt_delta_version": rebuilt.delta_version,
        "pins": pins,
        "selected_model": selected,
        "metrics_recorded": {k: manifest.metrics[k] for k in keys},
        "metrics_reproduced": {k: reproduced[k] for k in keys},
        "max_abs_difference": worst[1],
        "tolerance": METRIC_TOLERANCE,
    }
