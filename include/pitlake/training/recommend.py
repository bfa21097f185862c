"""Train a ranking use case (``product_recommendations``), log it to MLflow, register it and gate it on NDCG@10.

``train_recommender(settings, training_set_id=...)``:

1. reads the training set (one row per candidate of a query) at its pinned Delta version and refuses a
   failed validation result, as ``train`` does;
2. splits it by time as ``train`` does (the newest 20% of label dates evaluate, a 7-day purge);
3. ranks each evaluation query's candidates two ways: the **popularity baseline** (the product's
   purchases over the last 7 days, then its views) and the **ranker**, a gradient-boosted classifier
   of "bought in the horizon" over every feature of the candidate (product, customer × category,
   customer × product, customer), fit on the training part;
4. measures both with Precision/Recall/NDCG@K and coverage (:mod:`pitlake.training.ranking`), and,
   with the demo's ground truth, the **ceiling**: the same metrics of the generator's own ranking of
   every product by its expected purchases over the horizon (not only the candidate pool);
5. the quality floor is the baseline's NDCG@10 on the same queries; a ranker above the ceiling by more
   than twice its standard error (at least :data:`MIN_LEAKAGE_TOLERANCE`), or a feature that alone
   separates the evaluation labels, is suspected leakage;
6. logs one parent run (nested runs for the baseline and the ranker, the metrics of all three, the
   lineage manifest, the model), registers the ranker as ``challenger`` and runs the ranking gate
   (:mod:`pitlake.registry.ranking_gate`): it must beat the floor and the champion re-scored on the
   same queries.

:func:`train_use_case` picks ``train`` or this by the use case's task.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline

from pitlake.core import tracking
from pitlake.core.settings import Settings
from pitlake.labels.build import HORIZON
from pitlake.lineage import manifest as lineage
from pitlake.registry import promote as registry
from pitlake.registry import ranking_gate
from pitlake.registry.lock import registry_lock
from pitlake.training import dataset, mlflow_log
from pitlake.training.candidates import make_pipeline
from pitlake.training.fit import EVAL_FRACTION, Holdout, holdout
from pitlake.training.provenance import Provenance, Snapshot, build_manifest
from pitlake.training.quality import separating_features
from pitlake.training.ranking import KS, PRIMARY, candidate_recall, metrics_of_lists, ranking_metrics
from pitlake.training.train import (
    TrainResult,
    as_training_job,
    lineage_datasets,
    load_snapshot,
    passed_validations,
    read_rows,
    select_features,
    train,
)
from pitlake.training_set.build import UseCase, get_use_case

if TYPE_CHECKING:
    from pitlake.core.openlineage import JobRun

log = logging.getLogger(__name__)

BASELINE = "popularity"
RANKER = "hist_gradient_boosting"
ITEM = "product_id"
RELEVANT = "relevant_products"
POPULARITY = ("count_product_purchases_7d", "count_product_views_7d")
MIN_LEAKAGE_TOLERANCE = 0.01


def train_use_case(settings: Settings, *, use_case: str = "purchase_propensity", **kwargs: Any) -> TrainResult:
    """``train`` for a classification use case, :func:`train_recommender` for a ranking one."""
    if get_use_case(use_case).task == "ranking":
        kwargs.pop("candidates", None)
        return train_recommender(settings, use_case=use_case, **kwargs)
    return train(settings, use_case=use_case, **kwargs)


@dataclass
class RankingOutcome:
    """What fitting and evaluating the ranker decided, without MLflow."""

    part: Holdout
    eval_frame: pd.DataFrame
    model: Pipeline
    scores: dict[str, np.ndarray]  # per model, of the evaluation rows
    metrics: dict[str, dict[str, float]]  # per model (and "ceiling" with ground truth)
    catalog: frozenset[str]  # every product that was a candidate of some query: coverage's denominator
    candidate_recall: float
    fit_seconds: float


def popularity_scores(frame: pd.DataFrame) -> np.ndarray:
    """The baseline's score of each candidate: its purchases over 7 days, ties broken by its views."""
    purchases, views = (pd.to_numeric(frame[c], errors="coerce").fillna(0.0).to_numpy() for c in POPULARITY)
    return purchases * 1e6 + views


