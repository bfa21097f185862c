"""The page of one Airflow run (the dag_run tab): what its tasks committed (tables and Delta versions), what
they read, their validation results (failures spelled out), and the model versions it registered."""

from __future__ import annotations

from pitlake.catalog import html as h
from pitlake.catalog.model_pages import alias_badges, gate_cell, lineage_href, quality_cell
from pitlake.catalog.models import RegistryUnavailable, VersionEntry, versions_of_run
from pitlake.catalog.runs import TaskRecord, task_records
from pitlake.catalog.validation_pages import checks_table, result_cell
from pitlake.catalog.validations import ValidationRun, runs_of
from pitlake.core.settings import Settings


def _task_rows(records: list[TaskRecord], base: str) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in records:
        committed = h.join(
            [h.join([h.code(c.table), f" v{c.version}", h.muted(f" ({c.what})") if c.what else ""]) for c in r.commits],
            h.Html("<br>"),
        )
        if r.error:
            committed = h.join([h.badge("failed", "failed"), " ", r.error])
        reads = h.join(
            [h.join([h.code(x.table), f" v{x.version}" if x.version is not None else ""]) for x in r.reads],
            h.Html("<br>"),
        )
        gates = h.join(
            [h.join([h.outcome_badge(g.success), " ",
                     h.link(f"{base}/validations/{g.result_id}", g.suite or g.result_id)]) for g in r.gates],
            h.Html("<br>"),
        )  # fmt: skip
        tries = f"{r.try_number}" + (f" ({r.tries} records)" if r.tries > 1 else "")
        rows.append([
            h.code(r.task_id), tries, committed or h.muted("nothing"), reads or h.muted("–"),
            h.join(r.details, h.Html("<br>")) or h.muted("–"), gates or h.muted("–"),
            "–" if r.seconds is None else f"{r.seconds:.1f} s",
            {"class": "fail" if r.error else ""},
        ])  # fmt: skip
    return rows


def _model_rows(versions: list[VersionEntry], base: str) -> list[list[object]]:
    return [
        [h.link(lineage_href(base, v.model, v.version), f"{v.model} v{v.version}"), alias_badges(v.aliases),
         quality_cell(v), gate_cell(v)]
        for v in versions
    ]  # fmt: skip


def render_run(settings: Settings, dag_id: str, run_id: str, *, base: str, airflow_base: str | None) -> str:
    records = task_records(settings, dag_id, run_id)
    record_ids = {g.result_id for r in records for g in r.gates}
    committed = {c.table for r in records for c in r.commits}
    # A run id is unique per DAG only: keep the validations this run's tasks recorded, or of tables they wrote.
    validations: list[ValidationRun] = [
        v for v in runs_of(settings, run_id) if not records or v.result_id in record_ids or v.table in committed
    ]
    try:
        models = versions_of_run(settings, dag_id, run_id)
        models_problem = None
    except RegistryUnavailable as err:
        models, models_problem = [], str(err)
    airflow_link = h.airflow_run_link(airflow_base, dag_id, run_id, "open the run in Airflow")
    cards = [
        h.section(
            "Committed by this run",
            h.table(
                ["Task", "Try", "Committed (table, Delta version)", "Read", "Details", "Validation", "Job time"],
                _task_rows(records, base),
                classes=["nowrap", "num", "", "", "", "", "num"],
                empty="no task of this run left a result record (only Spark tasks do; a run still starting has none)",
            ),
            aside=airflow_link,
        )
    ]
    if models or models_problem:
        body = h.notice(models_problem, "warning") if models_problem else h.table(
            ["Model version", "Aliases", "Evaluation", "Gate"], _model_rows(models, base)
        )  # fmt: skip
        cards.append(h.section("Models registered by this run", body))
    summary = h.table(
        ["Suite", "Table", "Slice", "Validated at", "Result", "Checks", "Failed (critical / warning)"],
        [
            [h.link(f"{base}/validations/{v.result_id}", v.suite), h.join([h.code(v.table), f" v{v.delta_version}"]),
             v.slice, h.when(v.validated_at), result_cell(v), len(v.checks),
             f"{len(v.critical_failures)} / {len(v.warnings)}"]
            for v in validations
        ],
        classes=["", "nowrap", "nowrap", "nowrap", "", "num", "num"],
        empty="no validation result carries this run id",
    )  # fmt: skip
    cards.append(h.section("Validation results", summary))
    for v in validations:
        failures = [c for c in v.checks if not c.success]
        if failures:
            cards.append(h.section(f"Failed checks of {v.suite}", checks_table(failures)))
    return h.page(
        f"{dag_id} / {run_id}",
        h.join(cards),
        base=base,
        lead="What this Airflow run committed to the lake (from its tasks' result records under "
        "$PITLAKE_HOME/runs/airflow) and how its validation gates judged it.",
    )
