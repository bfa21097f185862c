"""The description of a registered model version: what a person reads on its MLflow page at a glance.

:func:`describe_version` turns the version's lineage manifest, its metrics, the gate's decision (the
``gate.*`` tags) and the model's current aliases into a short Markdown text: what it predicts, where
it stands (champion since when and replacing which version, the rollback target, challenger),
why the gate let it through or not, the Delta versions and label dates it was trained on, and its
metrics against the ground-truth ceiling and the quality floor. :func:`refresh` writes it as the
version's ``description``; :mod:`pitlake.registry.promote` calls it after every alias move, for
every version that held or now holds an alias, so the status lines stay true. The tags remain the
record other code reads; the description is only their reading.

Versions whose run has no lineage manifest are not pitlake's: their description is left alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from pitlake.core.errors import PitlakeError
from pitlake.lineage import manifest as lineage

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pitlake.training_set.build import UseCase

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
HISTORY_TAG = "promotion.history"
MAX_CHARS = 5000  # the registry's column for a version's description (VARCHAR(5000) on SQL stores)
MAX_REASON_CHARS = 300
FOOTER = (
    "_Written by pitlake from the lineage manifest and the `gate.*` and `promotion.*` tags; "
    "rewritten on every alias move._"
)
# The gate's metric checks fail with these MLflow messages (mlflow.validate_evaluation_results): said in words.
FLOOR_FAILED = "Metric roc_auc value threshold check failed"
MARGIN_FAILED = "Metric roc_auc minimum absolute change check failed"
PR_AUC_FAILED = "Metric pr_auc value threshold check failed"


def load_manifest(client: MlflowClient, run_id: str) -> lineage.LineageManifest | None:
    """The lineage manifest of run ``run_id``; None when the run has none (a model not trained by pitlake)."""
    import mlflow.artifacts

    listed = {a.path for a in client.list_artifacts(run_id, "lineage")}
    if lineage.MANIFEST_ARTIFACT not in listed:
        return None
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{lineage.MANIFEST_ARTIFACT}")
    return lineage.read_manifest(text)


def last_move(tags: Mapping[str, str], alias: str) -> dict[str, Any] | None:
    """The latest entry of a version's ``promotion.history`` that moved ``alias`` onto it."""
    raw = tags.get(HISTORY_TAG)
    moves = [h for h in (json.loads(raw) if raw else []) if h.get("alias") == alias]
    return moves[-1] if moves else None


def refresh(client: MlflowClient, name: str, versions: Iterable[int | None], current: Mapping[str, int]) -> None:
    """Rewrite the description of each of ``versions`` of ``name`` for the aliases ``current``.

    Called after the aliases moved: a description that cannot be written is a warning, never a
    failed move (the tags hold the record).
    """
    from mlflow.exceptions import MlflowException

    failures = (MlflowException, OSError, ValueError, PitlakeError)
    champion_move = None
    if CHAMPION in current:
        try:
            champion_move = last_move(client.get_model_version(name, str(current[CHAMPION])).tags or {}, CHAMPION)
        except failures as err:
            log.warning("%s: promotion history of champion v%s unreadable (%s)", name, current[CHAMPION], _first(err))
    for version in sorted({v for v in versions if v is not None}):
        try:
            _rewrite(client, name, version, current, champion_move)
        except failures as err:
            log.warning("%s v%d: description not rewritten (%s); the tags hold the record", name, version, _first(err))