def fit_ranker(frame: pd.DataFrame, *, use_case: UseCase, features: list[str], seed: int, what: str) -> RankingOutcome:
    """Split by time, fit the ranker, rank every evaluation query with it and with the baseline."""
    part = holdout(frame, use_case=use_case, features=features, purge=HORIZON, what=what)
    eval_frame = frame.iloc[part.split.eval_index].reset_index(drop=True)
    began = time.monotonic()
    model = make_pipeline(RANKER, part.numeric, part.categorical, seed).fit(part.x_train, part.y_train)
    fit_seconds = time.monotonic() - began
    scores = {BASELINE: popularity_scores(eval_frame), RANKER: model.predict_proba(part.x_eval)[:, 1]}
    catalog = frozenset(frame[ITEM].astype(str))
    metrics = {}
    for name, s in scores.items():
        metrics[name] = ranking_metrics(
            eval_frame, s, query=use_case.query, item=ITEM, relevant=RELEVANT, catalog_size=len(catalog)
        ) | {"roc_auc": float(roc_auc_score(part.y_eval, s)), "pr_auc": float(average_precision_score(part.y_eval, s))}
    recall = candidate_recall(eval_frame, query=use_case.query, label=use_case.label_column, relevant=RELEVANT)
    return RankingOutcome(part, eval_frame, model, scores, metrics, catalog, recall, fit_seconds)


def ground_truth_ceiling(
    settings: Settings, eval_frame: pd.DataFrame, *, query: tuple[str, ...], catalog: frozenset[str]
) -> dict[str, float] | str:
    """The metrics of the generator's own ranking of each evaluation query, or why there is none.

    A query of customer c on label date d ranks every product by its expected purchases over the
    horizon, Σ over days d..d+7 of (c's expected purchases that day × the chance a purchase of c's goes
    to it), from the ground truth's likeliest products of each day.
    """
    folder = dataset.ground_truth_dir(settings)
    if not folder.is_dir():
        return f"no ground truth at {folder} (real data)"
    queries = eval_frame.drop_duplicates(list(query))
    dates = pd.to_datetime(queries["label_date"]).dt.date
    needed = sorted({d + timedelta(days=i) for d in dates.unique() for i in range(HORIZON.days + 1)})
    truth: dict[tuple[str, Any], tuple[float, list[list[Any]]]] = {}
    for day in needed:
        files = sorted((folder / f"date={day.isoformat()}").glob("part-*.jsonl"))
        if not files:
            return f"no ground truth for {day} in {folder}"
        for file in files:
            for line in file.read_text().splitlines():
                row = json.loads(line)
                if "products" not in row:
                    return f"ground truth for {day} names no products (written by an older generator)"
                truth[(str(row["customer_id"]), day)] = (float(row["expected_purchases"]), row["products"])
    rows = []
    k = max(KS)
    for (_, q), day in zip(queries.iterrows(), dates, strict=True):
        expected: dict[str, float] = {}
        for i in range(HORIZON.days + 1):
            rate, products = truth.get((str(q["customer_id"]), day + timedelta(days=i)), (0.0, []))
            for pid, p in products:
                expected[pid] = expected.get(pid, 0.0) + rate * float(p)
        best = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        rows += [(*(q[c] for c in query), pid, rank) for rank, (pid, _) in enumerate(best, start=1)]
    lists = pd.DataFrame(rows, columns=[*query, ITEM, "rank"])
    relevant = queries.set_index(list(query))[RELEVANT]
    return metrics_of_lists(lists, relevant, query=query, item=ITEM, ks=KS, catalog_size=len(catalog),
                            catalog=set(catalog))  # fmt: skip


def assess_ranking(outcome: RankingOutcome, ceiling: dict[str, float] | str) -> lineage.QualityRecord:
    """The floor (the baseline's NDCG@10) and the leakage verdict of the ranker."""
    value = outcome.metrics[RANKER][PRIMARY]
    reasons = separating_features(outcome.part.x_eval, outcome.part.numeric, outcome.part.y_eval)
    tolerance = None
    if not isinstance(ceiling, str):
        tolerance = max(MIN_LEAKAGE_TOLERANCE, 2 * ceiling[f"{PRIMARY}_se"])
        if value > ceiling[PRIMARY] + tolerance:
            reasons.append(
                f"{RANKER} {PRIMARY} {value:.4f} exceeds the ground-truth ceiling {ceiling[PRIMARY]:.4f} + "
                f"tolerance {tolerance:.4f}"
            )
    return lineage.QualityRecord(
        ceiling_auc=None,
        ceiling_auc_propensity=None,
        ceiling_skipped=ceiling if isinstance(ceiling, str) else f"ranking model: its ceiling is ceiling_{PRIMARY}",
        quality_floor=outcome.metrics[BASELINE][PRIMARY],
        floor_source=f"popularity baseline's {PRIMARY} on the same queries",
        leakage_tolerance=tolerance,
        suspected_leakage=bool(reasons),
        leakage_reasons=tuple(reasons),
    )


