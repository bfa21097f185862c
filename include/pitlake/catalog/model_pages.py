"""The models pages: every registered model's versions (aliases, metrics against the ceiling, the gate's
verdict, the Delta versions trained on, links to MLflow), and one version's whole lineage."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from pitlake.catalog import html as h
from pitlake.catalog.models import (
    CHAMPION,
    ModelEntry,
    VersionEntry,
    metric,
    mlflow_run_url,
    mlflow_version_url,
    trained_on,
)
from pitlake.catalog.runs import run_href
from pitlake.lineage.manifest import LineageManifest

ALIAS_KIND = {"champion": "brand", "challenger": "warning", "previous": "neutral"}


def alias_badges(names: tuple[str, ...] | list[str]) -> h.Html:
    return h.join([h.badge(a, ALIAS_KIND.get(a, "neutral")) for a in names], " ")


def lineage_href(base: str, model: str, version: int | str) -> str:
    return f"{base}/models/{quote(model, safe='')}/versions/{version}/lineage"


def gate_cell(v: VersionEntry) -> h.Html:
    outcome = v.gate.get("outcome")
    if outcome is None:
        return h.muted("not gated")
    label = h.badge("passed", "success") if outcome == "passed" else h.badge("failed", "failed")
    reasons = v.gate.get("reasons", "")
    return h.join([label, " ", h.muted(reasons)]) if reasons else label


def quality_cell(v: VersionEntry) -> h.Html:
    roc, ceiling, floor = metric(v, "roc_auc"), metric(v, "ceiling_auc"), metric(v, "quality_floor")
    if roc is None:
        return h.muted("no metrics")
    parts = [f"ROC AUC {h.number(roc)}"]
    if ceiling is not None:
        share = v.ceiling_share
        parts.append(f"ceiling {h.number(ceiling)}" + (f" ({share:.0%} of its lift)" if share is not None else ""))
    if floor is not None:
        parts.append(f"floor {h.number(floor)}")
    pr = metric(v, "pr_auc")
    if pr is not None:
        parts.append(f"PR AUC {h.number(pr)}")
    return h.join(parts, " · ")


def trained_on_cell(v: VersionEntry) -> h.Html:
    m = v.manifest
    if m is None:
        return h.muted(v.manifest_problem or "no lineage manifest")
    tables = h.join([h.join([h.code(t), f" v{n}"]) for t, n, _ in trained_on(m)], h.Html("<br>"))
    ts = m.training_set
    return h.join(
        [tables, h.Html("<br>"), h.muted(f"labels {ts.label_start} .. {ts.label_end}, {ts.row_count:,} rows")]
    )


def links_cell(v: VersionEntry, base: str, *, lineage: bool = True, short: bool = False) -> h.Html:
    """Links to the version's lineage page, its MLflow run and (unless ``short``) its MLflow version page."""
    parts = [h.link(lineage_href(base, v.model, v.version), "lineage")] if lineage else []
    if v.run_id:
        url = mlflow_run_url(v.experiment_id, v.run_id)
        parts.append(h.link(url, "MLflow run", external=True, title=h.MLFLOW_HINT))
    if not short:
        url = mlflow_version_url(v.model, v.version)
        parts.append(h.link(url, "MLflow version", external=True, title=h.MLFLOW_HINT))
    return h.join(parts, " · ")