def _first(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _rewrite(
    client: MlflowClient, name: str, version: int, current: Mapping[str, int], champion_move: Mapping[str, Any] | None
) -> None:
    from pitlake.core.errors import ConfigError
    from pitlake.training_set.build import get_use_case

    mv = client.get_model_version(name, str(version))
    manifest = load_manifest(client, mv.run_id) if mv.run_id else None
    if manifest is None:
        return
    try:
        use_case: UseCase | None = get_use_case(manifest.training_set.use_case)
    except ConfigError:
        use_case = None  # a use case this pitlake no longer defines: the description says so
    tags = mv.tags or {}
    text = describe_version(
        name,
        version,
        manifest=manifest,
        metrics=manifest.metrics,
        gate={k: v for k, v in tags.items() if k.startswith("gate.")},
        aliases=current,
        champion_move=champion_move,
        use_case=use_case,
    )
    if text != (mv.description or ""):
        client.update_model_version(name, str(version), description=text)


def describe_version(
    name: str,
    version: int,
    *,
    manifest: lineage.LineageManifest,
    metrics: Mapping[str, float],
    gate: Mapping[str, str],
    aliases: Mapping[str, int],
    champion_move: Mapping[str, Any] | None,
    use_case: UseCase | None,
) -> str:
    """The Markdown description of ``name`` v``version``.

    ``gate`` holds the version's ``gate.*`` tags (empty when it was never gated), ``aliases`` the
    model's aliases now, and ``champion_move`` the ``promotion.history`` entry that made the
    current champion champion (who, when, why, which version it replaced).
    """
    held = [a for a in (CHAMPION, CHALLENGER, PREVIOUS) if aliases.get(a) == version]
    held += sorted(a for a, v in aliases.items() if v == version and a not in held)
    lines = [
        f"### {name} v{version} · {' · '.join(held) if held else 'no alias'}",
        _purpose(manifest, use_case),
        "",
        f"- **Status:** {_status(version, aliases, champion_move)}",
        f"- **Gate:** {_gate(gate)}",
        f"- **Data:** {_data(manifest)}",
        f"- **Model:** {_model(manifest)}",
        "",
        *_table(version, metrics, gate),
        "",
        FOOTER,
    ]
    text = "\n".join(lines)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _purpose(manifest: lineage.LineageManifest, use_case: UseCase | None) -> str:
    if use_case is None:
        return f"Predicts the label of use case `{manifest.training_set.use_case}` (not defined in this pitlake)."
    keys = ", ".join(f"`{k}`" for k in use_case.keys)
    if use_case.task == "ranking":
        query = ", ".join(f"`{k}`" for k in use_case.query)
        return (
            f"Ranks candidates ({keys}) per query ({query}) by the chance of `{use_case.label_column}`: "
            f"*{use_case.description}* (use case `{use_case.name}`)."
        )
    return (
        f"Predicts `{use_case.label_column}` per {keys} at `{use_case.spine_time}`: *{use_case.description}* "
        f"(use case `{use_case.name}`)."
    )


def _status(version: int, aliases: Mapping[str, int], move: Mapping[str, Any] | None) -> str:
    held = [a for a, v in aliases.items() if v == version]
    primary = next((a for a in (CHAMPION, PREVIOUS, CHALLENGER) if a in held), None)
    champion = aliases.get(CHAMPION)
    by = ""
    if move is not None:
        by = "the promotion gate" if move.get("actor") == "gate" else f"{move.get('actor')}: {move.get('reason')}"
        by += " (forced past the gate)" if move.get("forced") else ""
    if primary == CHAMPION:
        if move is None:
            text = "`champion` (no promotion record)"
        else:
            text = f"`champion` since {_when(move.get('at'))}, by {by}"
            replaced = move.get("replaced_version")
            if replaced is None:
                text += "; the first champion"
            else:
                text += f"; previously v{replaced}" + (", now `previous`" if aliases.get(PREVIOUS) == replaced else "")
    elif primary == PREVIOUS:
        text = "`previous`, the rollback target"
        if move is not None and move.get("replaced_version") == version:
            text += f": champion until {_when(move.get('at'))}, when v{champion} replaced it (by {by})"
    elif primary == CHALLENGER:
        text = "`challenger`, " + (f"not champion (v{champion} is)" if champion is not None else "there is no champion")
    else:
        text = "no alias: not served"
    others = sorted(a for a in held if a != primary)
    return text + ("; also " + ", ".join(f"`{a}`" for a in others) if others else "") + "."


RANKING_LABELS = {"ndcg_at_10": "NDCG@10"}
RANKING_ROWS = (("NDCG@10", "ndcg_at_10"), ("Precision@10", "precision_at_10"), ("Recall@10", "recall_at_10"),
                ("coverage@10", "coverage_at_10"))  # fmt: skip


def _gate(gate: Mapping[str, str]) -> str:
    if not gate.get("gate.outcome"):
        return "never gated (registered outside `train`)."
    if gate.get("gate.metric"):
        return _ranking_gate(gate, gate["gate.metric"])
    roc, pr, floor = _fmt(gate, "gate.roc_auc"), _fmt(gate, "gate.pr_auc"), _fmt(gate, "gate.quality_floor")
    champ = gate.get("gate.champion_version", "none")
    c_roc, c_pr = _fmt(gate, "gate.champion_roc_auc"), _fmt(gate, "gate.champion_pr_auc")
    margin, tolerance = _number(gate.get("gate.margin")), _number(gate.get("gate.pr_auc_tolerance"))
    when = _when(gate.get("gate.decided_at"))
    if gate["gate.outcome"] == "passed":
        checks = [f"ROC AUC {roc} ≥ floor {floor}"]
        if c_roc != "–":
            checks += [
                f"beats v{champ}'s {c_roc} on the same rows by ≥ {_g(margin)}",
                f"PR AUC {pr} ≥ v{champ}'s {c_pr} − {_g(tolerance)}",
            ]
        checks.append("no leakage suspected")
        replacing = f", replacing v{champ}" if champ != "none" else ""
        return f"passed on {when} → promoted to champion{replacing}: {'; '.join(checks)}."
    reasons = [r for r in gate.get("gate.reasons", "").split(" | ") if r]
    words = {
        FLOOR_FAILED: f"ROC AUC {roc} is below the floor {floor}",
        MARGIN_FAILED: f"ROC AUC {roc} does not beat v{champ}'s {c_roc} on the same rows by {_g(margin)}",
        PR_AUC_FAILED: f"PR AUC {pr} is below v{champ}'s {c_pr} − {_g(tolerance)}",
    }
    # One reason per metric; a metric's line holds each of its failed checks (MLflow joins them with a space).
    why = [w for r in reasons for w in ([w for phrase, w in words.items() if phrase in r] or [_clip(r)])]
    kept = f"v{champ} stayed champion" if champ != "none" else "there was no champion"
    return f"failed on {when} → kept as challenger ({kept}), because {'; '.join(why) or 'of a failed check'}."


def _ranking_gate(gate: Mapping[str, str], metric: str) -> str:
    """A ranking model's gate (pitlake.registry.ranking_gate): its metric against the baseline and the champion."""
    label = RANKING_LABELS.get(metric, metric)
    value, floor = _fmt(gate, f"gate.{metric}"), _fmt(gate, "gate.quality_floor")
    champ, rescored = gate.get("gate.champion_version", "none"), _fmt(gate, f"gate.champion_{metric}")
    when = _when(gate.get("gate.decided_at"))
    if gate["gate.outcome"] == "passed":
        checks = [f"{label} {value} ≥ floor {floor} ({gate.get('gate.floor_source', 'floor')})"]
        if rescored != "–":
            checks.append(
                f"beats v{champ}'s {rescored} on the same queries by ≥ {_g(_number(gate.get('gate.margin')))}"
            )
        checks.append("no leakage suspected")
        replacing = f", replacing v{champ}" if champ != "none" else ""
        return f"passed on {when} → promoted to champion{replacing}: {'; '.join(checks)}."
    why = [_clip(r) for r in gate.get("gate.reasons", "").split(" | ") if r]
    kept = f"v{champ} stayed champion" if champ != "none" else "there was no champion"
    return f"failed on {when} → kept as challenger ({kept}), because {'; '.join(why) or 'of a failed check'}."


def _data(manifest: lineage.LineageManifest) -> str:
    ts = manifest.training_set
    positives = f", {ts.positives:,} positive" if ts.positives is not None else ""
    as_of = ", as of write" if ts.as_of_write else ""
    text = (
        f"`{ts.table}` Delta v{ts.delta_version} (training set `{ts.training_set_id}`: {ts.row_count:,} rows"
        f"{positives}, label dates {ts.label_start}..{ts.label_end}{as_of})"
    )
    if manifest.inputs:
        text += "; inputs " + ", ".join(f"{i.table} v{i.delta_version}" for i in manifest.inputs)
    upstream: dict[str, set[int]] = {}
    for up in manifest.upstream:
        upstream.setdefault(up.table, set()).update(up.versions)
    if upstream:
        text += "; from " + ", ".join(f"{table} {_versions(vs)}" for table, vs in sorted(upstream.items()) if vs)
    return text + "."


def _model(manifest: lineage.LineageManifest) -> str:
    t, code = manifest.training, manifest.code
    commit = f"; commit `{code.git_commit[:8]}`" if code.git_commit else ""
    commit += " with uncommitted changes" if code.git_commit and code.git_dirty else ""
    best = f" (best of {len(t.candidates)} by evaluation ROC AUC)" if len(t.candidates) > 1 else ""
    if t.threshold_method.startswith("ranking"):  # a ranker (pitlake.training.recommend), beside its baseline
        best = f" (a ranker against the `{t.candidates[0]}` baseline; {t.threshold_method})"
    e = manifest.experiment
    if e is not None:  # chosen by an experiment: by its folds' mean score, never by the evaluation rows
        best = (
            f" (experiment `{e.name}`: best of {_count(e.trials, 'trial')} by mean {e.metric} over {e.cv_folds} "
            f"time-series folds, {e.cv_mean:.4f} ± {e.cv_spread:.4f}; `{e.estimator}`)"
        )
    features = _count(len(t.feature_columns), "feature")
    return (
        f"`{t.selected}`{best} on {features}; "
        f"trained on {t.train_rows:,} rows, evaluated on {t.eval_rows:,} rows from {_day(t.eval_start)}{commit}."
    )


def _table(version: int, metrics: Mapping[str, float], gate: Mapping[str, str]) -> list[str]:
    """Metric | this version | the champion it was gated against (re-scored on the same rows) | ceiling | floor."""
    if gate.get("gate.metric") or "ndcg_at_10" in metrics:
        return _ranking_table(version, metrics, gate)
    rescored = _number(gate.get("gate.champion_roc_auc")) is not None
    floor = metrics.get("quality_floor", _number(gate.get("gate.quality_floor")))
    source = gate.get("gate.floor_source", "ground_truth")
    champion = [f"v{gate.get('gate.champion_version')} (champion at the gate, same rows)"] if rescored else []
    header = ["metric", f"v{version}", *champion, "ground-truth ceiling", "floor"]
    floor_cell = _cell(floor) + (f" ({source})" if source != "ground_truth" else "")
    ceiling = _cell(metrics.get("ceiling_auc"))
    rows = [
        ["ROC AUC", _cell(metrics.get("roc_auc")), _fmt(gate, "gate.champion_roc_auc"), ceiling, floor_cell],
        ["PR AUC", _cell(metrics.get("pr_auc")), _fmt(gate, "gate.champion_pr_auc"), "–", "–"],
    ]
    if "log_loss" in metrics:
        rows.append(["log loss", _cell(metrics["log_loss"]), "–", "–", "–"])
    if not rescored:
        rows = [[row[0], row[1], *row[3:]] for row in rows]
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(row) + " |" for row in (header, align, *rows)]


