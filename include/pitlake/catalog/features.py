"""The feature catalog: every declared feature view (all versions), what each feature means, and the state
of its Delta table (latest version, rows, last ``feature_time``) and of its suite's latest validation.

A feature's description is derived from its declaration (aggregation, filter, window, source), so it
cannot drift from what the engine computes; its type is the one the engine writes (the type the
``features_<view>`` suite checks).
"""

from __future__ import annotations

from dataclasses import dataclass

from pitlake.catalog import html as h
from pitlake.catalog.lake import TableStats, table_stats
from pitlake.catalog.validations import ValidationRun, latest_by_suite
from pitlake.core.settings import Settings
from pitlake.features import VIEWS, AggregateView, Aggregation, FeatureView, SnapshotView
from pitlake.validation.records import suite_name
from pitlake.validation.suites.features import feature_types


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class ViewEntry:
    view: FeatureView
    features: tuple[Feature, ...]
    stats: TableStats
    validation: ValidationRun | None

    @property
    def suite(self) -> str:
        return suite_name(self.view.table)


def _rows_where(agg: Aggregation, source: str) -> str:
    if not agg.where:
        return f"{source} rows"
    conditions = []
    for column, value in sorted(agg.where.items()):
        if isinstance(value, tuple | list):
            conditions.append(f"{column} in ({', '.join(str(v) for v in value)})")
        else:
            conditions.append(f"{column} = {value}")
    return f"{source} rows with {' and '.join(conditions)}"


def _window(days: int) -> str:
    return "the day before feature_time" if days == 1 else f"the {days} days before feature_time"


def describe(view: FeatureView) -> list[Feature]:
    """Every feature of ``view`` in declaration order: name, the engine's type, what it is, from its definition."""
    types = feature_types(view)
    out: list[Feature] = []

    def add(name: str, text: str) -> None:
        out.append(Feature(name, types.get(name, "computed by the view's transform"), text))

    if isinstance(view, AggregateView):
        for agg in view.aggregations:
            rows = _rows_where(agg, view.source)
            if agg.function == "days_since_last":
                add(
                    agg.feature_names()[0],
                    f"Whole days from the last of the {rows} to the feature date, over all history (null if none).",
                )
                continue
            for name, days in zip(agg.feature_names(), agg.window_days(), strict=True):
                span = _window(days)
                text = {
                    "count": f"Number of {rows} in {span}.",
                    "sum": f"Sum of {agg.column} over the {rows} in {span} (0 if none).",
                    "avg": f"Average {agg.column} of the {rows} in {span} (null if none).",
                    "count_distinct": f"Distinct values of {agg.column} among the {rows} in {span}.",
                }[agg.function]
                add(name, text)
        for ratio in view.ratios:
            add(ratio.name, f"{ratio.numerator} / {ratio.denominator} (null when the denominator is 0).")
        for name in view.transform_outputs:
            add(name, "Computed by the view's transform from the aggregates above.")
    elif isinstance(view, SnapshotView):
        for attr in view.attributes:
            add(attr, f"The {view.entity.name}'s {attr} in {view.source}, as known just before feature_time.")
        for days_since in view.days_since:
            add(days_since.name, f"Whole days from {days_since.column} to the feature date.")
        for band in view.bands:
            edges = ", ".join(f"{e:g}" for e in band.edges)
            add(band.name, f"The band of {band.column}: 0 below {band.edges[0]:g}, one more at each edge ({edges}).")
    return out


def catalog(settings: Settings) -> list[ViewEntry]:
    """Every view (name, then version) with its table's state and its suite's latest validation."""
    views = sorted(VIEWS, key=lambda v: (v.name, v.version))
    validations = latest_by_suite(settings, [suite_name(v.table) for v in views])
    return [
        ViewEntry(
            view=view,
            features=tuple(describe(view)),
            stats=table_stats(view.table, settings.table_path(view.table), "feature_time"),
            validation=validations.get(suite_name(view.table)),
        )
        for view in views
    ]


# --------------------------------------------------------------------------- the page


