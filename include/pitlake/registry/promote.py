"""The model registry: aliases ``challenger`` → gate → ``champion`` (the replaced one kept as ``previous``).

The gate, on the challenger's own pinned evaluation snapshot (the champion is re-scored on the
same rows, never compared by the metrics of its own, older evaluation window):

1. floors: no ``suspected_leakage``, and ROC AUC >= ``quality_floor``;
2. against the current champion (if any): ROC AUC >= champion + :data:`ROC_AUC_MARGIN`, and
   PR AUC >= champion - :data:`PR_AUC_TOLERANCE` (better ranking must not cost the positives);
3. pass → ``champion`` moves to the challenger, the old champion becomes ``previous`` and the
   ``challenger`` alias is removed; fail → the version stays ``challenger``, champion unchanged.

The metric checks run through ``mlflow.validate_evaluation_results``; the outcome is recorded as
``gate.*`` tags on the version. :func:`promote` moves an alias by hand (promotion or rollback)
and records who and why. After every alias move the versions involved get their description
rewritten (:mod:`pitlake.registry.describe`): what they predict, their status, the gate's why.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pitlake.core import tracking
from pitlake.core.dates import utc_now
from pitlake.core.errors import ConfigError, InputError, PitlakeError
from pitlake.core.settings import Settings
from pitlake.lineage import manifest as lineage
from pitlake.registry import describe
from pitlake.registry.decision import Decision, decision_tags, tag_number
from pitlake.registry.describe import CHALLENGER, CHAMPION, HISTORY_TAG, PREVIOUS, load_manifest

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

ROC_AUC_MARGIN = 0.002
PR_AUC_TOLERANCE = 0.01
HISTORY_LIMIT = 20
PENDING_TAG = "promotion.pending"


class RegistryRaceError(PitlakeError):
    """The aliases after a move are not what the move wrote: someone moved them without the lock."""


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    floor_passed: bool
    reasons: tuple[str, ...]
    model: str
    candidate_version: int
    candidate_roc_auc: float
    candidate_pr_auc: float
    champion_version: int | None
    champion_roc_auc: float | None  # re-scored on the candidate's evaluation rows
    champion_pr_auc: float | None
    quality_floor: float
    floor_source: str
    suspected_leakage: bool
    margin: float
    pr_auc_tolerance: float
    decided_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        return decision_tags(self) | {
            "gate.roc_auc": tag_number(self.candidate_roc_auc),
            "gate.pr_auc": tag_number(self.candidate_pr_auc),
            "gate.champion_roc_auc": tag_number(self.champion_roc_auc),
            "gate.champion_pr_auc": tag_number(self.champion_pr_auc),
            "gate.pr_auc_tolerance": tag_number(self.pr_auc_tolerance),
        }


def aliases(client: MlflowClient, name: str) -> dict[str, int]:
    """The registered model's aliases → version ({} when the model is not registered)."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return {}
    return {alias: int(v) for alias, v in (model.aliases or {}).items()}


