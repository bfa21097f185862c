"""Label spines: who was asked the question, when, and what happened next.

``purchase_propensity`` (table ``labels.purchase_propensity``, partitioned by ``label_date``):

1. *Spine*: one row per customer per day on which they visited the shop; ``label_time`` is their
   first event of that day (a real moment, not midnight), so features must be looked up as of
   it.
2. *Label*: 1 when the customer purchases in the horizon ``(label_time, label_time + 7 days]``,
   else 0 (a purchase at ``label_time`` itself is the present, not the future).
3. *Observed horizon*: day d is labelled only when every horizon that starts on it is fully
   observed: ``d + 1 + 7 days <= observed_until``, where ``observed_until`` is the end of the
   latest ingested day minus the lateness window (events may still arrive that late). Days
   past it are skipped and reported, never labelled from a partial horizon.
4. A run replaces exactly its ``label_date`` range; the bronze version it read is returned.

``product_recommendations`` (``labels.product_recommendations``, :mod:`pitlake.labels.recommendations`):
the same queries and horizon, one row per candidate product; steps 3 and 4 apply to it alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pitlake.core import delta_io
from pitlake.core.dates import day_range, day_start
from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.labels.recommendations import COLUMNS as RECOMMENDATION_COLUMNS
from pitlake.labels.recommendations import RECOMMENDATION_LABELS, recommendation_labels

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

LABELS_TABLE = "labels.purchase_propensity"
HORIZON = timedelta(days=7)


@dataclass
class LabelResult:
    table: str
    dates_labelled: list[str]
    dates_skipped_unobserved: list[str]
    observed_until: str
    rows: int
    positives: int
    delta_version: int | None
    source_table: str
    source_version: int
    dates_without_rows: list[str] = field(default_factory=list)  # labelled, but nothing to label on them

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def observed_until(spark: SparkSession, settings: Settings, bronze: DataFrame) -> date:
    """The first day whose events may still be incomplete (as a date: the instant is its midnight)."""
    from pyspark.sql import functions as F

    latest = bronze.agg(F.max("ingest_date")).first()[0]  # type: ignore[index]
    if latest is None:
        raise InputError("bronze.events is empty: ingest some days before building labels")
    return latest + timedelta(days=1) - timedelta(days=settings.max_event_lateness_days)


def purchase_labels(bronze: DataFrame, start: date, end: date, horizon: timedelta = HORIZON) -> DataFrame:
    """The labelled spine for label dates ``[start, end]`` from bronze events (no observability check)."""
    from pyspark.sql import functions as F

    visits = (
        bronze.where(F.col("event_date").between(F.lit(start), F.lit(end)))
        .groupBy("customer_id", F.col("event_date").alias("label_date"))
        .agg(F.min("event_time").alias("label_time"))
    )
    purchases = bronze.where(
        (F.col("event_type") == "purchase")
        & F.col("event_date").between(F.lit(start), F.lit(end + timedelta(days=horizon.days + 1)))
    ).select(F.col("customer_id").alias("p_customer"), F.col("event_time").alias("p_time"))
    joined = visits.join(
        purchases,
        (visits["customer_id"] == purchases["p_customer"])
        & (purchases["p_time"] > visits["label_time"])
        & (purchases["p_time"] <= visits["label_time"] + F.lit(horizon)),
        "left",
    )
    return joined.groupBy("customer_id", "label_time", "label_date").agg(
        F.max(F.when(F.col("p_time").isNotNull(), 1).otherwise(0)).cast("int").alias("label")
    )


@dataclass(frozen=True)
class LabelSpec:
    """How a use case's label table is made from bronze events: the table, the function, its columns."""

    table: str
    make: Callable[[DataFrame, date, date], DataFrame]
    columns: tuple[str, ...]


LABEL_SPECS: dict[str, LabelSpec] = {
    "purchase_propensity": LabelSpec(
        LABELS_TABLE, purchase_labels, ("customer_id", "label_time", "label_date", "label")
    ),
    "product_recommendations": LabelSpec(
        RECOMMENDATION_LABELS, lambda b, s, e: recommendation_labels(b, s, e, HORIZON), RECOMMENDATION_COLUMNS
    ),
}


def build_labels(
    spark: SparkSession, settings: Settings, start: date, end: date, use_case: str = "purchase_propensity"
) -> LabelResult:
    from pyspark.sql import functions as F

    if use_case not in LABEL_SPECS:
        raise InputError(f"no labels for use case {use_case!r}; known: {', '.join(sorted(LABEL_SPECS))}")
    spec = LABEL_SPECS[use_case]

    days = list(day_range(start, end))
    path = settings.table_path("bronze.events")
    if not delta_io.table_exists(spark, path):
        raise InputError("bronze.events does not exist yet: run ingest_events for the first days")
    version = delta_io.latest_version(spark, path)
    bronze = delta_io.read(spark, path, version)
    until = observed_until(spark, settings, bronze)
    first = bronze.agg(F.min("event_date")).first()[0]  # type: ignore[index]
    # Days before the first event have no visits: they are neither labelled nor validated as empty.
    ok = [d for d in days if d >= first and day_start(d + timedelta(days=1)) + HORIZON <= day_start(until)]
    skipped = [d for d in days if d not in ok and d >= first]
    if skipped:
        log.warning("labels: %s..%s not labelled: their 7-day horizon is observed only until %s", skipped[0],
                    skipped[-1], until)  # fmt: skip
    if not ok:
        return LabelResult(spec.table, [], [d.isoformat() for d in skipped], until.isoformat(), 0, 0, None,
                           "bronze.events", version)  # fmt: skip
    labels = spec.make(bronze, ok[0], ok[-1])
    out = settings.table_path(spec.table)
    committed = delta_io.replace_where(
        labels.select(*spec.columns),
        out,
        f"label_date >= '{ok[0]}' AND label_date <= '{ok[-1]}'",
        ["label_date"],
    )
    per_day = {
        r["label_date"]: (int(r["rows"]), int(r["positives"] or 0))
        for r in delta_io.read(spark, out, committed)
        .where(F.col("label_date").between(F.lit(ok[0]), F.lit(ok[-1])))
        .groupBy("label_date")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("positives"))
        .collect()
    }
    # A day with visits but no row: the recommender's first days, before any purchase made a candidate.
    empty = [d for d in ok if d not in per_day]
    if empty:
        log.warning("labels: %d day(s) with visits but no %s row (%s..%s): nothing to label yet", len(empty),
                    spec.table, empty[0], empty[-1])  # fmt: skip
    return LabelResult(
        table=spec.table,
        dates_labelled=[d.isoformat() for d in ok if d in per_day],
        dates_skipped_unobserved=[d.isoformat() for d in skipped],
        observed_until=until.isoformat(),
        rows=sum(n for n, _ in per_day.values()),
        positives=sum(p for _, p in per_day.values()),
        delta_version=committed,
        source_table="bronze.events",
        source_version=version,
        dates_without_rows=[d.isoformat() for d in empty],
    )