def validation_cell(run: ValidationRun | None, base: str) -> h.Html:
    if run is None:
        return h.badge("not validated")
    failed = len(run.critical_failures)
    label = h.outcome_badge(run.success, len(run.warnings))
    detail = f" {failed} critical failure{'s' if failed != 1 else ''}" if failed else ""
    when = f"v{run.delta_version}, {h.when(run.validated_at)}"
    return h.join([label, h.link(f"{base}/validations/{run.result_id}", when), detail], " ")


def _version_label(view: FeatureView) -> str:
    return f"v{view.version}"


def render_catalog(entries: list[ViewEntry], *, base: str) -> str:
    summary = h.table(
        ["View", "Version", "Entity", "Source", "TTL", "Features", "Delta version", "Rows", "Last feature_time",
         "Latest validation"],
        [
            [h.link(f"#{e.view.name}-v{e.view.version}", e.view.name), _version_label(e.view),
             f"{e.view.entity.name} ({', '.join(e.view.keys)})", e.view.source, h.duration(e.view.ttl),
             len(e.features), _version(e.stats), h.count(e.stats.rows), h.when(e.stats.latest),
             validation_cell(e.validation, base)]
            for e in entries
        ],
        classes=["", "", "", "", "nowrap", "num", "num", "num", "nowrap", ""],
        empty="no feature views are declared",
    )  # fmt: skip
    cards = [h.section(f"All views ({len(entries)})", summary)]
    for e in entries:
        cards.append(_view_card(e, base))
    return h.page(
        "Feature catalog",
        h.join(cards),
        base=base,
        active="catalog",
        lead="Every feature view declared in pitlake.features, its Delta table (read from the Delta log: no data "
        "file is scanned) and its suite's latest validation.",
    )


def _version(stats: TableStats) -> str:
    if stats.error:
        return "unreadable"
    return "not built yet" if stats.version is None else f"v{stats.version}"


def _view_card(e: ViewEntry, base: str) -> h.Html:
    view, stats = e.view, e.stats
    table_state: list[tuple[str, object]]
    if not stats.exists:
        table_state = [("Delta table", h.join([h.code(view.table), h.muted(" not built yet")]))]
    elif stats.error:
        table_state = [("Delta table", h.join([h.code(view.table), h.muted(f" unreadable: {stats.error}")]))]
    else:
        table_state = [
            ("Delta table", h.join([h.code(view.table), f" v{stats.version}",
                                    h.muted(f", committed {h.when(stats.committed_at)}")])),
            ("Rows", h.join([h.count(stats.rows), h.muted(f" in {stats.files:,} files") if stats.rows is not None
                             else h.muted(" unknown: a data file has no statistics in the log"),
                             "" if stats.rows_exact else h.muted(" (at most: deletion vectors hide some)")])),
            ("Last feature_time", h.when(stats.latest)),
        ]  # fmt: skip
    run = e.validation
    check_line: object = h.muted(f"suite {e.suite} has no recorded run")
    if run is not None:
        check_line = h.join([
            validation_cell(run, base), h.muted(f" — suite {run.suite}, {len(run.checks)} checks, slice {run.slice}; "),
            h.link(f"{base}/validations/suites/{run.suite}", "history"),
        ])  # fmt: skip
    meta = h.fields(
        [
            ("Description", view.description),
            ("Entity", f"{view.entity.name} ({', '.join(view.keys)})"),
            ("Source", h.code(view.source)),
            ("TTL", h.duration(view.ttl)),
            ("Owner", view.owner),
            ("Kind", "aggregates over an event table" if isinstance(view, AggregateView) else "SCD2 snapshot"),
            *table_state,
            ("Latest validation", check_line),
        ]
    )
    features = h.table(
        ["Feature", "Type", "Description"],
        [[h.code(f.name), h.code(f.type), f.description] for f in e.features],
        classes=["nowrap", "nowrap", ""],
    )
    return h.section(
        h.join([view.name, " ", h.badge(_version_label(view), "brand")]),
        h.join([meta, h.Html("<h3>Features</h3>"), features]),
        anchor=f"{view.name}-v{view.version}",
        aside=h.code(view.table),
    )