def render_models(models: list[ModelEntry] | None, *, base: str, problem: str | None = None) -> str:
    lead = (
        "Registered MLflow models: aliases (the gate moves champion and challenger; previous is the rollback "
        "target), each version's evaluation against the ground-truth ceiling and the quality floor, and the Delta "
        "versions it was trained on (its lineage manifest)."
    )
    if problem:
        return h.page("Models", h.notice(problem, "failed"), base=base, active="models", lead=lead)
    if not models:
        return h.page("Models", h.notice("no model is registered yet: train_model registers one"), base=base,
                      active="models", lead=lead)  # fmt: skip
    cards = []
    for m in models:
        by_rank = sorted(m.aliases.items(), key=lambda kv: kv[0] != CHAMPION)
        current = h.join([h.join([h.badge(a, ALIAS_KIND.get(a, "neutral")), f" v{n}"]) for a, n in by_rank], "  ")
        rows = [
            [h.join([h.link(lineage_href(base, v.model, v.version), f"v{v.version}"), h.Html("<br>"),
                     links_cell(v, base, lineage=False, short=True)]), alias_badges(v.aliases),
             h.join([h.when(v.created_at), h.Html("<br>"), h.muted(v.manifest.model.estimator if v.manifest else "")]),
             h.number(metric(v, "roc_auc")), h.number(metric(v, "ceiling_auc")),
             "–" if v.ceiling_share is None else f"{v.ceiling_share:.0%}", h.number(metric(v, "quality_floor")),
             h.number(metric(v, "pr_auc")), gate_cell(v), trained_on_cell(v)]
            for v in m.versions
        ]  # fmt: skip
        table = h.table(
            ["Version", "Aliases", "Registered (estimator)", "ROC AUC", "Ceiling", "Of its lift", "Floor", "PR AUC",
             "Gate", "Trained on"],
            rows,
            classes=["nowrap", "nowrap", "", "num", "num", "num", "num", "num", "wide", ""],
        )  # fmt: skip
        more = (
            f"; the newest {len(m.versions)} of {m.version_count} versions" if m.version_count > len(m.versions) else ""
        )
        head = h.join([h.Html(f"<p>{h.esc(m.description)}</p>") if m.description else "",
                       h.Html(f"<p>{current or h.muted('no aliases')}{h.esc(more)} · "),
                       h.link(lineage_href(base, m.name, CHAMPION), "champion's lineage"), h.Html("</p>")])  # fmt: skip
        cards.append(h.section(m.name, h.join([head, table]), anchor=m.name))
    return h.page("Models", h.join(cards), base=base, active="models", lead=lead)


def render_lineage(v: VersionEntry, *, base: str, airflow_base: str | None) -> str:
    title = f"{v.model} v{v.version}"
    summary = h.fields(
        [
            ("Aliases", alias_badges(v.aliases) or h.muted("none")),
            ("Registered", h.when(v.created_at)),
            ("Evaluation", quality_cell(v)),
            ("Gate", gate_cell(v)),
            ("MLflow", links_cell(v, base, lineage=False)),
        ]
    )
    cards = [h.section(title, summary)]
    m = v.manifest
    if m is None:
        cards.append(h.notice(v.manifest_problem or "this version has no lineage manifest", "warning"))
        return h.page(f"Lineage of {title}", h.join(cards), base=base, active="models")
    ts = m.training_set
    cards.append(h.section("Training set", h.fields([
        ("Id", h.code(ts.training_set_id)),
        ("Table", h.join([h.code(ts.table), f" at Delta version {ts.delta_version}"])),
        ("Labels", f"{ts.label_start} .. {ts.label_end} (label dates, inclusive)"),
        ("Rows", f"{ts.row_count:,}" + (f", {ts.positives:,} positive" if ts.positives is not None else "")),
        ("Feature rows", "as written by each label_time (no backfill leaks)" if ts.as_of_write
         else "latest as of each label_time"),
        ("Content hash", h.code(ts.content_hash)),
        ("Features", h.join([h.code(c) for c in ts.feature_columns], ", ")),
    ])))  # fmt: skip
    cards.append(h.section("Inputs (as read by the training set build)", h.table(
        ["Role", "Table", "Delta version", "Committed at"],
        [[str(i.role), h.code(i.table), f"v{i.delta_version}", h.when(i.committed_at)] for i in m.inputs],
        classes=["", "", "num", "nowrap"], empty="none recorded",
    )))  # fmt: skip
    cards.append(h.section("Feature views", h.table(
        ["View", "Table", "Delta version", "TTL", "Source", "Features"],
        [[h.link(f"{base}/catalog#{f.name}-v{f.version}", f"{f.name} v{f.version}"), h.code(f.table),
          f"v{f.delta_version}",
          h.duration(None if f.ttl_seconds is None else timedelta(seconds=f.ttl_seconds)), h.code(f.source),
          len(f.features)] for f in m.feature_views],
        classes=["nowrap", "", "num", "nowrap", "", "num"], empty="none recorded",
    )))  # fmt: skip
    cards.append(h.section("Upstream (source tables behind the inputs)", h.table(
        ["Table", "Delta versions", "Behind", "Found from", "Unresolved partitions"],
        [[h.code(u.table), ", ".join(f"v{n}" for n in u.versions) or "–", u.via or h.muted("given by the run"),
          str(u.derived_from), u.unresolved_partitions] for u in m.upstream],
        classes=["", "", "", "", "num"], empty="none recorded",
    )))  # fmt: skip
    cards.append(h.section("Validations that gated the inputs", h.table(
        ["Result", "Suite", "Table", "Outcome"],
        [[h.link(f"{base}/validations/{r.result_id}", r.result_id), r.suite or "–",
          f"{r.table or '–'} v{r.delta_version}" if r.delta_version is not None else (r.table or "–"),
          h.outcome_badge(r.success)] for r in m.validations],
        empty="none passed to training",
    )))  # fmt: skip
    cards.append(h.section("Run", h.fields(_run_fields(v, m, base, airflow_base))))
    q = m.quality
    cards.append(h.section("Quality bar", h.fields([
        ("Ceiling (ROC AUC of the true rate)", h.number(q.ceiling_auc) if q.ceiling_auc is not None else
         f"not computed: {q.ceiling_skipped or 'no ground truth'}"),
        ("Quality floor", f"{h.number(q.quality_floor)} ({q.floor_source})"),
        ("Leakage tolerance", h.number(q.leakage_tolerance)),
        ("Suspected leakage", "yes: " + "; ".join(q.leakage_reasons) if q.suspected_leakage else "no"),
    ])))  # fmt: skip
    cards.append(h.section("Metrics", h.table(
        ["Metric", "Value"], [[k, h.number(val)] for k, val in sorted(m.metrics.items())], classes=["", "num"],
    )))  # fmt: skip
    if m.notes:
        cards.append(h.section("Notes", h.join([h.Html(f"<p>{h.esc(n)}</p>") for n in m.notes])))
    return h.page(
        f"Lineage of {title}",
        h.join(cards),
        base=base,
        active="models",
        lead="Everything that made this version, from its lineage manifest: the training set and every input table at "
        "the Delta version read, the source versions behind them, the validations, the code and the Airflow run.",
    )


