"""The demo feature views of the online shop (entity: customer)."""

from __future__ import annotations

from datetime import timedelta

from pitlake.features.definitions import AggregateView, Aggregation, DaysSince, Entity, Ratio, SnapshotView

CUSTOMER = Entity("customer", ("customer_id",))

PAGE_VIEW = {"event_type": "page_view"}
ADD_TO_CART = {"event_type": "add_to_cart"}
PURCHASE = {"event_type": "purchase"}

customer_activity_v1 = AggregateView(
    name="customer_activity",
    version=1,
    entity=CUSTOMER,
    source="bronze.events",
    description="What a customer did in the shop over the last 1, 7 and 28 days, and how recently they bought.",
    owner="growth-data",
    ttl=timedelta(days=1),
    timestamp_column="event_time",
    aggregations=(
        Aggregation("count", "page_views", where=PAGE_VIEW, windows=("1d", "7d", "28d")),
        Aggregation("count", "add_to_carts", where=ADD_TO_CART, windows=("1d", "7d", "28d")),
        Aggregation("count", "purchases", where=PURCHASE, windows=("7d", "28d")),
        Aggregation("sum", "purchase_amount", column="amount", where=PURCHASE, windows=("7d", "28d")),
        Aggregation("avg", "purchase_amount", column="amount", where=PURCHASE, windows=("28d",)),
        Aggregation("count_distinct", "categories", column="category", windows=("28d",)),
        Aggregation("days_since_last", "purchase", where=PURCHASE),
    ),
    # Of the customer's add-to-carts in 28 days, how many purchases followed (null without a cart).
    ratios=(Ratio("cart_to_purchase_ratio_28d", "count_purchases_28d", "count_add_to_carts_28d"),),
)

customer_profile_v1 = SnapshotView(
    name="customer_profile",
    version=1,
    entity=CUSTOMER,
    source="bronze.customers",
    description="The customer's profile (segment, country, loyalty tier, tenure) as known at feature_time.",
    owner="growth-data",
    ttl=timedelta(days=1),
    attributes=("segment", "country", "loyalty_tier"),
    days_since=(DaysSince("tenure_days", "signup_date"),),
)
