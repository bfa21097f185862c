"""Ranking metrics by hand, the popularity baseline's order, and the ground-truth ceiling summed over the horizon."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pitlake.training.ranking import candidate_recall, ranking_metrics, top_k

QUERY = ("customer_id", "label_time")
T1, T2, T3 = (datetime(2026, 1, 10, h) for h in (9, 10, 11))


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rows = [
        # q1: a, b, c by score; relevant b (in the pool) and z (not in it)
        ("A", T1, "a", 1, 0.9, 0, ["b", "z"]),
        ("A", T1, "b", 1, 0.5, 1, ["b", "z"]),
        ("A", T1, "c", 1, 0.1, 0, ["b", "z"]),
        # q2: no purchase: left out of precision, recall and NDCG, counted in coverage
        ("B", T2, "a", 1, 0.2, 0, []),
        ("B", T2, "c", 1, 0.8, 0, []),
        # q3: a tie, broken by item: b before c
        ("C", T3, "c", 1, 0.3, 1, ["c"]),
        ("C", T3, "b", 1, 0.3, 0, ["c"]),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "label_time", "product_id", "x", "score", "label", "relevant"])
    return frame, frame.pop("score").to_numpy()


def test_precision_recall_ndcg_and_coverage_by_hand():
    frame, scores = _frame()
    m = ranking_metrics(frame, scores, query=QUERY, item="product_id", relevant="relevant", catalog_size=4, ks=(1, 2))
    # k=1: q1 recommends a, q3 b: no hit. Items recommended: a (q1), c (q2), b (q3).
    assert m["precision_at_1"] == 0 and m["recall_at_1"] == 0 and m["ndcg_at_1"] == 0
    assert m["coverage_at_1"] == 3 / 4
    # k=2: q1 [a, b]: b at rank 2 of 2 relevant; q3 [b, c]: c at rank 2 of 1 relevant.
    g2 = 1 / math.log2(3)
    assert m["precision_at_2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["recall_at_2"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert m["ndcg_at_2"] == pytest.approx((g2 / (1 + g2) + g2 / 1) / 2)
    assert m["coverage_at_2"] == 3 / 4
    assert m["queries"] == 3 and m["queries_with_purchases"] == 2
    # q1's pool holds 1 of its 2 purchases, q3's its only one: recall@K can reach (1/2 + 1) / 2 at most.
    assert candidate_recall(frame, query=QUERY, label="label", relevant="relevant") == pytest.approx((1 / 2 + 1) / 2)


def test_top_k_orders_by_score_then_item():
    frame, scores = _frame()
    lists = top_k(frame, scores, query=QUERY, item="product_id", k=2)
    got = [(r.customer_id, r.product_id, r.rank) for r in lists.itertuples()]
    assert got == [("A", "a", 1), ("A", "b", 2), ("B", "c", 1), ("B", "a", 2), ("C", "b", 1), ("C", "c", 2)]


def test_no_query_with_a_purchase_is_an_error_not_a_zero():
    frame, scores = _frame()
    frame["relevant"] = [[]] * len(frame)
    with pytest.raises(ValueError, match="no query has a relevant item"):
        ranking_metrics(frame, scores, query=QUERY, item="product_id", relevant="relevant", catalog_size=4)


def test_the_popularity_baseline_ranks_by_purchases_then_views():
    from pitlake.training.recommend import popularity_scores

    frame = pd.DataFrame({"count_product_purchases_7d": [3, 3, None, 10], "count_product_views_7d": [5, 50, 1000, 0]})
    assert list(np.argsort(-popularity_scores(frame), kind="stable")) == [3, 1, 0, 2]


def test_the_ceiling_ranks_by_expected_purchases_over_the_whole_horizon(tmp_path, repo_settings):
    from pitlake.training.recommend import ground_truth_ceiling

    settings = dataclasses.replace(repo_settings, home=tmp_path)
    day = date(2026, 1, 10)
    for i in range(8):  # the label day and the 7 after it
        d = day + timedelta(days=i)
        # On one day k1 buys twice as much, and then mostly pB: summed over the horizon pB (3.9) beats
        # pA (3.7), though pA is likelier on 7 of the 8 days.
        rate, products = (2.0, [["pB", 0.9], ["pA", 0.1]]) if i == 3 else (1.0, [["pA", 0.5], ["pB", 0.3], ["pC", 0.2]])
        folder = settings.landing / "ground_truth" / f"date={d.isoformat()}"
        folder.mkdir(parents=True)
        rows = [{"customer_id": "k1", "expected_purchases": rate, "products": products},
                {"customer_id": "k2", "expected_purchases": 1.0, "products": [["pC", 1.0]]}]  # fmt: skip
        (folder / "part-0000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame = pd.DataFrame(
        {"customer_id": ["k1", "k1"], "label_time": [T1, T1], "label_date": [day, day],
         "product_id": ["pA", "pC"], "relevant_products": [["pB"], ["pB"]]}
    )  # fmt: skip
    m = ground_truth_ceiling(settings, frame, query=QUERY, catalog=frozenset({"pA", "pC"}))
    assert isinstance(m, dict)
    assert m["ndcg_at_5"] == 1.0 and m["precision_at_5"] == pytest.approx(1 / 5) and m["recall_at_5"] == 1.0
    assert m["coverage_at_5"] == 1.0  # it lists pB, pA, pC: of the catalog (the candidates pA, pC), both
    (settings.landing / "ground_truth" / "date=2026-01-17" / "part-0000.jsonl").unlink()
    assert ground_truth_ceiling(settings, frame, query=QUERY, catalog=frozenset({"pA", "pC"})) == (
        f"no ground truth for 2026-01-17 in {settings.landing / 'ground_truth'}"
    )
