"""The validation pages: every suite's latest run with its checks, one run, and a suite's recent runs.

Each run links to its own page (and from there to its Data Docs page, served by the plugin itself, and to
the Airflow run that validated it), so a person reads results without the Data Docs' web assets.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from pitlake.catalog import html as h
from pitlake.catalog.runs import dags_with_run, run_href
from pitlake.catalog.validations import Check, ValidationRun, latest_by_suite, suite_history
from pitlake.core.delta_io import lake_tables
from pitlake.core.settings import Settings
from pitlake.validation.records import CRITICAL, suite_name

LAYERS = ("bronze", "features", "labels", "training_sets")
DOCS_DIR = "data_docs"


def known_suites(settings: Settings) -> list[str]:
    """The suite of every validated layer's table in the lake, in pipeline order (rollups are not validated)."""
    tables = [name for name, _ in lake_tables(settings)]
    ordered = sorted(
        (t for t in tables if t.split(".")[0] in LAYERS and not t.endswith("_daily")),
        key=lambda t: (LAYERS.index(t.split(".")[0]), t),
    )
    return [suite_name(t) for t in ordered]


def result_cell(run: ValidationRun) -> h.Html:
    return h.outcome_badge(run.success, len(run.warnings))


def airflow_run_cell(settings: Settings, run: ValidationRun, base: str) -> h.Html:
    """The Airflow run that validated ``run``, linked to its page when a task of that run left records."""
    if not run.run_id or run.run_id == "manual":
        return h.muted(run.run_id or "–")
    dags = dags_with_run(settings, run.run_id)
    if not dags:
        return h.code(run.run_id)
    return h.join([h.link(run_href(base, d, run.run_id), f"{d} / {run.run_id}") for d in dags], ", ")


def _failed(run: ValidationRun) -> str:
    return f"{len(run.critical_failures)} / {len(run.warnings)}"


def checks_table(checks: tuple[Check, ...] | list[Check]) -> h.Html:
    """Failures first (critical, then warnings), then the passes, each in the suite's order."""
    ordered = sorted(checks, key=lambda c: (c.success, c.severity != CRITICAL))
    rows = []
    for c in ordered:
        result = (
            h.badge("ok", "success")
            if c.success
            else h.badge(
                "failed" if c.severity == CRITICAL else "warning", "failed" if c.severity == CRITICAL else "warning"
            )
        )
        unexpected = "–" if c.unexpected_count is None else f"{c.unexpected_count:,} of {c.element_count or 0:,}"
        row_class = "" if c.success else "fail" if c.severity == CRITICAL else "warn"
        rows.append([
            c.check or h.muted("–"), h.code(c.expectation), h.code(c.column) if c.column else h.muted("table"),
            c.severity, result, unexpected, h.Html(f'<span class="mono">{h.esc(h.observed(c.observed_value))}</span>'),
            {"class": row_class},
        ])  # fmt: skip
    return h.table(
        ["Check", "Expectation", "Column", "Severity", "Result", "Unexpected rows", "Observed value"],
        rows,
        classes=["", "nowrap", "", "", "", "num", ""],
        empty="no expectations recorded",
    )


