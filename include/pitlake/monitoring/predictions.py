"""The prediction log ``monitoring.predictions``: one row per prediction the serving app answered.

The contract between the serving app (writer) and the monitor (reader). A Delta table under the lake,
partitioned by ``prediction_date`` and written with ``deltalake`` (no JVM), one append per batch:

* ``request_id`` string, not null: the request's id (a retried batch may log it twice: readers dedupe);
* ``predicted_at`` timestamp[us, UTC]: when the app served it (its clock);
* ``prediction_date`` date32: the UTC date of ``predicted_at`` (the partition);
* ``use_case``, ``model_name`` strings, ``model_version`` int64: what scored it;
* ``customer_id`` string: the use case's key;
* ``found`` bool: whether the online store had a row for the key;
* ``features`` string: a JSON object {feature name: served value or null};
* ``feature_as_of`` timestamp[us, UTC], nullable: the online materialization's as_of the features were served at;
* ``score`` double: the predicted probability of the positive class.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pitlake.core.errors import InputError
from pitlake.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

PREDICTIONS_TABLE = "monitoring.predictions"
PARTITION = "prediction_date"
SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("predicted_at", pa.timestamp("us", tz="UTC")),
        pa.field("prediction_date", pa.date32()),
        pa.field("use_case", pa.string()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.int64()),
        pa.field("customer_id", pa.string()),
        pa.field("found", pa.bool_()),
        pa.field("features", pa.string()),
        pa.field("feature_as_of", pa.timestamp("us", tz="UTC")),
        pa.field("score", pa.float64()),
    ]
)
FIELDS: tuple[str, ...] = tuple(SCHEMA.names)
BATCH_KEY = "pitlake.predictions_batch"  # commit metadata: finds this append's version in the table history
HISTORY_SCAN = 50


def _problem(record: Any) -> str | None:
    """Why ``record`` is not a prediction row, or None when it is one."""
    if not isinstance(record, dict):
        return f"is a {type(record).__name__}, not a dict"
    missing = [f for f in FIELDS if f not in record]
    extra = sorted(str(k) for k in record if k not in FIELDS)
    if missing or extra:
        return f"missing field(s) {missing}, unexpected field(s) {extra}"
    if not isinstance(record["request_id"], str) or not record["request_id"]:
        return "request_id must be a non-empty string"
    at = record["predicted_at"]
    if not isinstance(at, datetime) or at.utcoffset() is None:
        return f"predicted_at must be a timezone-aware datetime, got {at!r}"
    day = record["prediction_date"]
    if not isinstance(day, date) or isinstance(day, datetime) or day != at.astimezone(UTC).date():
        return f"prediction_date must be the UTC date of predicted_at ({at.astimezone(UTC).date()}), got {day!r}"
    as_of = record["feature_as_of"]
    if as_of is not None and (not isinstance(as_of, datetime) or as_of.utcoffset() is None):
        return f"feature_as_of must be a timezone-aware datetime or None, got {as_of!r}"
    try:
        parsed = json.loads(record["features"]) if isinstance(record["features"], str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return "features must be a JSON object as a string, e.g. '{\"count_purchases_7d\": 2}'"
    return None


def to_arrow(records: list[dict[str, Any]]) -> pa.Table:
    """``records`` as a table of exactly :data:`SCHEMA`; a one-line :class:`InputError` naming a bad record."""
    for i, record in enumerate(records):
        problem = _problem(record)
        if problem:
            rid = record.get("request_id") if isinstance(record, dict) else None
            raise InputError(f"prediction record {i} (request_id {rid!r}) for {PREDICTIONS_TABLE}: {problem}")
    try:
        return pa.Table.from_pylist(records, schema=SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise InputError(f"prediction records for {PREDICTIONS_TABLE} do not fit its schema: {first}") from None


def write_predictions(settings: Settings, records: list[dict[str, Any]]) -> int | None:
    """Append ``records`` (dicts with exactly :data:`FIELDS`) as one Delta commit; returns its version.

    None for an empty list (nothing is committed). A record with a missing or extra field, a naive
    datetime or a ``prediction_date`` that is not ``predicted_at``'s UTC date is a one-line
    :class:`InputError` and nothing is written.
    """
    if not records:
        return None
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    table = to_arrow(records)
    path = settings.table_path(PREDICTIONS_TABLE)
    batch = uuid.uuid4().hex
    write_deltalake(
        path,
        table,
        mode="append",
        partition_by=[PARTITION],
        commit_properties=CommitProperties(custom_metadata={BATCH_KEY: batch}),
    )
    # Another writer may have committed since: find this append by its batch id, not the latest version.
    delta = DeltaTable(path)
    for entry in delta.history(HISTORY_SCAN):
        if entry.get(BATCH_KEY) == batch and entry.get("version") is not None:
            return int(entry["version"])
    return int(delta.version())


def read_predictions(settings: Settings, start: date, end: date, columns: list[str] | None = None) -> pd.DataFrame:
    """The predictions with ``prediction_date`` in ``[start, end]`` (partition-pruned), by ``predicted_at``.

    Timestamps come back timezone-aware (UTC), ``prediction_date`` as ``datetime.date`` objects; an empty
    frame with the schema's columns when the table does not exist yet (nothing was ever served).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    wanted = list(columns or FIELDS)
    unknown = [c for c in wanted if c not in FIELDS]
    if unknown:
        raise ValueError(f"{PREDICTIONS_TABLE} has no columns {unknown}; it has {list(FIELDS)}")
    try:
        delta = DeltaTable(settings.table_path(PREDICTIONS_TABLE))
    except TableNotFoundError:
        return SCHEMA.empty_table().select(wanted).to_pandas()
    partitions = [(PARTITION, ">=", start.isoformat()), (PARTITION, "<=", end.isoformat())]
    # Single-threaded scan: a threaded one can leave Arrow threads that abort the interpreter at exit.
    arrow = delta.to_pyarrow_dataset(partitions=partitions).to_table(columns=wanted, use_threads=False)
    frame = arrow.to_pandas()
    order = [c for c in ("predicted_at", "request_id") if c in frame.columns]
    return frame.sort_values(order, kind="mergesort").reset_index(drop=True) if order else frame