def _ranking_table(version: int, metrics: Mapping[str, float], gate: Mapping[str, str]) -> list[str]:
    """Metric | this version | the champion (re-scored, the gate's metric) | popularity baseline | ceiling."""
    metric = gate.get("gate.metric", "ndcg_at_10")
    rescored = _number(gate.get(f"gate.champion_{metric}")) is not None
    champion = [f"v{gate.get('gate.champion_version')} (champion at the gate, same queries)"] if rescored else []
    header = ["metric", f"v{version}", *champion, "popularity baseline", "ground-truth ceiling"]
    rows = []
    for label, key in RANKING_ROWS:
        c = [_fmt(gate, f"gate.champion_{key}") if key == metric else "–"] if rescored else []
        rows.append([label, _cell(metrics.get(key)), *c, _cell(metrics.get(f"baseline_{key}")),
                     _cell(metrics.get(f"ceiling_{key}"))])  # fmt: skip
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(row) + " |" for row in (header, align, *rows)]


def _number(value: str | None) -> float | None:
    if value is None or value in ("", "none"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _fmt(gate: Mapping[str, str], key: str) -> str:
    return _cell(_number(gate.get(key)))


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _versions(versions: Iterable[int]) -> str:
    vs = sorted(versions)
    return ", ".join(f"v{v}" for v in vs) if len(vs) <= 4 else f"v{vs[0]}..v{vs[-1]} ({len(vs)} versions)"


def _when(value: Any) -> str:
    """An ISO instant as ``2026-03-01 12:00 UTC`` (naive ones are UTC, as pitlake writes them); else as is."""
    at = _instant(value)
    return str(value) if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def _day(value: Any) -> str:
    """An ISO instant as a date when it is midnight, else as :func:`_when`."""
    at = _instant(value)
    return at.date().isoformat() if at is not None and at == datetime.combine(at.date(), time()) else _when(value)


def _instant(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
