"""Materialization: the latest feature row per key, as of an instant, from a pinned Delta version to the online store.

``materialize(settings, view, as_of=...)`` reads ``features.<view>`` with ``deltalake`` (no JVM) at
one Delta version (the latest, or ``version``), keeps rows with ``feature_time <= as_of`` and, per
entity key, the row with the greatest ``(feature_time, computed_at)``, and writes them to the online
store, monotonically (:mod:`pitlake.serving.store`). The store keeps that row even once it is older
than the view's TTL; the serving app applies the TTL at read time against the materialization's
``as_of``, exactly as :func:`~pitlake.training_set.pit.point_in_time_join` does at a spine time
(``feature_time >= as_of - ttl``), and flags the row ``stale``.

**Incremental.** With an earlier materialization of the view in the store, only the partitions
(``feature_date``) that changed since the Delta version it read are read (the ``add``/``remove``
actions of the commits in between, from the table's ``_delta_log``), plus the days whose
``feature_time`` falls between its ``as_of`` and this one: a daily run reads one day of rows and
touches only the keys whose rows changed. A rebuilt earlier day (late data) is read again, and its
rows replace the stored ones only where they are still each key's latest. Where the log cannot be
read (a remote table, commits cleaned up), or ``full=True``, every partition up to ``as_of`` is read.

Each run records view, table, Delta version, ``as_of``, mode, rows read, keys written and the
feature schema in the store; a rerun with the same inputs writes no row (``keys_written = 0``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.errors import InputError
from pitlake.core.settings import Settings
from pitlake.features.definitions import FeatureView
from pitlake.serving.store import OnlineStore, StoredRow, entity_key, last_materialization, open_store

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass
class MaterializationResult:
    view: str
    table: str
    delta_version: int
    as_of: str
    mode: str  # "full" or "incremental"
    partitions_read: list[str]
    rows_read: int
    keys_in_batch: int
    keys_written: int
    seconds: float
    store: str
    features: list[str]
    types: dict[str, str]
    materialized_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_lineage(result: MaterializationResult) -> dict[str, Any]:
    """The materialization's OpenLineage datasets: the feature table at the version read, the online view."""
    from pitlake.core.openlineage import lineage, other_dataset, table_dataset

    facet = {"as_of": result.as_of, "keys_written": result.keys_written}
    online = other_dataset("online", f"{result.store}/{result.view}", pitlake_materialization=facet)
    return lineage([table_dataset(result.table, result.delta_version)], [online])


def view_ref(view: FeatureView) -> str:
    """The view's name in the store and in feature references: ``customer_activity`` (v1) or ``name_vN``."""
    return view.name if view.version == 1 else f"{view.name}_v{view.version}"


