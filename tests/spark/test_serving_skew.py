"""No training/serving skew: for every key of a small history, the served vector and score equal the
training-set assembly (point-in-time join) at the materialization's as_of, and the champion applied to it."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from pitlake.features import get_view
from pitlake.serving.app import create_app
from pitlake.serving.materialize import materialize
from pitlake.serving.skew import check_no_skew
from pitlake.serving.store import SQLiteStore, sqlite_path
from pitlake.training_set.build import get_use_case

from tests.builders import register_champion, training_frame, write_feature_day

ACTIVITY = get_view("customer_activity")
PROFILE = get_view("customer_profile")
AS_OF = datetime(2026, 1, 5)  # the end of Jan 4's interval: Jan 4's rows have feature_time = AS_OF
KEYS = ["fresh", "border", "expired", "late", "profile_changed", "profile_only", "never"]


def test_served_vectors_and_scores_equal_the_offline_rows_for_every_kind_of_key(spark, mlflow_home):
    settings = mlflow_home
    store = SQLiteStore(sqlite_path(settings))

    def day(view, d, rows, computed):
        write_feature_day(settings, view, d, rows, computed)

    for d, n in (("2026-01-01", 1), ("2026-01-02", 2), ("2026-01-03", 3)):
        rows = [
            {
                "customer_id": "fresh",
                "count_page_views_1d": n,
                "count_purchases_7d": n,
                "sum_purchase_amount_7d": n * 2.5,
            }
        ]
        if d == "2026-01-01":
            rows.append({"customer_id": "expired", "count_page_views_1d": 7, "days_since_last_purchase": 3})
        if d == "2026-01-03":  # border's last row: feature_time Jan 4 00:00 = AS_OF - TTL, still valid
            rows.append({"customer_id": "border", "count_page_views_1d": 5, "avg_purchase_amount_28d": 19.99})
        if d == "2026-01-02":
            rows.append({"customer_id": "late", "count_page_views_1d": 1})
        rows.append({"customer_id": "profile_changed", "count_add_to_carts_7d": 1})
        day(ACTIVITY, d, rows, f"{d}T23:30:00")
        day(PROFILE, d, [
            {"customer_id": "profile_changed", "segment": "regular", "country": "DE", "loyalty_tier": "none",
             "tenure_days": 10},
            {"customer_id": "profile_only", "segment": "new", "country": "FR", "tenure_days": 1},
            {"customer_id": "fresh", "segment": "vip", "country": "DE", "loyalty_tier": "gold", "tenure_days": 300},
        ], f"{d}T23:30:00")  # fmt: skip
    for view in (ACTIVITY, PROFILE):
        assert materialize(settings, view, as_of=datetime(2026, 1, 4), store=store).mode == "full"

    # Jan 4: fresh goes on, the profile changes that day; then the day is rebuilt after a late event of "late".
    day(ACTIVITY, "2026-01-04", [
        {"customer_id": "fresh", "count_page_views_1d": 4, "count_purchases_7d": 4, "sum_purchase_amount_7d": 10.0},
        {"customer_id": "profile_changed", "count_add_to_carts_7d": 2},
    ], "2026-01-04T23:30:00")  # fmt: skip
    day(PROFILE, "2026-01-04", [
        {"customer_id": "profile_changed", "segment": "vip", "country": "DE", "loyalty_tier": "gold",
         "tenure_days": 11},
        {"customer_id": "profile_only", "segment": "new", "country": "FR", "tenure_days": 2},
        {"customer_id": "fresh", "segment": "vip", "country": "DE", "loyalty_tier": "gold", "tenure_days": 301},
    ], "2026-01-04T23:30:00")  # fmt: skip
    for view in (ACTIVITY, PROFILE):
        assert materialize(settings, view, as_of=AS_OF, store=store).mode == "incremental"
    day(ACTIVITY, "2026-01-04", [
        {"customer_id": "fresh", "count_page_views_1d": 4, "count_purchases_7d": 4, "sum_purchase_amount_7d": 10.0},
        {"customer_id": "profile_changed", "count_add_to_carts_7d": 2},
        {"customer_id": "late", "count_page_views_1d": 1, "count_purchases_7d": 1, "days_since_last_purchase": 0},
    ], "2026-01-06T02:00:00")  # fmt: skip
    late = materialize(settings, ACTIVITY, as_of=AS_OF, store=store)
    assert (late.partitions_read, late.keys_written) == (["2026-01-04"], 3)

    frame, label = training_frame()
    version = register_champion(settings, frame, label)
    app = create_app(settings, store=store, clock=lambda: AS_OF, log_predictions=False)
    with TestClient(app) as client:
        report = check_no_skew(spark, settings, client, store, get_use_case("purchase_propensity"),
                               [(k,) for k in KEYS], AS_OF)  # fmt: skip
        served = {r["customer_id"]: r for r in client.post("/features", json={
            "entities": [{"customer_id": k} for k in KEYS],
            "features": ["customer_activity:count_purchases_7d", "customer_activity:count_page_views_1d",
                         "customer_profile:segment"]}).json()["results"]}  # fmt: skip

    assert report.ok, report.mismatches
    assert (report.keys, report.found, report.stale, report.values_compared) == (7, 6, 1, 7 * 18)
    assert report.model_version == version and report.max_score_difference <= 1e-9
    assert report.versions == {"features.customer_activity": 4, "features.customer_profile": 3}
    # The vectors compared are the expected ones, not two equal wrong answers.
    values = {k: list(r["features"].values()) for k, r in served.items()}
    assert values == {
        "fresh": [4, 4, "vip"],
        "border": [None, 5, None],
        "expired": [None, None, None],
        "late": [1, 1, None],
        "profile_changed": [None, None, "vip"],
        "profile_only": [None, None, "new"],
        "never": [None, None, None],
    }
    assert served["expired"]["stale"] and served["expired"]["found"] and not served["never"]["found"]
