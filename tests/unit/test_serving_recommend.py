"""``POST /recommend`` through HTTP: the candidate pool of the labels (own carts and purchases, the most
bought products) read from the online store, each candidate's vector joined like a training row, ranked by
the champion. No JVM: feature tables written with delta-rs, materialized to SQLite, a small fitted champion."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pitlake.features import get_view
from pitlake.serving.app import create_app
from pitlake.serving.materialize import materialize
from pitlake.serving.store import SQLiteStore, sqlite_path
from pitlake.training.dataset import feature_kinds, model_inputs
from pitlake.training_set.build import get_use_case

from tests.builders import register_champion, write_feature_day

USE_CASE = get_use_case("product_recommendations")
FEATURES = USE_CASE.feature_columns()
AS_OF = datetime(2026, 1, 3)
DAY = "2026-01-02"  # feature_time 2026-01-03 00:00
SOLD = {"p1": 5, "p2": 3, "p3": 0, "p4": 1, "p5": 0}
CATEGORY = {"p1": "books", "p2": "books", "p3": "toys", "p4": "toys", "p5": "toys"}
ROWS = {
    "customer_activity": [{"customer_id": "c", "count_purchases_28d": 4}],
    "product_popularity": [{"product_id": p, "count_product_purchases_7d": n, "count_product_views_7d": 10 * n + 1}
                           for p, n in SOLD.items()],
    "product_catalog": [{"product_id": p, "category": c, "price": 20.0, "available": True, "product_age_days": 9,
                         "price_band": 1} for p, c in CATEGORY.items()],
    "customer_category_affinity": [{"customer_id": "c", "category": "toys", "count_category_purchases_28d": 3}],
    # c carted p3 (own history); only looked at p1 (not history)
    "customer_product_interactions": [
        {"customer_id": "c", "product_id": "p3", "count_interaction_carts_28d": 2},
        {"customer_id": "c", "product_id": "p1", "count_interaction_views_28d": 6},
    ],
}  # fmt: skip


def _training_frame(n: int = 300, seed: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of every recommender feature; a purchase follows carts and category purchases, and popularity."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.integers(0, 5, n).astype(float) for f in FEATURES})
    frame["category"] = rng.choice(["books", "toys"], n)
    frame["available"] = True
    logit = -2 + 1.2 * frame["count_interaction_carts_28d"] + 0.4 * frame["count_product_purchases_7d"]
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)


@pytest.fixture(scope="module")
def served(tmp_path_factory, repo_settings, mlflow_template):
    home = tmp_path_factory.mktemp("recommend") / "home"
    settings = dataclasses.replace(
        repo_settings, home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    )
    (home / "mlflow").mkdir(parents=True)
    shutil.copy(mlflow_template, home / "mlflow" / "mlflow.db")
    store = SQLiteStore(sqlite_path(settings))
    for name, rows in ROWS.items():
        write_feature_day(settings, get_view(name), DAY, rows, "2026-01-03T01:00:00")
        materialize(settings, get_view(name), as_of=AS_OF, store=store)
    store.close()
    frame, label = _training_frame()
    version = register_champion(settings, frame, label, name=USE_CASE.name, candidate="hist_gradient_boosting")
    return settings, version, frame


@pytest.fixture(scope="module")
def client(served):
    app = create_app(served[0], use_case=USE_CASE.name, clock=lambda: AS_OF, reload_seconds=0.5, flush_seconds=60)
    with TestClient(app) as c:
        yield c


def _offline(served, product: str, customer_known: bool = True) -> float:
    """The champion's score of the row a training set would hold for (customer, product), built here by hand."""
    import mlflow.sklearn
    from pitlake.core import tracking

    settings, version, frame = served
    row: dict = dict.fromkeys(FEATURES)
    popularity = next(r for r in ROWS["product_popularity"] if r["product_id"] == product)
    listed = next(r for r in ROWS["product_catalog"] if r["product_id"] == product)
    row |= {k: v for k, v in (popularity | listed).items() if k != "product_id"}
    if customer_known:
        row |= {"count_purchases_28d": 4}
        if listed["category"] == "toys":
            row["count_category_purchases_28d"] = 3
        for pair in ROWS["customer_product_interactions"]:
            if pair["product_id"] == product:
                row |= {k: v for k, v in pair.items() if k not in ("customer_id", "product_id")}
    tracking.connect(settings)
    model = mlflow.sklearn.load_model(f"models:/{USE_CASE.name}/{version}")
    numeric, _ = feature_kinds(frame, FEATURES)
    x = model_inputs(pd.DataFrame([row], columns=FEATURES), FEATURES, numeric=numeric)
    return float(model.predict_proba(x)[:, 1][0])


