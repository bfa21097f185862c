"""``POST /recommend``: a customer's top K products from the recommender's champion, from online features only.

The candidate pool is the one the recommender's labels give a query (:mod:`pitlake.labels.recommendations`),
read from the same features as of the request: the products the customer carted or bought in the
last 28 days (``customer_product_interactions`` rows with ``count_interaction_carts_28d`` or
``count_interaction_purchases_28d`` above 0), and the :data:`POPULAR` products with the most purchases
over the last 7 days (``product_popularity``'s ``count_product_purchases_7d``, ties by ``product_id``).
The products ``product_popularity`` holds in the store (every product with an event in 28 days) bound
the search. Each candidate's vector is assembled the way a training row is joined:
``customer_activity`` by the customer, the product views by the product,
``customer_category_affinity`` by the customer and the category ``product_catalog`` gives the product,
``customer_product_interactions`` by both; the champion scores every candidate and the best K are returned.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pitlake.labels.recommendations import POPULAR
from pitlake.serving.lookup import FeatureLookup

CUSTOMER = "customer_activity"
POPULARITY = "product_popularity"
CATALOG = "product_catalog"
AFFINITY = "customer_category_affinity"
INTERACTIONS = "customer_product_interactions"

HISTORY = ("count_interaction_carts_28d", "count_interaction_purchases_28d")
SOLD = "count_product_purchases_7d"


def _count(values: dict[str, Any], *names: str) -> int:
    return sum(int(values.get(n) or 0) for n in names)


@dataclass(frozen=True)
class Candidates:
    products: list[str]  # the pool, sorted
    vectors: list[dict[str, Any]]  # each product's features, plain names
    categories: list[str | None]
    from_history: int  # how many came from the customer's own carts and purchases


class CandidatePool:
    """Builds a customer's candidates and their feature vectors from a :class:`FeatureLookup` of the
    recommender's views; the list of products is re-read from the store every ``refresh_seconds``."""

    def __init__(self, lookup: FeatureLookup, refresh_seconds: float = 30.0) -> None:
        missing = {CUSTOMER, POPULARITY, CATALOG, AFFINITY, INTERACTIONS} - set(lookup.refs)
        if missing:
            raise ValueError(f"use case {lookup.use_case.name} lacks the recommender's views {sorted(missing)}")
        self.lookup = lookup
        self._refresh = refresh_seconds
        self._products: list[str] = []
        self._read = 0.0
        self._lock = threading.Lock()

    def products(self) -> list[str]:
        with self._lock:
            if not self._products or time.monotonic() - self._read >= self._refresh:
                self._products = self.lookup.store.keys(POPULARITY)
                self._read = time.monotonic()
            return self._products

    def candidates(self, customer: str, at: datetime) -> Candidates:
        products = self.products()
        pairs = self.lookup.lookup_view(INTERACTIONS, [(customer, p) for p in products], at)
        own = {p for p, r in zip(products, pairs, strict=True) if _count(r.values, *HISTORY) > 0}
        popularity = self.lookup.lookup_view(POPULARITY, [(p,) for p in products], at)
        sold = sorted(((-_count(r.values, SOLD), p) for p, r in zip(products, popularity, strict=True)))
        popular = {p for n, p in sold[:POPULAR] if n < 0}  # the most purchases first, ties by product
        pool = sorted(own | popular)
        index = {p: i for i, p in enumerate(products)}
        vectors: list[dict[str, Any]] = [dict(popularity[index[p]].values) for p in pool]
        for vector, pair in zip(vectors, (pairs[index[p]] for p in pool), strict=True):
            vector.update(pair.values)
        [activity] = self.lookup.lookup_view(CUSTOMER, [(customer,)], at)
        catalog = self.lookup.lookup_view(CATALOG, [(p,) for p in pool], at)
        categories = [r.values.get("category") for r in catalog]
        affinity = self.lookup.lookup_view(AFFINITY, [(customer, str(c)) for c in categories], at)
        for vector, listed, liked, category in zip(vectors, catalog, affinity, categories, strict=True):
            vector.update(activity.values)
            vector.update(listed.values)
            # A product the catalog does not list has no category: no affinity, as the training join gives it.
            vector.update(liked.values if category is not None else dict.fromkeys(liked.values))
        return Candidates(pool, vectors, categories, len(own))
