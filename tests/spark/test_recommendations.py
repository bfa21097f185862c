"""The recommender on the platform: the product feature views (exact rows, a null product left out),
its labelled candidates (exact rows), and a training set of five views trained, logged and gated on NDCG@10."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pitlake.features import get_view
from pitlake.training.recommend import RANKER

from tests.builders import EVENTS_DDL, write_table

T = datetime.fromisoformat
PRODUCTS_DDL = (
    "product_id string, name string, category string, price double, available boolean, launch_date date, "
    "change_id string, valid_from timestamp, ingest_date date, source_file string, line_number bigint, "
    "valid_to timestamp, is_current boolean"
)


def ev(eid, kind, cust, ts, product, category="books", amount=None, ingest=None):
    t = T(ts)
    return (eid, kind, cust, t, t.date(), amount, category, "s", ingest or t.date(), "f", 1, product)


# Day D = 2026-01-10: feature_time 01-11 00:00; 7d = [01-04, 01-11), 28d = [2025-12-14, 01-11).
EVENTS = [
    ev("e1", "page_view", "A", "2026-01-10 08:00:00", "p1"),
    ev("e2", "add_to_cart", "A", "2026-01-10 08:05:00", "p1"),
    ev("e3", "purchase", "A", "2026-01-10 08:10:00", "p1", amount=20.0),
    ev("e4", "page_view", "B", "2026-01-05 10:00:00", "p1"),
    ev("e5", "page_view", "B", "2026-01-09 10:00:00", "p2", "toys"),
    ev("e6", "purchase", "B", "2025-12-20 10:00:00", "p2", "toys", 15.0),
    ev("e7", "page_view", "A", "2026-01-10 09:00:00", None),  # an older feed: no product
    ev("e8", "add_to_cart", "B", "2025-12-01 10:00:00", "p2", "toys"),  # before every window: state only
]


def _rows(spark, settings, table, day):
    df = spark.read.format("delta").load(settings.table_path(table)).where(f"feature_date = '{day}'")
    view = get_view(table.split(".")[1])
    return sorted(tuple(r[c] for c in (*view.keys, *view.feature_names())) for r in df.collect())


def test_product_views_on_hand_built_events_leave_a_null_product_out(spark, lake):
    from pitlake.features.engine import build

    write_table(spark, lake, "bronze.events", EVENTS, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    day = date(2026, 1, 10)
    for name in ("product_popularity", "customer_category_affinity", "customer_product_interactions"):
        build(spark, lake, get_view(name), day, day)
    # views 1d/7d/28d, carts 7d/28d, purchases 1d/7d/28d, buyers 28d, conversion 28d
    assert _rows(spark, lake, "features.product_popularity", day) == [
        ("p1", 1, 2, 2, 1, 1, 1, 1, 1, 1, 0.5),
        ("p2", 0, 1, 1, 0, 0, 0, 0, 1, 1, 1.0),
    ]
    # views 7d/28d, carts 28d, purchases 28d, days since the last purchase in the category (all history).
    # A's product-less view (e7) counts for books; B's cart of 12-01 is outside every window.
    assert _rows(spark, lake, "features.customer_category_affinity", day) == [
        ("A", "books", 2, 2, 1, 1, 0),
        ("B", "books", 1, 1, 0, 0, None),
        ("B", "toys", 1, 1, 0, 1, 21),
    ]
    # views 7d/28d, carts 28d, purchases 28d, days since the last cart of the product (all history: 12-01)
    assert _rows(spark, lake, "features.customer_product_interactions", day) == [
        ("A", "p1", 1, 1, 1, 1, 0),
        ("B", "p1", 1, 1, 0, 0, None),
        ("B", "p2", 1, 1, 0, 1, 40),
    ]


def test_product_catalog_as_of_feature_time_with_price_bands_and_quiet_days(spark, lake):
    from pitlake.features.engine import build

    def version(pid, price, available, launch, valid_from, valid_to=None, category="books"):
        vf, vt = T(valid_from), T(valid_to) if valid_to else None
        return (pid, pid, category, price, available, date.fromisoformat(launch), f"c-{pid}-{valid_from}", vf,
                vf.date(), "f", 1, vt, vt is None)  # fmt: skip

    rows = [
        version("p1", 9.99, True, "2025-12-01", "2026-01-01 00:00:00", "2026-01-10 12:00:00"),
        version("p1", 30.0, True, "2025-12-01", "2026-01-10 12:00:00"),
        version("p2", 250.0, False, "2026-01-10", "2026-01-10 00:00:00", category="toys"),
        version("p3", 5.0, True, "2026-01-11", "2026-01-11 00:00:00"),  # at D's feature_time: D+1's
        version("p4", 10.0, True, "2026-01-01", "2026-01-01 00:00:00"),  # on a band's edge: the upper band
    ]
    write_table(spark, lake, "bronze.products", rows, PRODUCTS_DDL, mode="overwrite")
    view = get_view("product_catalog")
    build(spark, lake, view, date(2026, 1, 10), date(2026, 1, 10))
    # category, price, available, age in days, price band (edges 10, 25, 50, 100, 200)
    assert _rows(spark, lake, "features.product_catalog", date(2026, 1, 10)) == [
        ("p1", "books", 30.0, True, 40, 2),
        ("p2", "toys", 250.0, False, 0, 5),
        ("p4", "books", 10.0, True, 9, 1),
    ]
    # The catalog changed nothing after 01-11: 01-12 still builds (a sparse source), from the versions of then.
    result = build(spark, lake, view, date(2026, 1, 12), date(2026, 1, 12))
    assert result.rows_by_date == {"2026-01-12": 4}


def test_labelled_candidates_come_from_the_past_and_outcomes_from_the_horizon(spark, lake):
    from pitlake.labels.build import build_labels

    events = [
        ev("a0", "page_view", "A", "2026-01-10 09:00:00", "p9"),  # A's query: 09:00
        ev("a1", "add_to_cart", "A", "2026-01-05 10:00:00", "p1"),  # A's own history: p1
        ev("a2", "purchase", "A", "2026-01-12 10:00:00", "p1"),  # bought in the horizon
        ev("a3", "purchase", "A", "2026-01-13 10:00:00", "p7", "toys"),  # bought, not a candidate
        ev("a4", "purchase", "A", "2026-01-17 09:00:01", "p3"),  # just after the horizon
        ev("b0", "page_view", "B", "2026-01-10 12:00:00", None),  # B's query: 12:00 (no product needed)
        ev("b1", "purchase", "B", "2025-12-12 10:00:00", "p6", "sports"),  # 29 days before: not history
        ev("b2", "add_to_cart", "B", "2025-12-13 10:00:00", "p8", "home"),  # 28 days before: history
        ev("b3", "purchase", "B", "2026-01-16 12:00:00", "p5", "garden"),  # bought in the horizon
        ev("c1", "purchase", "C", "2026-01-08 10:00:00", "p5", "garden"),  # popular in the 7 days before
        ev("c2", "purchase", "C", "2026-01-08 11:00:00", "p5", "garden"),
        ev("c3", "purchase", "C", "2026-01-09 10:00:00", "p6", "sports"),
        ev("c4", "purchase", "C", "2026-01-02 10:00:00", "p2"),  # 8 days before: not popular
        ev("c5", "page_view", "C", "2026-01-25 10:00:00", "p2"),  # ingested days later: the horizon is observed
    ]
    write_table(spark, lake, "bronze.events", events, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    result = build_labels(spark, lake, date(2026, 1, 10), date(2026, 1, 10), "product_recommendations")
    assert result.table == "labels.product_recommendations" and result.dates_labelled == ["2026-01-10"]
    df = spark.read.format("delta").load(lake.table_path(result.table))
    got = sorted((r.customer_id, r.product_id, r.category, r.label_time, r.label, list(r.relevant_products))
                 for r in df.collect())  # fmt: skip
    a, b = T("2026-01-10 09:00:00"), T("2026-01-10 12:00:00")
    assert got == [
        ("A", "p1", "books", a, 1, ["p1", "p7"]),
        ("A", "p5", "garden", a, 0, ["p1", "p7"]),
        ("A", "p6", "sports", a, 0, ["p1", "p7"]),
        ("B", "p5", "garden", b, 1, ["p5"]),
        ("B", "p6", "sports", b, 0, ["p5"]),
        ("B", "p8", "home", b, 0, ["p5"]),
    ]
    assert (result.rows, result.positives) == (6, 2)


def test_a_first_day_with_visits_but_no_candidate_is_reported_not_labelled(spark, lake):
    from pitlake.labels.build import build_labels

    events = [
        ev("c1", "purchase", "C", "2026-01-02 10:00:00", "p2"),  # nothing bought before: no candidate yet
        ev("c2", "page_view", "C", "2026-01-20 10:00:00", "p2"),  # the horizon is observed
    ]
    write_table(spark, lake, "bronze.events", events, EVENTS_DDL, mode="overwrite", partition_by="event_date")
    result = build_labels(spark, lake, date(2026, 1, 2), date(2026, 1, 2), "product_recommendations")
    assert (result.dates_labelled, result.dates_without_rows, result.rows) == ([], ["2026-01-02"], 0)


# --------------------------------------------------------------------------- end to end: five views, one model

PRODUCTS = [f"p{i}" for i in range(8)]
CATEGORY = {p: ("books" if i < 4 else "toys") for i, p in enumerate(PRODUCTS)}
LABEL_DAYS = 20
START = date(2026, 1, 1)


def _ddl(view) -> str:
    from pitlake.validation.suites.features import feature_types

    types = feature_types(view)
    keys = ", ".join(f"{k} string" for k in view.keys)
    features = ", ".join(f"{n} {types[n]}" for n in view.feature_names())
    return f"{keys}, feature_time timestamp, feature_date date, computed_at timestamp, {features}"


def recommendation_history(spark, settings, customers: int = 24, seed: int = 3) -> None:
    """Label days from 2026-01-01: each customer has a favourite product they cart often and buy half the
    time; p0 is the shop's bestseller, bought by a quarter of visitors. Feature rows of the day before."""
    rng = np.random.default_rng(seed)
    favourite = {f"k{i:02d}": PRODUCTS[1 + i % 7] for i in range(customers)}
    names = ("customer_activity", "product_popularity", "product_catalog", "customer_category_affinity",
             "customer_product_interactions")  # fmt: skip
    labels: list[tuple] = []
    tables: dict[str, list[tuple]] = {name: [] for name in names}
    for d in range(LABEL_DAYS):
        day = START + timedelta(days=d)
        ft = datetime.combine(day, datetime.min.time())
        meta = (ft, day - timedelta(days=1), ft)
        for i, p in enumerate(PRODUCTS):
            sold = 40 if p == "p0" else 3 + i
            tables["product_popularity"].append((p, *meta, 9, 60, 200, 5, 20, 2, sold, 4 * sold, sold, 0.1))
            tables["product_catalog"].append((p, *meta, CATEGORY[p], 10.0 + 5 * i, True, 100 + d, 1 + i % 3))
        for cust, fav in favourite.items():
            tables["customer_activity"].append((cust, *meta, *([1] * 13), 0.5))
            for cat in ("books", "toys"):
                liked = CATEGORY[fav] == cat
                tables["customer_category_affinity"].append((cust, cat, *meta, 4, 9, 1, 3 if liked else 0, 2))
            tables["customer_product_interactions"].append((cust, fav, *meta, 2, 5, 3, 1, 1))
            tables["customer_product_interactions"].append((cust, "p0", *meta, 1, 2, 0, 0, None))
            if rng.random() < 0.4:
                continue
            at = ft + timedelta(hours=9, minutes=int(rng.integers(0, 600)))
            bought = sorted({p for p, chance in ((fav, 0.5), ("p0", 0.25)) if rng.random() < chance})
            for p in PRODUCTS:
                labels.append((cust, p, CATEGORY[p], at, day, int(p in bought), bought))
    write_table(spark, settings, "labels.product_recommendations", labels,
                "customer_id string, product_id string, category string, label_time timestamp, label_date date, "
                "label int, relevant_products array<string>", mode="error", partition_by="label_date")  # fmt: skip
    for name, rows in tables.items():
        view = get_view(name)
        write_table(spark, settings, view.table, rows, _ddl(view), mode="error", partition_by="feature_date")


