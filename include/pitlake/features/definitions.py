"""Feature views as declarative, versioned objects, validated when they are constructed.

Two kinds of view cover the offline store:

* :class:`AggregateView`: windowed aggregations over an event table (``bronze.events``). The
  engine rolls one day of events into per-entity partial aggregates and composes windows from
  them (see :mod:`pitlake.features.engine`); the definition only says *what*.
* :class:`SnapshotView`: attributes of an SCD2 table (``bronze.customers``, ``bronze.products``) as of
  ``feature_time``, with whole days since a date and bands of a numeric column.

Names follow DESIGN.md: ``<function>_<measure>_<window>`` (``count_purchases_7d``) and
``days_since_last_<measure>``. A window is a whole number of days, written ``"7d"``.
Every error is a :class:`FeatureDefinitionError` naming the view and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pitlake.core.errors import ConfigError
from pitlake.sources.schemas import SOURCES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

AggFunction = Literal["count", "sum", "avg", "count_distinct", "days_since_last"]
WINDOWED: frozenset[str] = frozenset({"count", "sum", "avg", "count_distinct"})
NEEDS_COLUMN: frozenset[str] = frozenset({"sum", "avg", "count_distinct"})
NUMERIC_TYPES = frozenset({"double", "float", "bigint", "int", "decimal"})
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_WINDOW = re.compile(r"^(\d+)d$")


class FeatureDefinitionError(ConfigError):
    """A feature view definition is invalid; the message names the view and the field."""


@dataclass(frozen=True)
class Entity:
    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Aggregation:
    """One aggregation over a filtered subset of the source, at one or more windows.

    ``where`` maps a column to a value (equality) or a tuple of values (membership); the
    aggregation sees only matching rows. ``count`` counts rows; ``sum``/``avg`` ignore null
    values of ``column`` (``avg`` is null when there is none); ``count_distinct`` is exact;
    ``days_since_last`` has no window: whole calendar days from the last matching event's date
    to the feature date, over all history (null if never).
    """

    function: AggFunction
    measure: str
    column: str | None = None
    where: Mapping[str, object] = field(default_factory=dict)
    windows: tuple[str, ...] = ()

    def window_days(self) -> tuple[int, ...]:
        return tuple(int(m.group(1)) for w in self.windows if (m := _WINDOW.match(w)))

    def feature_names(self) -> list[str]:
        if self.function == "days_since_last":
            return [f"days_since_last_{self.measure}"]
        return [f"{self.function}_{self.measure}_{w}" for w in self.windows]


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator`` of two features of the same view; null when the denominator is 0."""

    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class FeatureView:
    name: str
    version: int
    entity: Entity
    source: str
    description: str
    owner: str
    ttl: timedelta | None

    @property
    def table(self) -> str:
        """The Delta table: ``features.<name>`` for v1, ``features.<name>_v<N>`` after (side by side)."""
        return f"features.{self.name}" if self.version == 1 else f"features.{self.name}_v{self.version}"

    @property
    def keys(self) -> tuple[str, ...]:
        return self.entity.keys

    def feature_names(self) -> list[str]:
        raise NotImplementedError

    def _fail(self, field_name: str, problem: str) -> FeatureDefinitionError:
        return FeatureDefinitionError(f"feature view {self.name!r} v{self.version}: {field_name}: {problem}")

    def _validate_common(self, columns: Mapping[str, str]) -> None:
        if not _NAME.match(self.name):
            raise self._fail("name", "use lower_snake_case")
        if self.version < 1:
            raise self._fail("version", f"must be 1 or more, got {self.version}")
        if not self.description.strip():
            raise self._fail("description", "say what the view is for")
        if not self.owner.strip():
            raise self._fail("owner", "name the owning team")
        if self.ttl is not None and (self.ttl <= timedelta(0) or self.ttl % timedelta(days=1)):
            raise self._fail("ttl", f"must be a positive whole number of days, got {self.ttl}")
        for key in self.keys:
            if key not in columns:
                raise self._fail("entity.keys", f"unknown column {key!r} in {self.source} (has {sorted(columns)})")