def _run_fields(v: VersionEntry, m: LineageManifest, base: str, airflow_base: str | None) -> list[tuple[str, object]]:
    a = m.airflow
    fields: list[tuple[str, object]] = [
        ("Created", h.when(m.created_at)),
        ("Estimator", m.model.estimator),
        ("MLflow run", h.link(mlflow_run_url(v.experiment_id, m.model.run_id), m.model.run_id, external=True,
                              title=h.MLFLOW_HINT)),
        ("Code", h.join([h.code(m.code.git_commit or "unknown"), h.muted(" (uncommitted changes)") if m.code.git_dirty
                         else ""])),
        ("Training", f"{m.training.selected} of {', '.join(m.training.candidates)}; {m.training.train_rows:,} train / "
                     f"{m.training.eval_rows:,} evaluation rows from {m.training.eval_start}, seed {m.training.seed}"),
    ]  # fmt: skip
    if getattr(m.model, "model_id", None):
        fields.append(("MLflow model id", h.code(getattr(m.model, "model_id", ""))))
    ol = getattr(m, "openlineage", None)  # the OpenLineage run of the training, when the manifest records it
    if ol is not None:
        fields.append(("OpenLineage run", h.join([h.code(f"{ol.namespace}/{ol.job}"), " ", h.code(ol.run_id),
                                                  h.muted(f", parent {ol.parent}") if ol.parent else ""])))  # fmt: skip
    if a is not None and a.dag_id and a.run_id:
        in_airflow = h.airflow_run_link(airflow_base, a.dag_id, a.run_id, "open in Airflow")
        fields.append(("Airflow run", h.join([
            h.link(run_href(base, a.dag_id, a.run_id), f"{a.dag_id} / {a.run_id}"), " · " if in_airflow else "",
            in_airflow,
        ])))  # fmt: skip
    else:
        fields.append(("Airflow run", h.muted("trained outside Airflow")))
    return fields