def test_the_recommender_trains_on_five_views_beats_popularity_and_is_gated_on_ndcg(spark, mlflow_home):
    from mlflow import MlflowClient
    from pitlake.core import tracking
    from pitlake.training.recommend import train_use_case
    from pitlake.training_set.build import build, get_use_case

    settings = mlflow_home
    recommendation_history(spark, settings)
    use_case = get_use_case("product_recommendations")
    ts = build(spark, settings, use_case, START, START + timedelta(days=LABEL_DAYS - 1))
    assert ts.leakage_violations == {v.name: 0 for v in use_case.feature_views()}
    assert set(ts.inputs) == {use_case.label_table, *(v.table for v in use_case.feature_views())}
    # The affinity joined by the category the catalog gave each candidate: k00's favourite p1 is a book.
    rows = spark.read.format("delta").load(settings.table_path(use_case.table)).where("customer_id = 'k00'")
    got = {(r.product_id, r.category, r.count_category_purchases_28d) for r in rows.collect()}
    assert got == {(p, CATEGORY[p], 3 if CATEGORY[p] == "books" else 0) for p in PRODUCTS}

    first = train_use_case(settings, use_case="product_recommendations", training_set_id=ts.training_set_id)
    m = first.metrics
    # 8 candidates per query, all in the top 10; the ranker knows each customer's favourite, popularity does not.
    assert m["ndcg_at_10"] > m["baseline_ndcg_at_10"] + 0.1 and m["ndcg_at_5"] > m["baseline_ndcg_at_5"]
    assert m["recall_at_10"] == 1.0 and m["candidate_recall"] == 1.0 and m["coverage_at_10"] == 1.0
    assert first.quality_floor == m["baseline_ndcg_at_10"]
    assert first.gate_passed and first.aliases == {"champion": first.model_version}

    client = tracking.connect(settings)
    version = client.get_model_version("product_recommendations", str(first.model_version))
    assert version.tags["gate.metric"] == "ndcg_at_10" and version.tags["gate.outcome"] == "passed"
    # The registry's description speaks of the ranking: the gate's NDCG@10 against the popularity floor.
    assert "NDCG@10 " + f"{m['ndcg_at_10']:.4f} ≥ floor {m['baseline_ndcg_at_10']:.4f}" in version.description
    assert "| NDCG@10 | " in version.description and "Ranks candidates" in version.description
    run = client.get_run(first.run_id)
    assert run.data.params["primary_metric"] == "ndcg_at_10" and run.data.tags["pitlake.task"] == "ranking"
    nested = MlflowClient(tracking.tracking_uri(settings)).search_runs(
        [first.experiment_id], f"tags.mlflow.parentRunId = '{first.run_id}'"
    )
    assert sorted(r.info.run_name for r in nested) == ["hist_gradient_boosting", "popularity"]
    manifest = json.loads(Path(client.download_artifacts(first.run_id, "lineage/manifest.json")).read_text())
    pinned = {i["table"]: i["delta_version"] for i in manifest["inputs"]}
    assert pinned == {t: v["version"] for t, v in ts.inputs.items()}

    # Rebuilt from the pins its manifest records, the training set and the ranker's metrics come back identical.
    from pitlake.training.reproduce import reproduce

    again = reproduce(spark, settings, "product_recommendations", first.model_version)
    assert again["hash_matches"] and again["max_abs_difference"] == 0.0 and again["selected_model"] == RANKER
    assert "ndcg_at_10" in again["metrics_reproduced"] and "baseline_ndcg_at_10" in again["metrics_reproduced"]

    # The same data again: the champion, re-scored on the same queries, is not beaten by the margin.
    second = train_use_case(settings, use_case="product_recommendations", training_set_id=ts.training_set_id)
    assert not second.gate_passed
    assert second.gate["champion_value"] == pytest.approx(m["ndcg_at_10"])
    assert "does not beat champion" in " ".join(second.gate["reasons"])
    assert second.aliases == {"champion": first.model_version, "challenger": second.model_version}
