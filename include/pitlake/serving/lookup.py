"""Feature lookup for a use case: entity keys in, the features a training row would have at the request's time.

A request at time ``t`` (the app's clock) gets, per view, the stored row of each key (the latest
``feature_time`` at or before the view's last materialization ``as_of``) only while it is within
the view's TTL of ``t`` (``feature_time >= t - ttl``, both bounds inclusive) and not after ``t``:
the rule of :func:`~pitlake.training_set.pit.point_in_time_join` for a spine row at ``t``. So with
an up-to-date store (no feature row newer than ``as_of`` exists yet) the served vector is the
point-in-time row at ``t``. A stored row past its TTL gives nulls and ``stale: true``; a key
without any stored row is ``found: false`` with nulls, as the join gives a spine row without a match.

Feature references are ``<view>:<feature>`` (``customer_activity:count_purchases_7d``); the
model's inputs use the plain feature names, the training set's column names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from pitlake.core.errors import ConfigError
from pitlake.features.definitions import FeatureView
from pitlake.serving.materialize import from_micros, micros, view_ref
from pitlake.serving.store import OnlineStore, entity_key, last_materialization
from pitlake.training_set.build import UseCase


class UnknownFeatureError(ConfigError):
    """A requested feature reference is not a feature of the use case's views."""


@dataclass(frozen=True)
class ViewState:
    """What the store holds for a view: its last materialization's ``as_of`` and Delta version."""

    as_of: datetime | None
    delta_version: int | None
    record: dict[str, Any] | None


@dataclass
class EntityFeatures:
    key: tuple[str, ...]
    found: bool
    stale: bool
    values: dict[str, Any]  # plain feature name -> value (None when null)
    feature_time: dict[str, str | None]  # view -> ISO time of the row used (None when none)


class FeatureLookup:
    """Reads a use case's views from the online store; caches each view's last materialization for a few seconds."""

    def __init__(self, store: OnlineStore, use_case: UseCase, refresh_seconds: float = 5.0) -> None:
        self.store = store
        self.use_case = use_case
        self.views: list[FeatureView] = use_case.feature_views()
        self.refs = {view_ref(v): v for v in self.views}
        self.feature_view: dict[str, str] = {}  # plain name -> view ref
        for ref, view in self.refs.items():
            for name in view.feature_names():
                self.feature_view[name] = ref
        self.all_refs = [f"{ref}:{name}" for ref, v in self.refs.items() for name in v.feature_names()]
        self._refresh = refresh_seconds
        self._states: dict[str, ViewState] = {}
        self._checked = 0.0
        self._lock = threading.Lock()

    def resolve(self, refs: Sequence[str] | None) -> list[tuple[str, str]]:
        """``(view ref, feature)`` per requested reference, in request order; all of them when None."""
        if refs is None:
            return [(r.split(":", 1)[0], r.split(":", 1)[1]) for r in self.all_refs]
        out = []
        for ref in refs:
            view, sep, feature = ref.partition(":")
            if not sep or view not in self.refs or feature not in self.refs[view].feature_names():
                hint = f"views: {', '.join(self.refs)}" if view not in self.refs else f"features of {view}: see /docs"
                raise UnknownFeatureError(
                    f"unknown feature {ref!r} for use case {self.use_case.name}: use '<view>:<feature>' ({hint})"
                )
            out.append((view, feature))
        return out

    def states(self) -> dict[str, ViewState]:
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= self._refresh or not self._states:
                states = {}
                for ref in self.refs:
                    record = last_materialization(self.store, ref)
                    states[ref] = ViewState(
                        as_of=datetime.fromisoformat(record["as_of"]) if record else None,
                        delta_version=record["delta_version"] if record else None,
                        record=record,
                    )
                self._states = states
                self._checked = now
            return self._states

    def latest_as_of(self) -> datetime | None:
        """The newest materialization ``as_of`` among the views (naive UTC), None before any."""
        found = [s.as_of for s in self.states().values() if s.as_of is not None]
        return max(found) if found else None

    def lookup(
        self, entities: Sequence[tuple[str, ...]], at: datetime, views: Sequence[str] | None = None
    ) -> list[EntityFeatures]:
        """The features of every entity (key values in the use case's key order) at ``at`` (naive UTC),
        from ``views`` (all when None)."""
        keys = [entity_key(e) for e in entities]
        results = [EntityFeatures(e, False, False, {}, {}) for e in entities]
        wanted = list(views or self.refs)
        stored_by_view = self.store.read_views(wanted, keys)
        for ref in wanted:
            self._fill(ref, stored_by_view[ref], keys, results, at)
        return results

    def lookup_view(self, ref: str, entities: Sequence[tuple[str, ...]], at: datetime) -> list[EntityFeatures]:
        """The features of view ``ref`` for ``entities`` given in *that view's* key order (a use case whose
        views have different keys, such as the recommender's, looks each view up by its own keys)."""
        keys = [entity_key(e) for e in entities]
        results = [EntityFeatures(e, False, False, {}, {}) for e in entities]
        self._fill(ref, self.store.read(ref, keys) if keys else {}, keys, results, at)
        return results

    def _fill(
        self, ref: str, stored: dict[str, tuple[int, int, bytes]], keys: list[str], results: list[EntityFeatures],
        at: datetime,
    ) -> None:  # fmt: skip
        """Put view ``ref``'s values of each key into its result, by the point-in-time and TTL rule."""
        at_us = micros(at)
        view = self.refs[ref]
        names = view.feature_names()
        floor = micros(at - view.ttl) if view.ttl is not None else None
        for key, result in zip(keys, results, strict=True):
            row = stored.get(key)
            if row is None:
                result.feature_time[ref] = None
                result.values.update(dict.fromkeys(names))
                continue
            ft, _, encoded = row
            result.found = True
            result.feature_time[ref] = from_micros(ft).isoformat() + "Z"
            if ft > at_us:  # a row from after the request's time: not known yet at ``at``
                result.values.update(dict.fromkeys(names))
            elif floor is not None and ft < floor:
                result.stale = True
                result.values.update(dict.fromkeys(names))
            else:
                result.values.update(zip(names, orjson.loads(encoded), strict=True))