def run_metrics(
    outcome: RankingOutcome, ceiling: dict[str, float] | str, quality: lineage.QualityRecord
) -> dict[str, float]:
    """The parent run's metrics: the ranker's (unprefixed), the baseline's and the ceiling's (prefixed)."""
    out = dict(outcome.metrics[RANKER])
    out |= {f"baseline_{k}": v for k, v in outcome.metrics[BASELINE].items()}
    if not isinstance(ceiling, str):
        out |= {f"ceiling_{k}": v for k, v in ceiling.items()}
    base = outcome.metrics[BASELINE][PRIMARY]
    out |= {
        "lift_over_baseline": out[PRIMARY] / base if base > 0 else float("inf"),
        "candidate_recall": outcome.candidate_recall,
        "catalog_size": float(len(outcome.catalog)),
        "quality_floor": quality.quality_floor,
        "train_rows": float(len(outcome.part.y_train)),
        "eval_rows": float(len(outcome.part.y_eval)),
        "eval_positive_rate": float(np.mean(outcome.part.y_eval)),
        "fit_seconds": outcome.fit_seconds,
    }
    if quality.leakage_tolerance is not None:
        out["leakage_tolerance"] = quality.leakage_tolerance
    return out


def train_recommender(
    settings: Settings,
    *,
    use_case: str = "product_recommendations",
    training_set_id: str,
    airflow: dict[str, Any] | None = None,
    validation_results: list[dict[str, Any]] | None = None,
    upstream_versions: dict[str, Any] | None = None,
    feature_columns: list[str] | None = None,
    seed: int = 7,
    lineage_parent: str | None = None,
    lineage_root: str | None = None,
    training_set_run_id: str | None = None,
    lineage_run: JobRun | None = None,
) -> TrainResult:
    """Train, log, register and gate the ranker of ``use_case`` on ``training_set_id`` (see the module docstring)."""

    def run_in(run: JobRun) -> TrainResult:
        uc = get_use_case(use_case)
        snapshot = load_snapshot(settings, uc, training_set_id)
        features = select_features(snapshot, feature_columns)
        provenance = Provenance(
            code=lineage.git_state(),
            airflow=lineage.airflow_record(airflow),
            validations=passed_validations(validation_results),
            upstream_versions=upstream_versions,
        )
        frame = read_rows(settings, snapshot)
        outcome = fit_ranker(frame, use_case=uc, features=features, seed=seed, what=f"training set {training_set_id}")
        ceiling = ground_truth_ceiling(settings, outcome.eval_frame, query=uc.query, catalog=outcome.catalog)
        quality = assess_ranking(outcome, ceiling)
        return _log_register_gate(settings, run, snapshot, frame, outcome, ceiling, quality, provenance, seed,
                                  training_set_run_id)  # fmt: skip

    return as_training_job(settings, use_case, run_in, lineage_parent, lineage_root, lineage_run)


