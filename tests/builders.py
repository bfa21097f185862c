"""Test data builders shared by the test modules: table schemas (DDLs), rows, landing files, Delta
writers and delta-rs readers. Test modules import from here (and from ``tests.services.processes``),
never from each other.

Nothing here starts Spark: the writers take the caller's session, the readers use delta-rs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pitlake.core.settings import Settings

T = datetime.fromisoformat

# --------------------------------------------------------------------------- table schemas (DDLs)

EVENTS_DDL = (
    "event_id string, event_type string, customer_id string, event_time timestamp, event_date date, "
    "amount double, category string, session_id string, ingest_date date, source_file string, line_number bigint, "
    "product_id string"
)
CUSTOMERS_DDL = (
    "customer_id string, segment string, country string, loyalty_tier string, signup_date date, "
    "valid_from timestamp, valid_to timestamp, is_current boolean, ingest_date date, source_file string, "
    "line_number bigint"
)
# features.customer_activity as customer_activity v1 writes it (the view's features in declaration order).
ACTIVITY_DDL = (
    "customer_id string, feature_time timestamp, feature_date date, computed_at timestamp, "
    "count_page_views_1d bigint, count_page_views_7d bigint, count_page_views_28d bigint, "
    "count_add_to_carts_1d bigint, count_add_to_carts_7d bigint, count_add_to_carts_28d bigint, "
    "count_purchases_7d bigint, count_purchases_28d bigint, sum_purchase_amount_7d double, "
    "sum_purchase_amount_28d double, avg_purchase_amount_28d double, count_distinct_categories_28d bigint, "
    "days_since_last_purchase int, cart_to_purchase_ratio_28d double, last_purchase_time timestamp"
)
PROFILE_DDL = (
    "customer_id string, feature_time timestamp, feature_date date, computed_at timestamp, segment string, "
    "country string, loyalty_tier string, tenure_days int"
)
LABELS_DDL = "customer_id string, label_time timestamp, label_date date, label int"


# --------------------------------------------------------------------------- rows


def event(eid, kind, cust, ts, amount=None, category="books", ingest=None):
    """A bronze.events row (``EVENTS_DDL``) at ``ts``, ingested that day unless ``ingest`` says otherwise."""
    t = T(ts)
    return (eid, kind, cust, t, t.date(), amount, category, "s", ingest or t.date(), "f", 1, None)


# --------------------------------------------------------------------------- Delta writers (Spark)


def save_delta(df: Any, path: str, *, mode: str, partition_by: str | None = None) -> None:
    """Write a DataFrame as a Delta table at ``path``. ``mode``: append, overwrite or error (Spark's
    default: the table must not exist yet)."""
    writer = df.write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(path)


def write_table(
    spark: Any,
    settings: Settings,
    table: str,
    rows: list[tuple[Any, ...]],
    ddl: str,
    *,
    mode: str,
    partition_by: str | None = None,
) -> None:
    """Write ``rows`` (in ``ddl``'s column order) to the lake table ``table`` (``layer.name``) of ``settings``."""
    save_delta(spark.createDataFrame(rows, ddl), settings.table_path(table), mode=mode, partition_by=partition_by)


def labelled_history(spark: Any, settings: Settings, customers: int = 30, days: int = 20, seed: int = 5) -> list[tuple]:
    """``days`` label days from 2026-01-01 for customers ``k00``.. with a learnable signal (a latent z drives
    both ``count_page_views_7d`` and P(label) = sigmoid(2z)), and the activity and profile rows (feature time
    = the label day's midnight) they join to, written as the three tables (v0); returns the profile rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    activity_names = [c.split(" ")[0] for c in ACTIVITY_DDL.split(", ")[4:-1]]
    labels, activity, profile = [], [], []
    strength = {f"k{i:02d}": rng.normal() for i in range(customers)}
    for d in range(days):
        day = date(2026, 1, 1) + timedelta(days=d)
        midnight = datetime.combine(day, datetime.min.time())
        for cust, z in strength.items():
            if rng.random() < 0.5:
                continue
            labels.append((cust, midnight + timedelta(hours=9), day, int(rng.random() < 1 / (1 + np.exp(-2 * z)))))
            values = {n: None for n in activity_names} | {"count_page_views_7d": round(3 + 2 * z)}
            activity.append((cust, midnight, day - timedelta(days=1), midnight, *values.values(), None))
            profile.append((cust, midnight, day - timedelta(days=1), midnight, "consumer", "DE", "gold", d))
    for table, rows, ddl, part in (
        ("labels.purchase_propensity", labels, LABELS_DDL, "label_date"),
        ("features.customer_activity", activity, ACTIVITY_DDL, "feature_date"),
        ("features.customer_profile", profile, PROFILE_DDL, "feature_date"),
    ):
        write_table(spark, settings, table, rows, ddl, mode="error", partition_by=part)
    return profile


# --------------------------------------------------------------------------- landing files


def write_landing(settings: Settings, source: str, day: str, lines: list[str], part: int = 0) -> Path:
    """One landing file ``<landing>/<source>/date=<day>/part-<part>.jsonl`` holding ``lines``."""
    folder = settings.landing / source / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part:04d}.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


D1, D2 = "2026-01-01", "2026-01-02"


def landing_event(event_id: str, time_: str, event_type: str = "page_view", amount: float | None = None) -> str:
    """A landing events line (JSON) of customer c1 or c2 (by the id's number)."""
    record: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "customer_id": f"c{int(event_id[1:]) % 2 + 1}",
        "event_time": time_,
        "category": "books",
        "session_id": f"s-{event_id}",
    }
    if amount is not None:
        record["amount"] = amount
    return json.dumps(record)


def landing_d1(settings: Settings) -> None:
    """D1: 3 valid events, 1 malformed line (quarantined)."""
    write_landing(
        settings,
        "events",
        D1,
        [
            landing_event("e1", "2026-01-01T08:00:00Z"),
            landing_event("e2", "2026-01-01T09:00:00Z", "add_to_cart"),
            landing_event("e3", "2026-01-01T10:00:00Z", "purchase", 20.0),
            "{not json",
        ],
    )


def landing_d2(settings: Settings) -> None:
    """D2: 4 valid events (one late, into event_date D1), 1 resent line (duplicate), 1 negative amount."""
    write_landing(
        settings,
        "events",
        D2,
        [
            landing_event("e4", "2026-01-02T08:00:00Z"),
            landing_event("e5", "2026-01-02T09:00:00Z", "purchase", 5.5),
            landing_event("e6", "2026-01-02T10:00:00Z", "add_to_cart"),
            landing_event("e7", "2026-01-01T23:30:00Z"),  # late: lands in event_date 2026-01-01
            landing_event("e4", "2026-01-02T08:00:00Z"),  # resent in the same drop: a duplicate
            landing_event("e8", "2026-01-02T11:00:00Z", "purchase", -1.0),  # quarantined: negative_amount
        ],
    )


# --------------------------------------------------------------------------- Delta readers (delta-rs, no Spark)


def parquet_files(table: Path) -> set[Path]:
    return set(table.rglob("*.parquet"))


def referenced_files(table: Path) -> set[Path]:
    """The data files of the table's current version."""
    from deltalake import DeltaTable

    return {Path(uri.removeprefix("file://")).resolve() for uri in DeltaTable(str(table)).file_uris()}


def log_versions(table: Path) -> list[int]:
    return sorted(int(p.stem) for p in (table / "_delta_log").glob("*.json"))


def bronze_rows(table: Path) -> list[dict[str, Any]]:
    """bronze.events rows as dicts, by event_id."""
    from deltalake import DeltaTable

    return sorted(DeltaTable(str(table)).to_pyarrow_table().to_pylist(), key=lambda r: r["event_id"])


def table_rows(path: Path, *, drop: Collection[str]) -> list[tuple[tuple[str, Any], ...]]:
    """A Delta table's rows for comparing two builds of the same data: each row a tuple of
    ``(column, value)`` pairs by column name, the rows sorted.

    Columns in ``drop`` (where or when a row was written) are left out; ``source_file``, when kept, is
    reduced to the file name (the two homes differ). Floats are rounded to 9 decimals: a sum's last bits
    depend on the order Spark adds the partial sums in (1547.71 vs 1547.7100000000003); NaN becomes the
    text ``"nan"`` so that equal rows compare equal.
    """
    from deltalake import DeltaTable

    out = []
    for row in DeltaTable(str(path)).to_pyarrow_table().to_pylist():
        items = []
        for key in sorted(row):
            if key in drop:
                continue
            value = row[key]
            if key == "source_file" and value is not None:
                value = value.rsplit("/", 1)[-1]
            elif isinstance(value, float):
                value = "nan" if math.isnan(value) else round(value, 9)
            items.append((key, value))
        out.append(tuple(items))
    return sorted(out, key=repr)


# --------------------------------------------------------------------------- online serving (no JVM)


def feature_arrow_schema(view: Any) -> Any:
    """The pyarrow schema of ``features.<view>`` as the engine writes it (keys, times, features)."""
    import pyarrow as pa
    from pitlake.validation.suites.features import feature_types

    arrow = {"bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(), "string": pa.string(),
             "boolean": pa.bool_(), "date": pa.date32()}  # fmt: skip
    ts = pa.timestamp("us", tz="UTC")
    fields = [pa.field(k, pa.string()) for k in view.keys]
    fields += [pa.field("feature_time", ts), pa.field("feature_date", pa.date32()), pa.field("computed_at", ts)]
    types = feature_types(view)
    fields += [pa.field(name, arrow[types[name]]) for name in view.feature_names()]
    return pa.schema(fields)


def write_feature_day(settings: Settings, view: Any, day: str, rows: list[dict[str, Any]], computed_at: str) -> int:
    """Replace ``feature_date = day`` of ``features.<view>`` with ``rows`` (dicts of keys and features; missing
    features null), ``feature_time`` = day + 1 00:00; returns the Delta version committed (delta-rs)."""
    from datetime import UTC, timedelta

    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    schema = feature_arrow_schema(view)
    d = T(day).date()
    ft = datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    ca = T(computed_at).replace(tzinfo=UTC)
    full = [{"feature_time": ft, "feature_date": d, "computed_at": ca} | r for r in rows]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in full], schema=schema)
    path = settings.table_path(view.table)
    write_deltalake(path, table, mode="overwrite", predicate=f"feature_date = '{day}'", partition_by=["feature_date"])
    return DeltaTable(path).version()


