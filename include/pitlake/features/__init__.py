"""The feature registry: every declared view, validated at import, looked up by name.

Add a view by declaring it in a module here and listing it in :data:`VIEWS`; two versions of a
view live side by side (``features.<name>`` and ``features.<name>_v2``).
"""

from __future__ import annotations

from pitlake.features.customer import customer_activity_v1, customer_profile_v1
from pitlake.features.definitions import (
    AggregateView,
    Aggregation,
    Band,
    DaysSince,
    Entity,
    FeatureDefinitionError,
    FeatureView,
    Ratio,
    SnapshotView,
)
from pitlake.features.product import (
    customer_category_affinity_v1,
    customer_product_interactions_v1,
    product_catalog_v1,
    product_popularity_v1,
)

VIEWS: tuple[FeatureView, ...] = (
    customer_activity_v1,
    customer_profile_v1,
    product_popularity_v1,
    product_catalog_v1,
    customer_category_affinity_v1,
    customer_product_interactions_v1,
)

__all__ = [
    "VIEWS",
    "AggregateView",
    "Aggregation",
    "Band",
    "DaysSince",
    "Entity",
    "FeatureDefinitionError",
    "FeatureView",
    "Ratio",
    "SnapshotView",
    "get_view",
    "view_names",
]


def _registry(views: tuple[FeatureView, ...]) -> dict[tuple[str, int], FeatureView]:
    out: dict[tuple[str, int], FeatureView] = {}
    for view in views:
        key = (view.name, view.version)
        if key in out:
            raise FeatureDefinitionError(f"feature view {view.name!r} v{view.version}: declared twice")
        out[key] = view
    return out


_REGISTRY = _registry(VIEWS)


def view_names() -> list[str]:
    return sorted({name for name, _ in _REGISTRY})


def get_view(name: str, version: int | None = None) -> FeatureView:
    """The view ``name`` (``"customer_activity"``, ``"customer_activity:v2"``); latest version by default."""
    if ":" in name:
        name, _, ver = name.partition(":")
        version = int(ver.lstrip("v")) if ver.lstrip("v").isdigit() else -1
    versions = sorted(v for n, v in _REGISTRY if n == name)
    if not versions:
        raise FeatureDefinitionError(f"unknown feature view {name!r}; known views: {', '.join(view_names())}")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise FeatureDefinitionError(
            f"feature view {name!r} has no version {chosen}; versions: {', '.join(f'v{v}' for v in versions)}"
        )
    return _REGISTRY[(name, chosen)]