def _log_register_gate(
    settings: Settings,
    run_record: JobRun,
    snapshot: Snapshot,
    frame: pd.DataFrame,
    outcome: RankingOutcome,
    ceiling: dict[str, float] | str,
    quality: lineage.QualityRecord,
    provenance: Provenance,
    seed: int,
    training_set_run_id: str | None,
) -> TrainResult:
    import mlflow

    uc, training_set_id, part = snapshot.use_case, snapshot.training_set_id, outcome.part
    metrics = run_metrics(outcome, ceiling, quality)
    client = tracking.connect(settings)
    experiment_id = tracking.ensure_experiment(client, settings, uc.name)
    tags = mlflow_log.run_tags(snapshot, provenance, quality) | {"pitlake.task": "ranking"}
    ranker = outcome.model.named_steps["model"]
    params = {f"{RANKER}.{k}": v for k, v in ranker.get_params(deep=False).items()
              if k in ("max_iter", "learning_rate", "max_leaf_nodes", "random_state")}  # fmt: skip
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{uc.name}-{training_set_id[:8]}", tags=tags) as run:
        run_id = run.info.run_id
        mlflow_log.log_training_data(frame, snapshot, part.features)
        for name, scored in outcome.metrics.items():
            with mlflow.start_run(run_name=name, nested=True, experiment_id=experiment_id, tags=tags):
                mlflow.log_params(
                    {"candidate": name, **(params if name == RANKER else {"score": " then ".join(POPULARITY)})}
                )
                mlflow.log_metrics(scored)
        mlflow.log_params({
            "use_case": uc.name, "training_set_id": training_set_id, "training_set_version": snapshot.version,
            "seed": seed, "candidates": f"{BASELINE},{RANKER}", "selected_model": RANKER, "primary_metric": PRIMARY,
            "selection_rule": f"the ranker; the popularity baseline's {PRIMARY} is its floor",
            "eval_fraction": EVAL_FRACTION, "n_features": len(part.features),
            "feature_columns": ",".join(part.features), **part.split.describe(), **params,
        })  # fmt: skip
        mlflow.log_metrics(metrics)
        table = {name: outcome.metrics[name] for name in outcome.metrics}
        if not isinstance(ceiling, str):
            table["ground-truth ceiling"] = ceiling
        mlflow.log_text(pd.DataFrame(table).T.to_csv(index_label="ranking"), "ranking/metrics.csv")
        info = mlflow_log.log_sklearn_model(outcome.model, part.x_eval.head(200), part.x_train.head(5))
        version = registry.register(
            client, uc.name, info.model_uri, run_id, {"training_set_id": training_set_id, "use_case": uc.name}
        )
        model_id = getattr(info, "model_id", None)
        record = build_manifest(
            settings, snapshot, provenance,
            model=lineage.ModelRecord(name=uc.name, version=version, run_id=run_id, model_uri=info.model_uri,
                                      estimator=RANKER, model_id=model_id),
            training=lineage.TrainingRecord(
                seed=seed, candidates=(BASELINE, RANKER), selected=RANKER, feature_columns=tuple(part.features),
                eval_fraction=EVAL_FRACTION, purge_days=part.split.purge.days,
                eval_start=part.split.eval_start.isoformat(), train_rows=len(part.y_train), eval_rows=len(part.y_eval),
                threshold=0.5, threshold_method=f"ranking: each query's top {max(KS)} candidates by score",
            ),
            quality=quality, metrics=metrics,
            openlineage=lineage.OpenLineageRecord(
                namespace=run_record.namespace, job=run_record.name, run_id=run_record.run_id,
                parent=str(run_record.parent) if run_record.parent else None,
                root=str(run_record.root) if run_record.root else None, training_set_run_id=training_set_run_id,
            ),
        )  # fmt: skip
        mlflow.set_tag("openlineage.run_id", run_record.run_id)
        mlflow.log_dict(record.to_dict(), lineage.MANIFEST_ARTIFACT)
        x_gate = dataset.model_inputs(outcome.eval_frame, snapshot.feature_columns)
        with registry_lock(settings, uc.name):
            champion = registry.aliases(client, uc.name).get("champion")
            champion = None if champion == version else champion
            rescored: float | str | None = None
            if champion is not None:
                scores = registry.version_scores(uc.name, champion, x_gate)
                rescored = scores if isinstance(scores, str) else ranking_metrics(
                    outcome.eval_frame, scores, query=uc.query, item=ITEM, relevant=RELEVANT,
                    catalog_size=len(outcome.catalog),
                )[PRIMARY]  # fmt: skip
            decision = ranking_gate.decide(uc.name, version, PRIMARY, metrics[PRIMARY], quality, champion, rescored)
            aliases = registry.apply_gate(client, uc.name, decision)
        mlflow.log_dict(decision.to_dict(), "gate/decision.json")
        mlflow.set_tags({"gate.outcome": "passed" if decision.passed else "failed", "model_version": str(version)})
    outcome_word = "passed" if decision.passed else "failed"
    log.info("model %s v%d: %s %.4f (baseline %.4f), gate %s, aliases %s", uc.name, version, PRIMARY,
             metrics[PRIMARY], metrics[f"baseline_{PRIMARY}"], outcome_word, aliases)  # fmt: skip
    return TrainResult(
        run_id=run_id, experiment_id=experiment_id, model_name=uc.name, model_version=version,
        model_uri=f"models:/{uc.name}/{version}", selected_model=RANKER, use_case=uc.name,
        training_set_id=training_set_id, training_set_version=snapshot.version, metrics=metrics, ceiling_auc=None,
        quality_floor=quality.quality_floor, suspected_leakage=quality.suspected_leakage,
        gate={**decision.to_dict(), "passed": decision.passed}, aliases=aliases,
        manifest_uri=f"runs:/{run_id}/{lineage.MANIFEST_ARTIFACT}", notes=list(record.notes), model_id=model_id,
        lineage=lineage_datasets(settings, uc, snapshot, version, run_id, experiment_id, model_id, metrics, aliases),
    )  # fmt: skip