def micros(value: datetime) -> int:
    """Microseconds since the epoch of a naive-UTC or aware datetime."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp()) * 1_000_000 + aware.microsecond


def from_micros(value: int) -> datetime:
    """Naive UTC datetime of epoch microseconds (the house convention for Spark timestamps)."""
    return datetime(1970, 1, 1) + timedelta(microseconds=value)


def changed_partitions(path: str, since: int, until: int) -> set[str] | None:
    """``feature_date`` values touched by the commits ``(since, until]``; None when the log cannot tell."""
    log_dir = Path(path) / "_delta_log"
    touched: set[str] = set()
    for version in range(since + 1, until + 1):
        commit = log_dir / f"{version:020d}.json"
        try:
            lines = commit.read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            action = json.loads(line) if line.strip() else {}
            for kind in ("add", "remove"):
                if kind in action:
                    value = (action[kind].get("partitionValues") or {}).get("feature_date")
                    if value is None:
                        return None  # an unpartitioned write: read everything
                    touched.add(value)
            if "metaData" in action:
                return None  # schema or partitioning changed: read everything
    return touched


def _days_between(after: datetime, until: datetime) -> set[str]:
    """``feature_date``s whose ``feature_time`` (= the next day 00:00) lies in ``(after, until]``."""
    out: set[str] = set()
    day = after.date() - timedelta(days=1)
    while datetime.combine(day + timedelta(days=1), datetime.min.time()) <= until:
        if datetime.combine(day + timedelta(days=1), datetime.min.time()) > after:
            out.add(day.isoformat())
        day += timedelta(days=1)
    return out


def latest_rows(table: pa.Table, keys: tuple[str, ...], features: list[str], as_of: datetime) -> list[StoredRow]:
    """Per key, the row with the greatest ``(feature_time, computed_at)`` at or before ``as_of``, encoded."""
    import orjson
    import pyarrow as pa
    import pyarrow.compute as pc

    ft = table["feature_time"].cast(pa.timestamp("us")).cast(pa.int64())
    ca = table["computed_at"].cast(pa.timestamp("us")).cast(pa.int64())
    table = table.set_column(table.schema.get_field_index("feature_time"), "feature_time", ft)
    table = table.set_column(table.schema.get_field_index("computed_at"), "computed_at", ca)
    table = table.filter(pc.less_equal(table["feature_time"], pa.scalar(micros(as_of), pa.int64())))
    if table.num_rows == 0:
        return []
    order = [(k, "ascending") for k in keys] + [("feature_time", "descending"), ("computed_at", "descending")]
    table = table.take(pc.sort_indices(table, sort_keys=order))
    key_cols = [table[k].to_pylist() for k in keys]
    key_values = list(zip(*key_cols, strict=True))
    # First row of each key run (sorted by key, newest first).
    first = [i for i in range(len(key_values)) if i == 0 or key_values[i] != key_values[i - 1]]
    picked = table.take(pa.array(first, pa.int64()))
    columns = [picked[f].to_pylist() for f in features]
    values = zip(*columns, strict=True) if columns else iter([()] * len(first))
    fts = picked["feature_time"].to_pylist()
    cas = picked["computed_at"].to_pylist()
    return [
        (entity_key(key_values[i]), ft_, ca_, orjson.dumps(list(vals)))
        for i, ft_, ca_, vals in zip(first, fts, cas, values, strict=True)
    ]


def materialize(
    settings: Settings,
    view: FeatureView,
    *,
    as_of: datetime,
    version: int | None = None,
    store: OnlineStore | None = None,
    full: bool = False,
) -> MaterializationResult:
    """Write ``view``'s latest rows as of ``as_of`` (naive UTC) from Delta ``version`` into the online store."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    began = time.monotonic()
    own_store = store is None
    store = store or open_store(settings)
    ref = view_ref(view)
    path = settings.table_path(view.table)
    try:
        table = DeltaTable(path, version=version)
    except TableNotFoundError:
        raise InputError(f"{view.table} does not exist at {path}: run build_features for {view.name} first") from None
    pinned = table.version()
    previous = last_materialization(store, ref)
    partitions: set[str] | None = None
    if previous is not None and not full and previous["delta_version"] <= pinned:
        partitions = changed_partitions(path, int(previous["delta_version"]), pinned)
        if partitions is not None:
            partitions |= _days_between(datetime.fromisoformat(previous["as_of"]), as_of)
    last_day = (as_of - timedelta(days=1)).date() if as_of.time() == datetime.min.time() else as_of.date()
    features = view.feature_names()
    columns = [*view.keys, "feature_time", "computed_at", *features]
    if partitions is None:
        mode = "full"
        arrow = table.to_pyarrow_table(columns=columns, filters=[("feature_date", "<=", last_day)])
        read_days = ["all"]
    else:
        mode = "incremental"
        wanted = sorted(d for d in partitions if date.fromisoformat(d) <= last_day)
        arrow = (
            table.to_pyarrow_table(columns=columns, filters=[("feature_date", "in", wanted)])
            if wanted
            else table.to_pyarrow_dataset().schema.empty_table().select(columns)  # nothing changed: read nothing
        )
        read_days = wanted
    rows = latest_rows(arrow, view.keys, features, as_of)
    written = store.write(ref, rows)
    types = {f: str(arrow.schema.field(f).type) for f in features}
    result = MaterializationResult(
        view=ref,
        table=view.table,
        delta_version=pinned,
        as_of=as_of.isoformat(),
        mode=mode,
        partitions_read=read_days,
        rows_read=arrow.num_rows,
        keys_in_batch=len(rows),
        keys_written=written,
        seconds=round(time.monotonic() - began, 3),
        store=store.kind,
        features=features,
        types=types,
        materialized_at=datetime.now(UTC).replace(tzinfo=None).isoformat(),
    )
    store.record_materialization(result.to_dict())
    log.info(
        "materialized %s v%d as of %s: %d rows read, %d keys, %d written (%s, %.2f s)",
        view.table, pinned, as_of, arrow.num_rows, len(rows), written, mode, result.seconds,
    )  # fmt: skip
    if own_store:
        store.close()
    return result
