"""The demo feature views of the product recommender (entities: product, customer × category,
customer × product).

Events of feeds older than the catalog carry no ``product_id``; the engine leaves rows with a null
key out of every view (:mod:`pitlake.features.engine`), so those events count in the customer views
and in ``customer_category_affinity`` but not in the product views.
"""

from __future__ import annotations

from datetime import timedelta

from pitlake.features.customer import ADD_TO_CART, CUSTOMER, PAGE_VIEW, PURCHASE
from pitlake.features.definitions import AggregateView, Aggregation, Band, DaysSince, Entity, Ratio, SnapshotView

PRODUCT = Entity("product", ("product_id",))
CUSTOMER_CATEGORY = Entity("customer_category", (*CUSTOMER.keys, "category"))
CUSTOMER_PRODUCT = Entity("customer_product", (*CUSTOMER.keys, "product_id"))

# Price bands (upper edges, in the shop's currency): band 0 is under 10, band 5 is 200 and more.
PRICE_EDGES = (10.0, 25.0, 50.0, 100.0, 200.0)

product_popularity_v1 = AggregateView(
    name="product_popularity",
    version=1,
    entity=PRODUCT,
    source="bronze.events",
    description="How much shoppers looked at, carted and bought a product over the last 1, 7 and 28 days.",
    owner="recommendations",
    ttl=timedelta(days=1),
    aggregations=(
        Aggregation("count", "product_views", where=PAGE_VIEW, windows=("1d", "7d", "28d")),
        Aggregation("count", "product_carts", where=ADD_TO_CART, windows=("7d", "28d")),
        Aggregation("count", "product_purchases", where=PURCHASE, windows=("1d", "7d", "28d")),
        Aggregation("count_distinct", "product_buyers", column="customer_id", where=PURCHASE, windows=("28d",)),
    ),
    # Of the product's page views in 28 days, how many purchases (null without a view).
    ratios=(Ratio("product_conversion_28d", "count_product_purchases_28d", "count_product_views_28d"),),
)

product_catalog_v1 = SnapshotView(
    name="product_catalog",
    version=1,
    entity=PRODUCT,
    source="bronze.products",
    description="The product as listed at feature_time: category, price, its price band, availability and age.",
    owner="recommendations",
    ttl=timedelta(days=1),
    # The category is also the key a candidate joins customer_category_affinity by (a training set joins
    # this view before that one; serving looks it up the same way).
    attributes=("category", "price", "available"),
    days_since=(DaysSince("product_age_days", "launch_date"),),
    bands=(Band("price_band", "price", PRICE_EDGES),),
)

customer_category_affinity_v1 = AggregateView(
    name="customer_category_affinity",
    version=1,
    entity=CUSTOMER_CATEGORY,
    source="bronze.events",
    description="How much a customer browsed, carted and bought in a category over 7 and 28 days.",
    owner="recommendations",
    ttl=timedelta(days=1),
    aggregations=(
        Aggregation("count", "category_views", where=PAGE_VIEW, windows=("7d", "28d")),
        Aggregation("count", "category_carts", where=ADD_TO_CART, windows=("28d",)),
        Aggregation("count", "category_purchases", where=PURCHASE, windows=("28d",)),
        Aggregation("days_since_last", "category_purchase", where=PURCHASE),
    ),
)

customer_product_interactions_v1 = AggregateView(
    name="customer_product_interactions",
    version=1,
    entity=CUSTOMER_PRODUCT,
    source="bronze.events",
    description="A customer's history with one product: views, carts and purchases, and how recently they carted it.",
    owner="recommendations",
    ttl=timedelta(days=1),
    aggregations=(
        Aggregation("count", "interaction_views", where=PAGE_VIEW, windows=("7d", "28d")),
        Aggregation("count", "interaction_carts", where=ADD_TO_CART, windows=("28d",)),
        Aggregation("count", "interaction_purchases", where=PURCHASE, windows=("28d",)),
        Aggregation("days_since_last", "interaction_cart", where=ADD_TO_CART),
    ),
)
