"""The recommender's labelled candidates: ``labels.product_recommendations`` (partitioned by ``label_date``).

1. *Query*: one per customer per day on which they visited the shop, at their first event of that
   day (``label_time``), as for ``purchase_propensity``: a recommendation asked for at that moment.
2. *Candidates* of a query, from events strictly before its label day (so before ``label_time``):
   every product the customer carted or bought in the :data:`HISTORY_DAYS` days before, and the
   :data:`POPULAR` products bought most in the 7 days before (ties by ``product_id``). A model ranks
   these; so does the popularity baseline, over the same pool.
3. *Label*: 1 when the customer buys the candidate in ``(label_time, label_time + horizon]``.
4. ``relevant_products``: every product the customer bought in that horizon, in the pool or not
   (sorted), on each of the query's rows. Recall and NDCG count a purchase the pool missed as a miss,
   and the ground-truth ceiling is judged against it. It is the outcome, never a feature.

Events without a ``product_id`` (feeds older than the catalog) neither make candidates nor count as
purchases of a product. A product's category never changes (the catalog's rule), so a candidate's
``category`` comes from its events.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

RECOMMENDATION_LABELS = "labels.product_recommendations"
HISTORY_DAYS = 28
POPULAR_DAYS = 7
POPULAR = 20
COLUMNS = ("customer_id", "product_id", "category", "label_time", "label_date", "label", "relevant_products")


def recommendation_labels(
    bronze: DataFrame, start: date, end: date, horizon: timedelta, *, popular: int = POPULAR
) -> DataFrame:
    """The labelled candidates of label dates ``[start, end]`` from bronze events (no observability check)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    events = bronze.where(F.col("product_id").isNotNull())
    queries = (
        bronze.where(F.col("event_date").between(F.lit(start), F.lit(end)))
        .groupBy("customer_id", F.col("event_date").alias("label_date"))
        .agg(F.min("event_time").alias("label_time"))
    )
    own = events.where(
        F.col("event_type").isin("add_to_cart", "purchase")
        & F.col("event_date").between(F.lit(start - timedelta(days=HISTORY_DAYS)), F.lit(end - timedelta(days=1)))
    ).select(F.col("customer_id").alias("o_customer"), F.col("event_date").alias("o_date"), "product_id", "category")
    from_history = queries.join(
        own,
        (F.col("o_customer") == F.col("customer_id"))
        & (F.col("o_date") < F.col("label_date"))
        & (F.col("o_date") >= F.date_sub(F.col("label_date"), HISTORY_DAYS)),
    ).select("customer_id", "label_time", "label_date", "product_id", "category")

    bought = events.where(
        (F.col("event_type") == "purchase")
        & F.col("event_date").between(F.lit(start - timedelta(days=POPULAR_DAYS)), F.lit(end - timedelta(days=1)))
    )
    # By product alone (as product_popularity counts): a product's purchases never split over categories.
    daily = bought.groupBy(F.col("event_date").alias("p_date"), "product_id").agg(
        F.count(F.lit(1)).alias("count"), F.min("category").alias("category")
    )
    days = queries.select("label_date").distinct()
    ranked = (
        days.join(
            daily, (F.col("p_date") < F.col("label_date")) & (F.col("p_date") >= F.date_sub("label_date", POPULAR_DAYS))
        )
        .groupBy("label_date", "product_id")
        .agg(F.sum("count").alias("n"), F.min("category").alias("category"))
        .withColumn("rank", F.row_number().over(Window.partitionBy("label_date").orderBy(F.desc("n"), "product_id")))
        .where(F.col("rank") <= popular)
    )
    from_popularity = queries.join(ranked.select("label_date", "product_id", "category"), "label_date")
    candidates = (
        from_history.unionByName(from_popularity.select(*from_history.columns))
        .groupBy("customer_id", "label_time", "label_date", "product_id")
        .agg(F.min("category").alias("category"))
    )

    purchases = events.where(
        (F.col("event_type") == "purchase")
        & F.col("event_date").between(F.lit(start), F.lit(end + timedelta(days=horizon.days + 1)))
    ).select(F.col("customer_id").alias("p_customer"), F.col("event_time").alias("p_time"),
             F.col("product_id").alias("p_product"))  # fmt: skip
    outcomes = (
        queries.join(
            purchases,
            (F.col("p_customer") == F.col("customer_id"))
            & (F.col("p_time") > F.col("label_time"))
            & (F.col("p_time") <= F.col("label_time") + F.lit(horizon)),
        )
        .groupBy("customer_id", "label_time")
        .agg(F.array_sort(F.collect_set("p_product")).alias("relevant_products"))
    )
    out = candidates.join(outcomes, ["customer_id", "label_time"], "left").withColumn(
        "relevant_products", F.coalesce(F.col("relevant_products"), F.array().cast("array<string>"))
    )
    out = out.withColumn("label", F.array_contains("relevant_products", F.col("product_id")).cast("int"))
    return out.select(*COLUMNS)
