"""Training sets: a label spine joined point-in-time to feature views, at pinned Delta versions.

``build(spark, settings, use_case, start, end)``:

1. resolves every input (the label table and each view's feature table) to a Delta version: the
   latest, or the one pinned by the caller (``pins``, e.g. from an earlier manifest);
2. reads the spine (``label_date`` in ``[start, end]``) and the features at those versions and joins
   them with :func:`build_training_set` (per view: TTL from the definition; with ``as_of_write``,
   only feature rows whose ``computed_at <= label_time``), one
   :func:`~pitlake.training_set.pit.point_in_time_join` per view;
3. audits leakage: every matched ``feature_time <= label_time`` and within the TTL, else the
   build fails naming the view and the count;
4. writes ``training_sets.<use_case>`` (partitioned by ``training_set_id``, a replace of exactly
   that id) and a :class:`~pitlake.training_set.manifest.TrainingSetManifest` beside it
   (``lake/training_sets/_manifests/<use_case>/<id>.json``): the pinned versions, the row count,
   and an order-independent content hash. The id is derived from the use case, the range, the
   pins and the mode, so rebuilding from the same pins reproduces the same id, rows and hash.

Importing this module does not import PySpark.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pitlake.core import delta_io
from pitlake.core.dates import utc_now
from pitlake.core.errors import ConfigError, InputError
from pitlake.core.settings import Settings
from pitlake.features import FeatureView, get_view
from pitlake.labels.build import LABELS_TABLE
from pitlake.labels.recommendations import RECOMMENDATION_LABELS
from pitlake.training_set.manifest import TrainingSetManifest, manifest_dir, write_manifest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UseCase:
    """A question a model answers: its label spine, the feature views joined onto it, and its task.

    ``spine_columns`` are carried from the spine into the training set beside the keys (such as the
    outcome a ranking is judged by); they are not features. Views join in the order listed, each by
    its entity keys, which may be a column an earlier view added (the recommender's
    ``customer_category_affinity`` joins by the ``category`` that ``product_catalog`` gave the
    candidate as of its label time). ``task`` is ``classification`` (one
    row per question) or ``ranking`` (one row per candidate of a query: ``query`` names the query's
    columns, and the model ranks each query's candidates by its score).
    """

    name: str
    label_table: str
    label_column: str
    views: tuple[str, ...]
    description: str
    keys: tuple[str, ...] = ("customer_id",)
    spine_time: str = "label_time"
    spine_columns: tuple[str, ...] = ()
    task: str = "classification"
    query: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"training_sets.{self.name}"

    def feature_views(self) -> list[FeatureView]:
        return [get_view(v) for v in self.views]

    def feature_columns(self) -> list[str]:
        return [name for view in self.feature_views() for name in view.feature_names()]


USE_CASES: dict[str, UseCase] = {
    "purchase_propensity": UseCase(
        name="purchase_propensity",
        label_table=LABELS_TABLE,
        label_column="label",
        views=("customer_activity:v1", "customer_profile:v1"),
        description="Will a customer who visits the shop buy within the next 7 days?",
    ),
    "product_recommendations": UseCase(
        name="product_recommendations",
        label_table=RECOMMENDATION_LABELS,
        label_column="label",
        views=(
            "customer_activity:v1",
            "product_popularity:v1",
            "product_catalog:v1",
            "customer_category_affinity:v1",
            "customer_product_interactions:v1",
        ),
        description="Which products will a customer who visits the shop buy within the next 7 days?",
        keys=("customer_id", "product_id"),
        spine_columns=("relevant_products",),
        task="ranking",
        query=("customer_id", "label_time"),
    ),
}


def get_use_case(name: str) -> UseCase:
    if name not in USE_CASES:
        raise ConfigError(f"unknown use case {name!r}; known: {', '.join(sorted(USE_CASES))}")
    return USE_CASES[name]


@dataclass(frozen=True, kw_only=True)
class ViewInput:
    """One feature view to join onto a spine with :func:`build_training_set`.

    ``name`` is unique per training set and names the view's bookkeeping columns; ``prefix`` is
    put in front of its value columns (empty: value names are kept as they are).
    """

    df: DataFrame
    keys: Sequence[str]
    name: str
    feature_time: str = "feature_time"
    ttl: timedelta | None = None
    prefix: str = ""
    created_time: str | None = None


def build_training_set(
    spine: DataFrame,
    views: Sequence[ViewInput],
    *,
    spine_time: str,
    as_of_write: str | None = None,
) -> DataFrame:
    """Join several feature views onto ``spine`` by :func:`~pitlake.training_set.pit.point_in_time_join`, in turn.

    Each join keeps every spine row exactly once, so the result has the spine's row count. Per
    view, the value columns are added as ``prefix + column`` and the bookkeeping columns as
    ``<name>__<column>``: always ``<name>__feature_time`` (the matched feature time, for the
    leakage audit with :func:`~pitlake.training_set.pit.leakage_violations`), plus ``<name>__<created_time>`` and
    ``<name>__<as_of_write>`` when those are used. ``as_of_write`` names the write-time column,
    which every view must then carry. Like ``point_in_time_join``, each join runs at call
    time (duplicate feature rows fail here, naming the view), so the next view starts from a
    materialised result rather than an ever longer plan.
    """
    from pitlake.training_set.pit import col, point_in_time_join

    names = [v.name for v in views]
    if not views:
        raise ConfigError("build_training_set needs at least one feature view")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or any(not n for n in names):
        raise ConfigError(f"feature view names must be non-empty and unique, got {names}")
    result = spine
    for view in views:
        keys = list(view.keys)
        bookkeeping = [view.feature_time, *(c for c in (view.created_time, as_of_write) if c)]
        renames = {c: f"{view.name}__{c}" for c in bookkeeping if c in view.df.columns}
        renames.update({c: view.prefix + c for c in view.df.columns if c not in keys and c not in bookkeeping})
        missing = [c for c in bookkeeping if c not in view.df.columns]
        if missing:
            raise ConfigError(f"feature view {view.name!r} has no column {missing[0]!r}; columns: {view.df.columns}")
        renamed = view.df.select(*[col(c).alias(renames.get(c, c)) for c in view.df.columns])
        try:
            result = point_in_time_join(
                result,
                renamed,
                keys=keys,
                spine_time=spine_time,
                feature_time=renames[view.feature_time],
                ttl=view.ttl,
                created_time=renames[view.created_time] if view.created_time else None,
                as_of_write=renames[as_of_write] if as_of_write else None,
            )
        except (ConfigError, InputError) as err:
            raise type(err)(f"feature view {view.name!r}: {err}") from err
    return result


def feature_inputs(
    spark: SparkSession,
    settings: Settings,
    use_case: UseCase,
    versions: dict[str, int],
    *,
    as_of_write: bool = False,
) -> list[ViewInput]:
    r"""The use case's views as :class:`ViewInput`\ s, each table read at ``versions[table]``: the inputs of
    every training set, and of the online store's skew check (:mod:`pitlake.serving.skew`)."""
    out = []
    for view in use_case.feature_views():
        df = delta_io.read(spark, settings.table_path(view.table), versions[view.table]).select(
            *view.keys, "feature_time", "computed_at", *view.feature_names()
        )
        if not as_of_write:
            df = df.drop("computed_at")
        out.append(ViewInput(df=df, keys=list(view.keys), name=view.name, ttl=view.ttl))
    return out


def content_hash(df: DataFrame, columns: list[str]) -> tuple[int, str]:
    """(row count, hash) of ``df``'s ``columns``, independent of row order and partitioning."""
    from pyspark.sql import functions as F

    row = df.select(F.xxhash64(*[F.col(c) for c in columns]).cast("decimal(38,0)").alias("h")).agg(
        F.count(F.lit(1)).alias("n"), F.sum("h").alias("s")
    )
    first = row.first()
    assert first is not None
    n, s = int(first["n"]), str(first["s"] or 0)
    digest = hashlib.sha256(f"{n}:{s}:{','.join(columns)}".encode()).hexdigest()
    return n, digest


def audit_leakage(df: DataFrame, views: list[FeatureView], spine_time: str) -> dict[str, int]:
    """Per view, rows whose matched feature_time is after ``spine_time`` or older than its TTL; raises if any."""
    from pitlake.training_set.pit import leakage_violations

    counts = {v.name: leakage_violations(df, spine_time, f"{v.name}__feature_time", v.ttl) for v in views}
    bad = {name: n for name, n in counts.items() if n}
    if bad:
        name, n = next(iter(bad.items()))
        raise InputError(
            f"leakage audit failed: {n} rows take feature view {name!r} from after {spine_time} or beyond its TTL; "
            "the training set was not written"
        )
    return counts


def build(
    spark: SparkSession,
    settings: Settings,
    use_case: UseCase,
    start: date,
    end: date,
    *,
    pins: dict[str, int] | None = None,
    as_of_write: bool = False,
) -> TrainingSetManifest:
    from pyspark.sql import functions as F

    if end < start:
        raise ConfigError(f"end {end} is before start {start}: swap them")
    pins = dict(pins or {})
    views = use_case.feature_views()
    tables = [use_case.label_table, *[v.table for v in views]]
    inputs: dict[str, dict[str, Any]] = {}
    for table in tables:
        path = settings.table_path(table)
        if not delta_io.table_exists(spark, path):
            raise InputError(f"{table} does not exist at {path}: build it before the training set")
        version = pins.pop(table, None)
        latest = delta_io.latest_version(spark, path)
        if version is not None and version > latest:
            raise InputError(f"{table} has no version {version} (latest is {latest})")
        inputs[table] = {"path": path, "version": latest if version is None else version}
    if pins:
        raise ConfigError(f"pinned tables not used by {use_case.name}: {sorted(pins)}")

    spine = (
        delta_io.read(spark, inputs[use_case.label_table]["path"], inputs[use_case.label_table]["version"])
        .where(F.col("label_date").between(F.lit(start), F.lit(end)))
        .select(*use_case.keys, *use_case.spine_columns, use_case.spine_time, "label_date", use_case.label_column)
    )
    versions = {v.table: inputs[v.table]["version"] for v in views}
    view_inputs = feature_inputs(spark, settings, use_case, versions, as_of_write=as_of_write)
    joined = build_training_set(
        spine, view_inputs, spine_time=use_case.spine_time, as_of_write="computed_at" if as_of_write else None
    ).cache()
    try:
        row_count = joined.count()
        if row_count == 0:
            raise InputError(
                f"{use_case.label_table} has no rows for {start}..{end} at version "
                f"{inputs[use_case.label_table]['version']}: run build_labels for those dates first"
            )
        violations = audit_leakage(joined, views, use_case.spine_time)
        columns = sorted(joined.columns)
        _, digest = content_hash(joined, columns)
        ident = {
            "use_case": use_case.name,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "as_of_write": as_of_write,
            "inputs": {t: i["version"] for t, i in inputs.items()},
        }
        training_set_id = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        out = joined.withColumn("training_set_id", F.lit(training_set_id))
        path = settings.table_path(use_case.table)
        version = delta_io.replace_where(out, path, f"training_set_id = '{training_set_id}'", ["training_set_id"])
        positives = int(joined.agg(F.sum(use_case.label_column)).first()[0] or 0)  # type: ignore[index]
    finally:
        joined.unpersist()
    manifest = manifest_dir(settings, use_case.name) / f"{training_set_id}.json"
    result = TrainingSetManifest(
        training_set_id=training_set_id,
        use_case=use_case.name,
        table=use_case.table,
        label_start=start.isoformat(),
        label_end=end.isoformat(),
        as_of_write=as_of_write,
        inputs=inputs,
        row_count=row_count,
        positives=positives,
        content_hash=digest,
        feature_columns=tuple(use_case.feature_columns()),
        label_column=use_case.label_column,
        delta_version=version,
        manifest_path=str(manifest),
        built_at=utc_now().isoformat(),
        leakage_violations=violations,
    )
    write_manifest(result)
    log.info("training set %s: %d rows, hash %s", training_set_id, row_count, digest[:12])
    return result