def register(client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> int:
    """Register ``model_uri`` as a new version of ``name`` with alias ``challenger``; returns the version."""
    import mlflow

    replaced = aliases(client, name).get(CHALLENGER)
    version = int(mlflow.register_model(model_uri, name, tags={**tags, "run_id": run_id}).version)
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    describe.refresh(client, name, [replaced], aliases(client, name))  # the old challenger no longer is
    return version


def rescore(client: MlflowClient, name: str, version: int, x: pd.DataFrame, y: np.ndarray) -> tuple[float, float] | str:
    """(ROC AUC, PR AUC) of version ``version`` on rows ``x``, or why it cannot be scored on them."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores = version_scores(name, version, x)
    if isinstance(scores, str):
        return scores
    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def version_scores(name: str, version: int, x: pd.DataFrame) -> np.ndarray | str:
    """Version ``version``'s positive-class scores of rows ``x`` (the columns its signature names), or why
    it cannot score them."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    uri = f"models:/{name}/{version}"
    try:
        schema = get_model_info(uri).signature
        columns = schema.inputs.input_names() if schema is not None else list(x.columns)
        missing = [c for c in columns if c not in x.columns]
        if missing:
            return f"champion v{version} needs columns missing from this evaluation snapshot: {missing}"
        model = mlflow.sklearn.load_model(uri)
        scores = model.predict_proba(x[columns])[:, 1]
    except (MlflowException, OSError, ValueError, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return f"champion v{version} cannot be re-scored on this evaluation snapshot: {first}"
    return np.asarray(scores, dtype=float)


def gate(
    client: MlflowClient,
    name: str,
    version: int,
    x_eval: pd.DataFrame,
    y_eval: np.ndarray,
    metrics: dict[str, float],
    quality: lineage.QualityRecord,
) -> GateDecision:
    """Decide whether ``version`` replaces the champion (see the module docstring); changes nothing."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    roc, pr = float(metrics["roc_auc"]), float(metrics["pr_auc"])
    floor = float(quality.quality_floor)
    reasons: list[str] = [f"suspected leakage: {r}" for r in quality.leakage_reasons]
    if quality.suspected_leakage and not reasons:
        reasons.append("suspected leakage")
    floor_passed = roc >= floor and not quality.suspected_leakage
    champion = aliases(client, name).get(CHAMPION)
    if champion == version:
        champion = None
    champion_metrics: tuple[float, float] | None = None
    thresholds = {"roc_auc": MetricThreshold(threshold=floor, greater_is_better=True)}
    if champion is not None:
        rescored = rescore(client, name, champion, x_eval, y_eval)
        if isinstance(rescored, str):
            reasons.append(rescored + "; promote by hand if intended")
        else:
            champion_metrics = rescored
            thresholds = {
                "roc_auc": MetricThreshold(threshold=floor, min_absolute_change=ROC_AUC_MARGIN, greater_is_better=True),
                "pr_auc": MetricThreshold(threshold=rescored[1] - PR_AUC_TOLERANCE, greater_is_better=True),
            }
    candidate = EvaluationResult(metrics={"roc_auc": roc, "pr_auc": pr}, artifacts={})
    baseline = (
        EvaluationResult(metrics={"roc_auc": champion_metrics[0], "pr_auc": champion_metrics[1]}, artifacts={})
        if champion_metrics is not None
        else None
    )
    try:
        mlflow.validate_evaluation_results(thresholds, candidate, baseline)
    except ModelValidationFailedException as err:
        reasons += [line.strip() for line in str(err.message).splitlines() if line.strip()]
    return GateDecision(
        passed=not reasons,
        floor_passed=floor_passed,
        reasons=tuple(reasons),
        model=name,
        candidate_version=version,
        candidate_roc_auc=roc,
        candidate_pr_auc=pr,
        champion_version=champion,
        champion_roc_auc=champion_metrics[0] if champion_metrics else None,
        champion_pr_auc=champion_metrics[1] if champion_metrics else None,
        quality_floor=floor,
        floor_source=quality.floor_source,
        suspected_leakage=quality.suspected_leakage,
        margin=ROC_AUC_MARGIN,
        pr_auc_tolerance=PR_AUC_TOLERANCE,
        decided_at=utc_now().isoformat(),
    )


def apply_gate(client: MlflowClient, name: str, decision: Decision) -> dict[str, int]:
    """Record the decision as version tags and move the aliases; returns the aliases after.

    Call it under :func:`pitlake.registry.lock.registry_lock` together with :func:`gate`, so the
    champion the decision was made against is still the champion when the alias moves.
    """
    version = str(decision.candidate_version)
    before = aliases(client, name)
    for key, value in decision.tags().items():
        client.set_model_version_tag(name, version, key, value)
    if decision.passed:
        pending = _pending(client, name, decision.candidate_version, CHAMPION)
        old = pending["replaced_version"] if pending else aliases(client, name).get(CHAMPION)
        if old == decision.candidate_version:
            old = None
        _move_alias(client, name, decision.candidate_version, CHAMPION, "gate", "passed the promotion gate",
                    False, old, pending)  # fmt: skip
        client.delete_registered_model_alias(name, CHALLENGER)
    after = aliases(client, name)
    describe.refresh(client, name, [decision.candidate_version, *before.values(), *after.values()], after)
    return after


def _version(client: MlflowClient, name: str, version: int) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(name_filter(name)))
        raise ConfigError(f"model {name!r} has no version {version}; versions: {known or 'none'}") from None


def name_filter(name: str) -> str:
    """``name='<name>'`` for the registry's search, for any name the registry holds (quotes included)."""
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    raise InputError(f"registered model name {name!r} holds both quote kinds: it cannot be searched by name")


def _pending(client: MlflowClient, name: str, version: int, alias: str) -> dict[str, Any] | None:
    """The move of ``alias`` to ``version`` an earlier attempt started and did not finish, if any."""
    raw = (client.get_model_version(name, str(version)).tags or {}).get(PENDING_TAG)
    entry = json.loads(raw) if raw else None
    return entry if entry and entry.get("alias") == alias else None


def _move_alias(
    client: MlflowClient,
    name: str,
    version: int,
    alias: str,
    actor: str,
    reason: str,
    forced: bool,
    replaced: int | None,
    pending: dict[str, Any] | None,
) -> dict[str, Any]:
    """Point ``alias`` at ``version`` (the replaced champion becomes ``previous``), append the history and
    the ``promotion.*`` tags; every step idempotent, so a retry after a failure part-way completes it.

    The move is written as the ``promotion.pending`` tag first and cleared last: an attempt that dies
    in between leaves the tag, and the next one redoes the move with the same replaced version
    (the alias already pointing at ``version`` no longer tells which one it replaced).
    """
    entry = pending or {
        "alias": alias,
        "actor": actor,
        "reason": reason,
        "forced": forced,
        "replaced_version": replaced,
        "at": utc_now().isoformat(),
    }
    v = str(version)
    client.set_model_version_tag(name, v, PENDING_TAG, json.dumps(entry, sort_keys=True))
    replaced = entry["replaced_version"]
    if alias == CHAMPION and replaced is not None:
        client.set_registered_model_alias(name, PREVIOUS, str(replaced))
        client.set_model_version_tag(
            name, str(replaced), "demoted", f"to {PREVIOUS} by {entry['actor']} for v{v}: {entry['reason']}"
        )
    client.set_registered_model_alias(name, alias, v)
    current = client.get_model_version(name, v).tags.get(HISTORY_TAG)
    history = json.loads(current) if current else []
    if not any(h.get("at") == entry["at"] and h.get("alias") == alias for h in history):
        history = [*history, entry][-HISTORY_LIMIT:]
        client.set_model_version_tag(name, v, HISTORY_TAG, json.dumps(history, sort_keys=True))
    last = {
        "promotion.alias": alias,
        "promotion.actor": entry["actor"],
        "promotion.reason": entry["reason"],
        "promotion.forced": str(entry["forced"]).lower(),
        "promotion.at": entry["at"],
        "promotion.replaced_version": str(replaced) if replaced is not None else "none",
    }
    for key, value in last.items():
        client.set_model_version_tag(name, v, key, value)
    client.delete_model_version_tag(name, v, PENDING_TAG)
    # Checked after the write: a writer that bypassed the lock shows up here, not as a silent overwrite.
    after = aliases(client, name)
    if after.get(alias) != version or (alias == CHAMPION and replaced is not None and after.get(PREVIOUS) != replaced):
        raise RegistryRaceError(
            f"{name}: after moving {alias} to v{v} the aliases are {after}: another writer moved them at the "
            "same time without the registry lock; check the model's promotion.history and promote by hand"
        )
    return entry


def promote(
    settings: Settings,
    model: str,
    version: int,
    alias: str,
    force: bool = False,
    reason: str = "",
    actor: str = "",
) -> dict[str, Any]:
    """Point ``alias`` of ``model`` at ``version`` by hand (promotion or rollback), recording who and why.

    Moving ``champion`` keeps the replaced version as ``previous``, so a rollback is
    ``promote(..., <previous version>, "champion", reason=..., actor=...)``. Without ``force``, a
    version the gate flagged (suspected leakage, below the quality floor, or never gated) cannot
    become champion. The move runs under the model's registry lock (two promotions started together
    queue, and ``previous`` is the champion just before each), and a retry after a failure part-way
    completes the tags and history of the interrupted move.
    """
    from pitlake.core.names import check_name
    from pitlake.registry.lock import registry_lock

    if not actor.strip() or not reason.strip():
        raise ConfigError("promote needs an actor and a reason: the registry records who moved an alias and why")
    if not alias or not alias.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"alias {alias!r} must be a word such as champion, challenger or previous")
    check_name(model, "model name")
    client = tracking.connect(settings)
    with registry_lock(settings, model):
        mv = _version(client, model, version)
        tags = mv.tags or {}
        if alias == CHAMPION and not force:
            if tags.get("gate.suspected_leakage") == "true":
                raise ConfigError(
                    f"{model} v{version} is flagged suspected_leakage ({tags.get('gate.reasons', '')[:200]}): "
                    "it cannot become champion unless forced (--force) with a reason"
                )
            if tags.get("gate.floor_passed") != "true":
                raise ConfigError(
                    f"{model} v{version} did not pass the quality floor (gate.floor_passed="
                    f"{tags.get('gate.floor_passed', 'missing')}): it cannot become champion unless forced (--force)"
                )
        current = aliases(client, model)
        pending = _pending(client, model, version, alias)
        replaced = pending["replaced_version"] if pending else current.get(alias)
        if pending is None and replaced == version:
            return {"model": model, "version": version, "alias": alias, "changed": False, "aliases": current}
        entry = _move_alias(client, model, version, alias, actor.strip(), reason.strip(), force, replaced, pending)
        if alias == CHAMPION and current.get(CHALLENGER) == version:
            client.delete_registered_model_alias(model, CHALLENGER)
        after = aliases(client, model)
        describe.refresh(client, model, [version, *current.values(), *after.values()], after)
    log.info("%s: alias %s -> v%d (was %s) by %s: %s", model, alias, version, replaced, actor, reason)
    return {
        "model": model,
        "version": version,
        "alias": alias,
        "changed": True,
        "completed_interrupted_move": pending is not None,
        "replaced_version": entry["replaced_version"],
        "forced": entry["forced"],
        "actor": entry["actor"],
        "reason": entry["reason"],
        "aliases": after,
    }


def model_manifest(client: MlflowClient, name: str, version: int) -> lineage.LineageManifest:
    mv = _version(client, name, version)
    manifest = load_manifest(client, mv.run_id) if mv.run_id else None
    if manifest is None:
        raise InputError(
            f"{name} v{version} has no {lineage.MANIFEST_ARTIFACT} in run {mv.run_id}: not trained by pitlake"
        )
    return manifest


def pinned_versions(settings: Settings) -> dict[str, set[int]]:
    """Every Delta table path → the versions a registered model version's lineage manifest pins.

    The maintenance DAG must not VACUUM these away. A registry that cannot be read raises (the
    guard fails closed); versions whose run has no manifest are not pitlake models and are skipped.
    """
    uri = tracking.tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}  # no store yet: nothing was ever registered
    client = tracking.connect(settings)
    out: dict[str, set[int]] = {}
    for registered in _all_registered_models(client):
        for mv in _all_versions(client, registered):
            if not mv.run_id:
                continue
            manifest = load_manifest(client, mv.run_id)
            if manifest is None:
                log.warning("%s v%s: run %s has no lineage manifest; not pinned", registered, mv.version, mv.run_id)
                continue
            for path, versions in manifest.pinned_paths().items():
                out.setdefault(path, set()).update(versions)
    return out


def _all_registered_models(client: MlflowClient) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        names += [m.name for m in page]
        token = page.token
        if not token:
            return names


def _all_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    versions: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(name_filter(name), max_results=200, page_token=token)
        versions += list(page)
        token = page.token
        if not token:
            return versions
