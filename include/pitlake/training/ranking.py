"""Ranking metrics of a recommender, per query, then averaged: Precision@K, Recall@K, NDCG@K, coverage.

A *query* is one recommendation request (a customer at ``label_time``); its rows are its candidates
with the model's score. The top K candidates by score (ties: by item, so a ranking is reproducible)
are the recommendation. For a query with ``R`` relevant items (every product bought in the horizon,
in the candidate pool or not) and ``h`` of them in its top K:

* Precision@K = h / K;
* Recall@K = h / R;
* NDCG@K = DCG / IDCG, DCG = Σ 1/log2(rank + 1) over the relevant items in the top K, IDCG the same
  for an ideal list (min(K, R) relevant items first);
* coverage@K = distinct items of the catalog in any query's top K / the catalog's size (the recommender's
  catalog: every product that was a candidate of some query).

Precision, recall and NDCG average over the queries with at least one relevant item (a query
without a purchase cannot be ranked well or badly); coverage counts every query's list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KS = (5, 10)
PRIMARY = "ndcg_at_10"


def top_k(frame: pd.DataFrame, scores: np.ndarray, *, query: Sequence[str], item: str, k: int) -> pd.DataFrame:
    """Each query's ``k`` best-scored rows of ``frame`` with their ``rank`` (1 = best); ties by ``item``."""
    ranked = frame[[*query, item]].assign(_score=np.asarray(scores, dtype=float), _item=frame[item].astype(str))
    ranked = ranked.sort_values([*query, "_score", "_item"], ascending=[*([True] * len(query)), False, True])
    ranked["rank"] = ranked.groupby(list(query), sort=False).cumcount() + 1
    return ranked[ranked["rank"] <= k].drop(columns=["_score", "_item"])


def metrics_of_lists(
    lists: pd.DataFrame,
    relevant: pd.Series,
    *,
    query: Sequence[str],
    item: str,
    ks: Sequence[int],
    catalog_size: int,
    catalog: set[str] | None = None,
) -> dict[str, float]:
    """Metrics of recommendation ``lists`` (``query`` columns, ``item``, ``rank``) against ``relevant``: a
    Series indexed by the query columns holding each query's relevant items (any iterable). With ``catalog``,
    coverage counts only the items in it (a list that may name items outside the catalog: the ceiling's)."""
    rel = relevant.apply(lambda items: frozenset(str(i) for i in items))
    judged = rel[rel.map(len) > 0]
    out: dict[str, float] = {"queries": float(len(rel)), "queries_with_purchases": float(len(judged))}
    if judged.empty:
        raise ValueError("no query has a relevant item: ranking metrics are undefined")
    keyed = lists.set_index(list(query))
    hit = np.array(
        [str(i) in rel.get(q, frozenset()) for q, i in zip(keyed.index, keyed[item], strict=True)], dtype=bool
    )
    keyed = keyed.assign(_hit=hit, _gain=np.where(hit, 1.0 / np.log2(keyed["rank"].to_numpy() + 1.0), 0.0))
    for k in ks:
        inside = keyed[keyed["rank"] <= k]
        hits = inside.groupby(level=list(range(len(query))))["_hit"].sum().reindex(judged.index, fill_value=0)
        dcg = inside.groupby(level=list(range(len(query))))["_gain"].sum().reindex(judged.index, fill_value=0.0)
        n_rel = judged.map(len).to_numpy()
        ideal = np.array([np.sum(1.0 / np.log2(np.arange(2, min(k, r) + 2))) for r in n_rel])
        out[f"precision_at_{k}"] = float(np.mean(hits.to_numpy() / k))
        out[f"recall_at_{k}"] = float(np.mean(hits.to_numpy() / n_rel))
        ndcg = dcg.to_numpy() / ideal
        out[f"ndcg_at_{k}"] = float(np.mean(ndcg))
        out[f"ndcg_at_{k}_se"] = float(np.std(ndcg, ddof=1) / np.sqrt(len(ndcg))) if len(ndcg) > 1 else 0.0
        shown = set(inside[item].astype(str)) if catalog is None else set(inside[item].astype(str)) & catalog
        out[f"coverage_at_{k}"] = len(shown) / catalog_size if catalog_size else 0.0
    return out


def ranking_metrics(
    frame: pd.DataFrame,
    scores: np.ndarray,
    *,
    query: Sequence[str],
    item: str,
    relevant: str,
    catalog_size: int,
    ks: Sequence[int] = KS,
) -> dict[str, float]:
    """The metrics of ranking each query's rows of ``frame`` by ``scores``; ``relevant`` is the column
    holding each query's relevant items (the same on every row of a query)."""
    lists = top_k(frame, scores, query=query, item=item, k=max(ks))
    per_query = frame.drop_duplicates(list(query)).set_index(list(query))[relevant]
    return metrics_of_lists(lists, per_query, query=query, item=item, ks=ks, catalog_size=catalog_size)


def candidate_recall(frame: pd.DataFrame, *, query: Sequence[str], label: str, relevant: str) -> float:
    """The mean over queries with a relevant item of the share of them the query's candidate pool holds: the
    highest Recall@K any ranking of the pool can reach."""
    per_query = frame.groupby(list(query), sort=False).agg(found=(label, "sum"), total=(relevant, "first"))
    total = per_query["total"].map(len)
    judged = total > 0
    return float((per_query.loc[judged, "found"] / total[judged]).mean()) if judged.any() else 0.0
