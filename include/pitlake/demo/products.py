"""Synthetic source: the shop's product catalog as a change log, which the demo catalog API serves.

Deterministic from the demo seed: day D's changes depend only on (seed, epoch, D). The epoch day
carries every product (one record each, valid from the epoch's first instant, and one defect of each
kind when defects are on); each later day brings
a few price changes, availability changes and new launches, each a full product record with the
instant it changed (``updated_at``) and a ``change_id`` unique in the whole log. A product's
category never changes. Defects are injected at ``defect_rate`` of a day's records, split over
:data:`PRODUCT_DEFECTS`, the way a real catalog has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from pitlake.demo.config import DemoConfig, iso_instant
from pitlake.sources.vocabulary import CATEGORIES

PRODUCTS_PER_CATEGORY = 25
NEW_PRODUCTS_PER_WEEK = 4
PRODUCT_DEFECTS = ("missing_product_id", "negative_price", "unknown_category")
ZIPF_EXPONENT = 1.1
FAVOURITES = 3  # products each customer prefers in their favourite category
FAVOURITE_SHARE = 0.6  # of carts (and so purchases) that go to one of the customer's favourites on sale
BASE_PRICE = {"books": 15.0, "electronics": 180.0, "fashion": 45.0, "garden": 35.0, "grocery": 6.0, "home": 40.0,
              "sports": 55.0, "toys": 25.0}  # fmt: skip


def product_id(index: int) -> str:
    return f"p{index:05d}"


@dataclass(frozen=True)
class Catalog:
    """Every product launched by the end of a day, as it stands then."""

    category: np.ndarray  # index into CATEGORIES
    price: np.ndarray
    available: np.ndarray
    launch: list[date]


def _rng(cfg: DemoConfig, day: date, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, day.toordinal(), 100 + stream])


def _launches(cfg: DemoConfig, day: date) -> int:
    """Products launched on ``day`` after the epoch."""
    return int(_rng(cfg, day, 0).poisson(NEW_PRODUCTS_PER_WEEK / 7))


def _initial(cfg: DemoConfig) -> Catalog:
    n = PRODUCTS_PER_CATEGORY * len(CATEGORIES)
    rng = np.random.default_rng([cfg.seed, 101])
    category = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    base = np.array([BASE_PRICE[CATEGORIES[c]] for c in category])
    price = np.round(base * rng.lognormal(0.0, 0.45, n), 2)
    launch = [cfg.epoch - timedelta(days=int(d)) for d in rng.integers(30, 720, n)]
    return Catalog(category, price, np.ones(n, dtype=bool), launch)


def _step(cfg: DemoConfig, catalog: Catalog, day: date) -> tuple[Catalog, list[tuple[int, str]]]:
    """The catalog after ``day``'s changes, and the changes: (product index, kind) in the day's order."""
    rng = _rng(cfg, day, 1)
    n = len(catalog.price)
    u = rng.random((2, n))
    price, available = catalog.price.copy(), catalog.available.copy()
    repriced = np.flatnonzero(u[0] < 0.02)
    price[repriced] = np.round(price[repriced] * rng.uniform(0.8, 1.15, len(repriced)), 2)
    toggled = np.flatnonzero(u[1] < (np.where(available, 0.01, 0.2)))
    available[toggled] = ~available[toggled]
    launched = _launches(cfg, day)
    category = np.concatenate([catalog.category, rng.integers(0, len(CATEGORIES), launched)])
    base = np.array([BASE_PRICE[CATEGORIES[c]] for c in category[n:]])
    price = np.concatenate([price, np.round(base * rng.lognormal(0.0, 0.45, launched), 2)])
    available = np.concatenate([available, np.ones(launched, dtype=bool)])
    kinds = {int(i): "price" for i in repriced}
    for i in toggled:
        kinds[int(i)] = "price+availability" if int(i) in kinds else "availability"
    changes = sorted(kinds.items()) + [(n + k, "launch") for k in range(launched)]
    return Catalog(category, price, available, [*catalog.launch, *([day] * launched)]), changes


def catalog_as_of(cfg: DemoConfig, day: date) -> tuple[Catalog, list[tuple[int, str]]]:
    """The catalog at the end of ``day`` and that day's changes (every product on the epoch day)."""
    catalog = _initial(cfg)
    changes = [(i, "snapshot") for i in range(len(catalog.price))]
    d = cfg.epoch + timedelta(days=1)
    while d <= day:
        catalog, changes = _step(cfg, catalog, d)
        d += timedelta(days=1)
    return catalog, changes


def popularity(cfg: DemoConfig, n: int) -> np.ndarray:
    """Each product's pull within its category: Zipf over a random rank (seeded, fixed per product)."""
    ranks = np.array([np.random.default_rng([cfg.seed, 102, i]).integers(0, PRODUCTS_PER_CATEGORY) for i in range(n)])
    return np.asarray(1.0 / (ranks + 1.0) ** ZIPF_EXPONENT)