def render_overview(settings: Settings, *, base: str) -> str:
    suites = known_suites(settings)
    latest = latest_by_suite(settings, suites)
    runs = [latest[s] for s in suites if s in latest]
    summary = h.table(
        ["Suite", "Table", "Slice", "Validated at", "Airflow run", "Result", "Checks", "Failed (critical / warning)",
         ""],
        [
            [h.link(f"#{r.suite}", r.suite), h.join([h.code(r.table), f" v{r.delta_version}"]), r.slice,
             h.when(r.validated_at), airflow_run_cell(settings, r, base), result_cell(r), len(r.checks), _failed(r),
             h.join([h.link(f"{base}/validations/{r.result_id}", "run"), " · ",
                     h.link(f"{base}/validations/suites/{r.suite}", "history")])]
            for r in runs
        ],
        classes=["", "nowrap", "nowrap", "nowrap", "", "", "num", "num", "nowrap"],
        empty="no validation results yet: they appear after the first pipeline run",
    )  # fmt: skip
    cards = [h.section("Latest run of each suite", summary)]
    for r in runs:
        head = h.join([r.suite, " ", result_cell(r)])
        meta = h.muted(
            f"{r.table} v{r.delta_version}, {r.slice}, {h.when(r.validated_at)}, {len(r.checks)} checks, "
            f"result {r.result_id}"
        )
        body = h.join([h.Html(f"<p>{meta}</p>"), checks_table(r.checks)])
        cards.append(
            h.section(head, body, anchor=r.suite, aside=h.link(f"{base}/validations/{r.result_id}", "open run"))
        )
    return h.page(
        "Validation results",
        h.join(cards),
        base=base,
        active="validations",
        lead="The latest Great Expectations run of every suite, from ops.validation_results: what each check "
        "expects, what it observed, and which rows failed. A critical failure stops the pipeline; a warning is "
        "recorded.",
    )


def docs_page(settings: Settings, run: ValidationRun) -> str | None:
    """The run's Data Docs page, relative to ``gx/data_docs``, from its JSON report (None when not built)."""
    if not run.report_path:
        return None
    try:
        report = json.loads(Path(run.report_path).read_text())
    except (OSError, ValueError):
        return None
    docs = report.get("docs_path") if isinstance(report, dict) else None
    if not docs:
        return None
    root = (settings.gx_dir / DOCS_DIR).resolve()
    page = Path(str(docs).removeprefix("file://")).resolve()
    return page.relative_to(root).as_posix() if page.is_relative_to(root) else None


def render_run(settings: Settings, run: ValidationRun, *, base: str) -> str:
    docs = docs_page(settings, run)
    meta = h.fields(
        [
            ("Suite", h.join([run.suite, " · ", h.link(f"{base}/validations/suites/{run.suite}", "history")])),
            ("Table", h.join([h.code(run.table), f" at Delta version {run.delta_version}"])),
            ("Slice", run.slice),
            ("Validated at", h.when(run.validated_at)),
            ("Airflow run", airflow_run_cell(settings, run, base)),
            ("Result", h.join([result_cell(run),
                               f" {len(run.checks)} checks, {_failed(run)} failed (critical / warning)"])),
            ("Result id", h.code(run.result_id)),
            ("Report (JSON)", h.code(run.report_path or "–")),
            ("Data Docs", h.link(f"{base}/data-docs/{quote(docs)}", "open this run's page") if docs
             else h.muted("not built for this run")),
        ]
    )  # fmt: skip
    failures = [c for c in run.checks if not c.success]
    cards = [h.section("Run", meta)]
    if failures:
        cards.append(h.section(f"Failures ({len(failures)})", checks_table(failures)))
    cards.append(h.section(f"All checks ({len(run.checks)})", checks_table(run.checks)))
    return h.page(f"Validation run of {run.suite}", h.join(cards), base=base, active="validations",
                  lead=f"{run.table} v{run.delta_version}, {run.slice}")  # fmt: skip


def render_history(settings: Settings, suite: str, *, base: str, limit: int = 20) -> str:
    runs = suite_history(settings, suite, limit)
    rows = [
        [h.link(f"{base}/validations/{r.result_id}", h.when(r.validated_at)),
         h.join([h.code(r.table), f" v{r.delta_version}"]), r.slice, airflow_run_cell(settings, r, base),
         result_cell(r), len(r.checks), _failed(r)]
        for r in runs
    ]  # fmt: skip
    body = h.table(
        ["Validated at", "Table", "Slice", "Airflow run", "Result", "Checks", "Failed (critical / warning)"],
        rows,
        classes=["nowrap", "nowrap", "nowrap", "", "", "num", "num"],
        empty=f"suite {suite} has no recorded run",
    )
    return h.page(f"Suite {suite}", h.section(f"Latest {limit} runs", body), base=base, active="validations",
                  lead="Newest first; each run links to its checks.")  # fmt: skip
