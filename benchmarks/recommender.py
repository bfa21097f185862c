"""The recommender on the demo's data: training and evaluation time, NDCG@10 against the popularity
baseline (goal: >= 1.5x) and the ground-truth ceiling, and the candidate pool's reach.

The demo is found like the lineage benchmark's (the orchestration benchmark's, ``PITLAKE_HOME``'s, or one
run here); its newest ``product_recommendations`` training set is read at its pinned version. Measured
without MLflow: reading the rows, the ranker's fit (:func:`pitlake.training.recommend.fit_ranker`, which
also ranks every evaluation query with the ranker and the baseline), and the ceiling; then P/R/NDCG@K and
coverage for K = 5, 10 of the three, the candidate pool's recall (its share of the purchases), and the
lift of the ranker's NDCG@10 over the baseline's.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from benchmarks.lineage import _demo_home
from benchmarks.run import Section, table

if TYPE_CHECKING:
    from benchmarks.run import Context


def run(ctx: Context) -> Section:
    from pitlake.core.settings import load
    from pitlake.training.recommend import BASELINE, RANKER, fit_ranker, ground_truth_ceiling
    from pitlake.training.train import load_snapshot, read_rows
    from pitlake.training_set.build import get_use_case
    from pitlake.training_set.manifest import latest_manifest

    home, which = _demo_home(ctx)
    settings = dataclasses.replace(load(), home=home, mlflow_tracking_uri=None)
    uc = get_use_case("product_recommendations")
    snapshot = load_snapshot(settings, uc, latest_manifest(settings, uc.name).training_set_id)
    began = time.perf_counter()
    frame = read_rows(settings, snapshot)
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    outcome = fit_ranker(frame, use_case=uc, features=snapshot.feature_columns, seed=7, what="benchmark")
    fit_eval_s = time.perf_counter() - began
    began = time.perf_counter()
    ceiling = ground_truth_ceiling(settings, outcome.eval_frame, query=uc.query, catalog=outcome.catalog)
    ceiling_s = time.perf_counter() - began
    assert not isinstance(ceiling, str), ceiling
    results = {"popularity baseline": outcome.metrics[BASELINE], f"ranker ({RANKER})": outcome.metrics[RANKER],
               "ground-truth ceiling": ceiling}  # fmt: skip
    metrics = ["ndcg_at_10", "ndcg_at_5", "precision_at_5", "precision_at_10", "recall_at_5", "recall_at_10",
               "coverage_at_10"]  # fmt: skip
    rows: list[list[object]] = [[name, *(f"{m[k]:.4f}" for k in metrics)] for name, m in results.items()]
    base, ranker, best = (results[n]["ndcg_at_10"] for n in results)
    queries = int(outcome.metrics[RANKER]["queries"])
    judged = int(outcome.metrics[RANKER]["queries_with_purchases"])
    figures = {"ndcg_at_10": ranker, "baseline_ndcg_at_10": base, "ceiling_ndcg_at_10": best,
               "lift": ranker / base, "fit_eval_s": fit_eval_s}  # fmt: skip
    body = (
        f"On {which} (`{home.name}`): training set `{snapshot.training_set_id}` (Delta v{snapshot.version}, "
        f"{len(frame):,} candidate rows, {frame['label'].mean():.4f} bought); the ranker trains on "
        f"{len(outcome.part.y_train):,} rows and is evaluated on {len(outcome.part.y_eval):,} candidates of "
        f"{queries:,} queries ({judged:,} with a purchase in the horizon), a catalog of {len(outcome.catalog)} "
        "products (every product that was a candidate of some query).\n\n"
        + table(["ranking", *metrics], rows)
        + f"\n\n- NDCG@10: ranker {ranker:.4f} = **{ranker / base:.2f}x** the popularity baseline's {base:.4f} "
        f"(goal >= 1.5x); {ranker / best:.1%} of the ground-truth ceiling {best:.4f}.\n"
        f"- A query's candidate pool holds on average {outcome.candidate_recall:.1%} of the products it bought in "
        "the horizon: the highest Recall@K any ranking of the pool can reach (the ground truth ranks every "
        "product).\n"
        f"- Time: read the rows {read_s:.1f} s; fit the ranker and rank every evaluation query with both "
        f"models {fit_eval_s:.1f} s (the fit alone {outcome.fit_seconds:.1f} s); the ceiling {ceiling_s:.1f} s."
    )
    return Section("Recommender: NDCG@10 against popularity and the ceiling", body, figures)