def register_champion(
    settings: Settings,
    frame: Any,
    label: Any,
    *,
    name: str = "purchase_propensity",
    candidate: str = "logistic_regression",
    experiment: str = "serving-tests",
) -> int:
    """Fit ``candidate`` on ``frame`` (training-set columns), log it as training logs a model, and register it
    as ``name``'s champion; returns the version."""
    import mlflow
    from pitlake.core import tracking
    from pitlake.training.candidates import make_pipeline
    from pitlake.training.dataset import feature_kinds, model_inputs
    from pitlake.training.mlflow_log import log_sklearn_model

    features = list(frame.columns)
    numeric, categorical = feature_kinds(frame, features)
    x = model_inputs(frame, features)
    model = make_pipeline(candidate, numeric, categorical, seed=7).fit(x, label)
    client = tracking.connect(settings)
    experiment_id = tracking.ensure_experiment(client, settings, experiment)
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_sklearn_model(model, x.head(200), x.head(3))
    version = int(mlflow.register_model(info.model_uri, name).version)
    client.set_registered_model_alias(name, "champion", str(version))
    return version


def training_frame(n: int = 80, seed: int = 1) -> tuple[Any, Any]:
    """Training-set-shaped rows (every feature of the use case, with nulls) and labels that depend on them."""
    import numpy as np
    import pandas as pd
    from pitlake.training_set.build import get_use_case

    features = get_use_case("purchase_propensity").feature_columns()
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.poisson(2, n).astype("float64") for f in features if f.startswith("count_")})
    for f in features:
        if f.startswith(("sum_", "avg_", "cart_")):
            frame[f] = rng.gamma(2.0, 10.0, n)
    frame["days_since_last_purchase"] = rng.integers(0, 30, n).astype("float64")
    frame.loc[::5, "days_since_last_purchase"] = np.nan
    frame["segment"] = rng.choice(["new", "regular", "vip"], n).astype(object)
    frame["country"] = rng.choice(["DE", "FR"], n).astype(object)
    frame["loyalty_tier"] = rng.choice(["none", "gold"], n).astype(object)
    frame.loc[::7, "loyalty_tier"] = None
    frame["tenure_days"] = rng.integers(1, 400, n).astype("float64")
    label = (frame["count_purchases_7d"] + rng.normal(0, 1, n) > 2).astype(int).to_numpy()
    return frame[features], label