def test_recommend_ranks_the_labels_pool_by_the_champion_as_offline(client, served):
    response = client.post("/recommend", json={"customer_id": "c", "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    # p5 sold nothing and c never carted it: not a candidate. p3 sold nothing but c carted it.
    assert (body["candidates"], body["from_history"]) == (4, 1)
    expected = sorted(((_offline(served, p), p) for p in ("p1", "p2", "p3", "p4")), key=lambda t: (-t[0], t[1]))[:3]
    got = body["recommendations"]
    assert [r["product_id"] for r in got] == [p for _, p in expected]
    assert [r["score"] for r in got] == pytest.approx([s for s, _ in expected], abs=1e-9)
    assert [r["rank"] for r in got] == [1, 2, 3] and all(r["category"] == CATEGORY[r["product_id"]] for r in got)
    assert body["model"] == USE_CASE.name and body["model_version"] == served[1]
    assert body["as_of"] == "2026-01-03T00:00:00Z"


def test_an_unknown_customer_gets_the_most_bought_products(client, served):
    body = client.post("/recommend", json={"customer_id": "nobody", "k": 10}).json()
    assert (body["candidates"], body["from_history"]) == (3, 0)
    expected = sorted(((_offline(served, p, customer_known=False), p) for p in ("p1", "p2", "p4")),
                      key=lambda t: (-t[0], t[1]))  # fmt: skip
    assert [r["product_id"] for r in body["recommendations"]] == [p for _, p in expected]


def test_bad_recommend_requests_are_one_line_and_predict_is_not_served(client):
    response = client.post("/recommend", json={"customer_id": "c", "k": 0})
    assert response.status_code == 422 and "k" in response.json()["detail"]
    response = client.post("/recommend", json={"customer": "c"})
    assert response.status_code == 422 and response.json()["detail"].count("\n") == 0
    assert client.post("/predict", json={"entities": [{"customer_id": "c"}]}).status_code == 404


def test_no_candidate_is_an_empty_list_not_an_error(served):
    """Two days later every feature row is past its 1-day TTL: nothing to recommend, said in one line."""
    from datetime import timedelta

    app = create_app(served[0], use_case=USE_CASE.name, clock=lambda: AS_OF + timedelta(days=2), flush_seconds=60)
    with TestClient(app) as late:
        response = late.post("/recommend", json={"customer_id": "c"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["candidates"], body["recommendations"]) == (0, []) and "no candidate" in body["detail"]


def test_features_look_each_view_up_by_its_own_keys(client):
    body = {"entities": [{"customer_id": "c", "product_id": "p3", "category": "toys"}],
            "features": ["customer_product_interactions:count_interaction_carts_28d", "product_catalog:category",
                         "customer_category_affinity:count_category_purchases_28d",
                         "customer_activity:count_purchases_28d"]}  # fmt: skip
    response = client.post("/features", json=body)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["features"] == {
        "customer_product_interactions:count_interaction_carts_28d": 2, "product_catalog:category": "toys",
        "customer_category_affinity:count_category_purchases_28d": 3, "customer_activity:count_purchases_28d": 4,
    }  # fmt: skip
    assert result["found"] is True and result["customer_id"] == "c"
    missing = client.post("/features", json={"entities": [{"customer_id": "c"}],
                                              "features": ["product_catalog:price"]})  # fmt: skip
    assert missing.status_code == 422
    detail = "entities.0: view product_catalog needs keys ['product_id'], missing ['product_id']"
    assert missing.json()["detail"] == detail
    unknown = client.post("/features", json={"entities": [{"customer_id": "c", "shop": "x"}]})
    assert unknown.status_code == 422 and "unknown keys ['shop']" in unknown.json()["detail"]
