"""The synthetic source: deterministic, day-independent, defects at the configured rate."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import numpy as np
from pitlake.demo.generator import EVENT_DEFECTS, DemoConfig, generate_customers, generate_events, write_day

CFG = DemoConfig(seed=3, customers=300, epoch=date(2026, 1, 1), defect_rate=0.05)


def test_same_seed_same_bytes_other_seed_other_data():
    a, _, _ = generate_events(CFG, date(2026, 1, 5))
    b, _, _ = generate_events(CFG, date(2026, 1, 5))
    c, _, _ = generate_events(DemoConfig(seed=4, customers=300, defect_rate=0.05), date(2026, 1, 5))
    assert a == b
    assert a != c


def test_a_day_generated_alone_equals_the_day_generated_in_a_range(tmp_path):
    write_day(CFG, tmp_path / "range", date(2026, 1, 4))
    write_day(CFG, tmp_path / "range", date(2026, 1, 5))
    write_day(CFG, tmp_path / "alone", date(2026, 1, 5))
    for source in ("events", "customers"):
        rel = f"{source}/date=2026-01-05/part-0000.jsonl"
        assert (tmp_path / "range" / rel).read_bytes() == (tmp_path / "alone" / rel).read_bytes()


def test_every_defect_kind_is_injected_at_the_configured_rate():
    lines, defects, _ = generate_events(CFG, date(2026, 1, 5))
    assert set(defects) == set(EVENT_DEFECTS)
    clean = len(lines) - defects["duplicate_event_id"]
    per_kind = int(clean * CFG.defect_rate / len(EVENT_DEFECTS))
    assert per_kind > 0
    assert all(count == per_kind for count in defects.values()), defects
    malformed = 0
    kinds: Counter[str] = Counter()
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            malformed += 1
            continue
        kinds["no_customer"] += "customer_id" not in rec
        kinds["unknown_type"] += rec["event_type"] not in ("page_view", "add_to_cart", "purchase")
        kinds["negative"] += (rec.get("amount") or 0) < 0
        kinds["late"] += not rec["event_time"].startswith("2026-01-05") and rec["event_time"][0].isdigit()
    assert malformed == per_kind
    assert kinds == Counter(no_customer=per_kind, unknown_type=per_kind, negative=per_kind, late=per_kind)
    ids = [json.loads(x)["event_id"] for x in lines if x.endswith("}")]
    assert len(ids) - len(set(ids)) == per_kind


def test_events_lie_inside_their_day_and_no_ground_truth_leaks_into_them():
    lines, _, truth = generate_events(DemoConfig(seed=3, customers=300, defect_rate=0.0), date(2026, 1, 5))
    recs = [json.loads(x) for x in lines]
    assert all(r["event_time"].startswith("2026-01-05T") for r in recs)
    assert all("propensity" not in r for r in recs)
    assert len(truth) == 300 and {"customer_id", "propensity", "expected_purchases"} <= set(truth[0])


def test_latent_propensity_drives_purchases():
    cfg = DemoConfig(seed=11, customers=1000, defect_rate=0.0)
    purchases: Counter[str] = Counter()
    truth = []
    for day in range(1, 15):
        lines, _, truth = generate_events(cfg, date(2026, 1, day))
        purchases.update(r["customer_id"] for r in map(json.loads, lines) if r["event_type"] == "purchase")
    prop = np.array([t["propensity"] for t in truth])
    bought = np.array([purchases[t["customer_id"]] for t in truth])
    top, bottom = prop >= np.quantile(prop, 0.8), prop <= np.quantile(prop, 0.2)
    assert bought[top].mean() > 4 * bought[bottom].mean()


def test_weekends_are_busier_than_weekdays():
    cfg = DemoConfig(seed=5, customers=2000, defect_rate=0.0)
    tuesday = len(generate_events(cfg, date(2026, 1, 6))[0])
    saturday = len(generate_events(cfg, date(2026, 1, 10))[0])
    assert saturday > 1.2 * tuesday


def test_profiles_start_with_everyone_then_only_changes():
    first, _ = generate_customers(CFG, date(2026, 1, 1))
    later, _ = generate_customers(CFG, date(2026, 1, 9))
    assert len(first) == 300
    assert 0 < len(later) < 60
    assert all(json.loads(x)["updated_at"].startswith("2026-01-09") for x in later)


def test_events_name_products_of_their_category_on_sale_and_buyers_favour_their_favourites():
    from pitlake.demo.generator import _customer_traits
    from pitlake.demo.products import FAVOURITES, catalog_as_of, favourite_products, product_id
    from pitlake.sources.vocabulary import CATEGORIES

    cfg = DemoConfig(seed=3, customers=300, defect_rate=0.0)
    day = date(2026, 1, 5)
    catalog, _ = catalog_as_of(cfg, day - timedelta(days=1))  # as listed when the day begins
    on_sale = {product_id(i): CATEGORIES[c] for i, c in enumerate(catalog.category) if catalog.available[i]}
    favourites = favourite_products(cfg, _customer_traits(cfg)["favourite"])
    assert favourites.shape == (300, FAVOURITES)
    hits: Counter[str] = Counter()
    for rec in (json.loads(x) for x in generate_events(cfg, day)[0]):
        assert on_sale[rec["product_id"]] == rec["category"], rec
        customer = int(rec["customer_id"][1:])
        hits[rec["event_type"]] += rec["product_id"] in {product_id(int(p)) for p in favourites[customer]}
        hits[rec["event_type"] + "_all"] += 1
    # A cart (and so a purchase) goes to a favourite on sale 60% of the time, a view only by popularity.
    assert hits["purchase"] / hits["purchase_all"] > 0.5 > hits["page_view"] / hits["page_view_all"]


def test_the_purchase_ground_truth_is_the_distribution_the_generator_draws_from():
    from collections import Counter as Tally

    from pitlake.demo.generator import _customer_traits
    from pitlake.demo.products import ProductPicker

    cfg = DemoConfig(seed=3, customers=300, defect_rate=0.0)
    favourite = _customer_traits(cfg)["favourite"]
    picker = ProductPicker(cfg, date(2026, 1, 5), favourite)
    truth = picker.purchase_probabilities(7, int(favourite[7]))
    assert abs(sum(truth.values()) - 1.0) < 1e-12
    draws = 20_000
    drawn = Tally(picker.pick(7, int(favourite[7]), with_taste=True) for _ in range(draws))
    assert set(drawn) <= set(truth)
    # Each product's share of 20,000 draws within 4 standard errors of its ground-truth probability.
    assert all(abs(drawn[p] / draws - q) <= 4 * (q * (1 - q) / draws) ** 0.5 + 1e-9 for p, q in truth.items())