def favourite_products(cfg: DemoConfig, favourite_category: np.ndarray) -> np.ndarray:
    """Each customer's :data:`FAVOURITES` products among the epoch catalog of their favourite category."""
    rng = np.random.default_rng([cfg.seed, 103])
    start = favourite_category * PRODUCTS_PER_CATEGORY
    picks = np.stack([rng.choice(PRODUCTS_PER_CATEGORY, FAVOURITES, replace=False) for _ in favourite_category])
    return np.asarray(start[:, None] + picks)


class ProductPicker:
    """Which product an event of a customer in a category is about, on one day: among the category's
    products on sale when the day begins (a launch or re-listing that day counts from the next), by
    popularity; when they cart (and so buy), one of their favourites on sale, by
    popularity, with probability :data:`FAVOURITE_SHARE`. Draws from its own random stream, so the rest
    of the day's events do not change."""

    def __init__(self, cfg: DemoConfig, day: date, favourite_category: np.ndarray) -> None:
        catalog, _ = catalog_as_of(cfg, day - timedelta(days=1))  # as listed when the day begins
        self.rng = _rng(cfg, day, 3)
        self.weight = popularity(cfg, len(catalog.price)) * catalog.available
        self.by_category = [np.flatnonzero((catalog.category == c) & catalog.available) for c in range(len(CATEGORIES))]
        self.favourites = favourite_products(cfg, favourite_category)
        self.cumulative = [np.cumsum(self.weight[p]) for p in self.by_category]

    def pick(self, customer: int, category: int, with_taste: bool) -> str | None:
        products = self.by_category[category]
        if not len(products):  # nothing of the category on sale that day
            return None
        cumulative = self.cumulative[category]
        if with_taste and self.rng.random() < FAVOURITE_SHARE:
            liked = products[np.isin(products, self.favourites[customer])]
            if len(liked):
                products, cumulative = liked, np.cumsum(self.weight[liked])
        chosen = int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"))
        return product_id(int(products[min(chosen, len(products) - 1)]))

    def purchase_probabilities(self, customer: int, category: int) -> dict[str, float]:
        """The ground truth of :meth:`pick` for a cart (and so a purchase) of ``customer`` in ``category``:
        each product's probability, from the same weights (what a recommender's ceiling is built on)."""
        products = self.by_category[category]
        if not len(products):
            return {}
        weight = self.weight[products]
        out = (weight / weight.sum()).astype(float)
        liked = np.isin(products, self.favourites[customer])
        if liked.any():
            out = (1 - FAVOURITE_SHARE) * out + FAVOURITE_SHARE * np.where(liked, weight, 0.0) / weight[liked].sum()
        return {product_id(int(p)): float(q) for p, q in zip(products, out, strict=True)}


def generate_products(cfg: DemoConfig, day: date) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``day``'s change records, oldest first, and the injected defect counts."""
    defects = {kind: 0 for kind in PRODUCT_DEFECTS}
    if day < cfg.epoch:
        return [], defects
    catalog, changes = catalog_as_of(cfg, day)
    rng = _rng(cfg, day, 2)
    midnight = datetime.combine(day, time.min)
    offsets = np.sort(rng.uniform(0, 86_399, len(changes)))
    records = []
    for seq, ((i, kind), offset) in enumerate(zip(changes, offsets, strict=True)):
        updated = midnight if day == cfg.epoch else midnight + timedelta(seconds=float(offset))
        records.append(
            {
                "change_id": f"{day:%Y%m%d}-{seq:05d}",
                "change": kind,
                "product_id": product_id(i),
                "name": f"{CATEGORIES[catalog.category[i]]} item {i}",
                "category": CATEGORIES[catalog.category[i]],
                "price": float(catalog.price[i]),
                "available": bool(catalog.available[i]),
                "launch_date": catalog.launch[i].isoformat(),
                "updated_at": iso_instant(updated),
            }
        )
    per_kind = math.floor(len(records) * cfg.defect_rate / len(PRODUCT_DEFECTS))
    if day == cfg.epoch and cfg.defect_rate > 0:  # the snapshot day always shows each kind once
        per_kind = max(per_kind, 1)
    if per_kind:
        chosen = rng.choice(len(records), size=per_kind * len(PRODUCT_DEFECTS), replace=False)
        for k, kind in enumerate(PRODUCT_DEFECTS):
            for i in chosen[k * per_kind : (k + 1) * per_kind]:
                if kind == "missing_product_id":
                    records[i]["product_id"] = None
                elif kind == "negative_price":
                    records[i]["price"] = -abs(float(records[i]["price"]))
                else:
                    records[i]["category"] = "antiques"
                defects[kind] += 1
    return records, defects