@dataclass(frozen=True)
class AggregateView(FeatureView):
    timestamp_column: str = "event_time"
    aggregations: tuple[Aggregation, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    transform: Callable[[DataFrame], DataFrame] | None = None
    transform_outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.validate()

    @property
    def rollup_table(self) -> str:
        return self.table + "_daily"

    @property
    def max_window_days(self) -> int:
        return max((d for a in self.aggregations for d in a.window_days()), default=1)

    def feature_names(self) -> list[str]:
        names = [n for a in self.aggregations for n in a.feature_names()]
        return names + [r.name for r in self.ratios] + list(self.transform_outputs)

    def validate(self) -> None:
        columns = SOURCES.get(self.source)
        if columns is None:
            raise self._fail("source", f"unknown table {self.source!r}; known: {sorted(SOURCES)}")
        self._validate_common(columns)
        if columns.get(self.timestamp_column) != "timestamp":
            raise self._fail(
                "timestamp_column", f"{self.timestamp_column!r} is not a timestamp column of {self.source}"
            )
        if not self.aggregations:
            raise self._fail("aggregations", "declare at least one")
        for i, agg in enumerate(self.aggregations):
            where = f"aggregations[{i}] ({agg.function} {agg.measure})"
            if agg.function not in WINDOWED | {"days_since_last"}:
                raise self._fail(where, f"unknown function {agg.function!r}")
            if not _NAME.match(agg.measure):
                raise self._fail(where, "measure must be lower_snake_case")
            if agg.function in NEEDS_COLUMN and agg.column is None:
                raise self._fail(where, f"{agg.function} needs a column")
            if agg.column is not None and agg.column not in columns:
                raise self._fail(where, f"unknown column {agg.column!r} in {self.source}")
            if agg.function in ("sum", "avg") and agg.column and columns[agg.column] not in NUMERIC_TYPES:
                raise self._fail(where, f"column {agg.column!r} is {columns[agg.column]}, not numeric")
            for col in agg.where:
                if col not in columns:
                    raise self._fail(where + ".where", f"unknown column {col!r} in {self.source}")
            if agg.function == "days_since_last":
                if agg.windows:
                    raise self._fail(where + ".windows", "days_since_last spans all history: declare no window")
            elif not agg.windows:
                raise self._fail(where + ".windows", "declare at least one window, e.g. ('7d',)")
            for w in agg.windows:
                m = _WINDOW.match(w)
                if not m or int(m.group(1)) < 1:
                    raise self._fail(where + ".windows", f"{w!r} is not a whole number of days like '7d'")
        names = self.feature_names()
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise self._fail("features", f"duplicate feature name {name!r}")
            seen.add(name)
        for ratio in self.ratios:
            for part in (ratio.numerator, ratio.denominator):
                if part not in seen - {ratio.name}:
                    raise self._fail(f"ratios ({ratio.name})", f"{part!r} is not a feature of this view")
        if self.transform_outputs and self.transform is None:
            raise self._fail("transform_outputs", "declared without a transform")


@dataclass(frozen=True)
class DaysSince:
    """Whole days from a date column to the feature date (e.g. tenure from ``signup_date``)."""

    name: str
    column: str


@dataclass(frozen=True)
class Band:
    """The band of a numeric column: 0 below ``edges[0]``, *i* in ``[edges[i-1], edges[i])``, ``len(edges)``
    from the last edge up; null when the column is null (e.g. a price band)."""

    name: str
    column: str
    edges: tuple[float, ...]


@dataclass(frozen=True)
class SnapshotView(FeatureView):
    """Attributes of an SCD2 source (``valid_from``/``valid_to``) as known just before ``feature_time``."""

    attributes: tuple[str, ...] = ()
    days_since: tuple[DaysSince, ...] = ()
    bands: tuple[Band, ...] = ()
    valid_from: str = "valid_from"
    valid_to: str = "valid_to"

    def __post_init__(self) -> None:
        self.validate()

    def feature_names(self) -> list[str]:
        return list(self.attributes) + [d.name for d in self.days_since] + [b.name for b in self.bands]

    def validate(self) -> None:
        columns = SOURCES.get(self.source)
        if columns is None:
            raise self._fail("source", f"unknown table {self.source!r}; known: {sorted(SOURCES)}")
        self._validate_common(columns)
        for name in (self.valid_from, self.valid_to):
            if columns.get(name) != "timestamp":
                raise self._fail("valid_from/valid_to", f"{name!r} is not a timestamp column of {self.source}")
        if not self.attributes and not self.days_since:
            raise self._fail("attributes", "declare at least one feature")
        for attr in self.attributes:
            if attr not in columns:
                raise self._fail("attributes", f"unknown column {attr!r} in {self.source}")
        for ds in self.days_since:
            if columns.get(ds.column) not in ("date", "timestamp"):
                raise self._fail(f"days_since ({ds.name})", f"{ds.column!r} is not a date column of {self.source}")
        for band in self.bands:
            if columns.get(band.column) not in NUMERIC_TYPES:
                raise self._fail(f"bands ({band.name})", f"{band.column!r} is not a numeric column of {self.source}")
            if not band.edges or list(band.edges) != sorted(set(band.edges)):
                raise self._fail(f"bands ({band.name})", f"edges must be strictly increasing, got {band.edges}")
        names = self.feature_names()
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise self._fail("features", f"duplicate feature name {dup!r}")
