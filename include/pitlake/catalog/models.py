"""The registered models as the MLflow registry and each version's lineage manifest describe them.

Per version: its aliases (champion, challenger, previous), its run's metrics against the ground-truth
ceiling and the quality floor, the promotion gate's verdict (the ``gate.*`` tags) and, from
``lineage/manifest.json``, the Delta versions and dates it was trained on. A manifest never changes
once logged, so each is read once per process.
"""

from __future__ import annotations

import tempfile
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlparse

from pitlake.core import tracking
from pitlake.core.errors import PitlakeError
from pitlake.core.settings import Settings
from pitlake.lineage import manifest as lineage
from pitlake.registry.promote import CHALLENGER, CHAMPION, PREVIOUS, aliases, name_filter

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# The MLflow UI a browser reaches: `make mlflow` (and compose's published port) serve it here.
MLFLOW_UI_URL = "http://127.0.0.1:5000"
ALIAS_ORDER = (CHAMPION, CHALLENGER, PREVIOUS)
VERSIONS_SHOWN = 20
PROBE_TIMEOUT_S = 1.0


class RegistryUnavailable(PitlakeError):
    """The tracking server does not answer: the page says so in one line."""


@dataclass(frozen=True)
class VersionEntry:
    model: str
    version: int
    aliases: tuple[str, ...]
    created_at: datetime | None
    run_id: str | None
    experiment_id: str | None
    metrics: dict[str, float]
    gate: dict[str, str]  # the gate.* tags without the prefix
    manifest: lineage.LineageManifest | None
    manifest_problem: str | None = None

    @property
    def ceiling_share(self) -> float | None:
        """How much of the ceiling's lift over random the model reaches: (AUC - 0.5) / (ceiling - 0.5)."""
        roc, ceiling = self.metrics.get("roc_auc"), self.metrics.get("ceiling_auc")
        if roc is None or ceiling is None or ceiling <= 0.5:
            return None
        return (roc - 0.5) / (ceiling - 0.5)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    aliases: dict[str, int]
    versions: tuple[VersionEntry, ...]  # newest first, at most VERSIONS_SHOWN
    version_count: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def mlflow_run_url(experiment_id: str | None, run_id: str) -> str:
    return f"{MLFLOW_UI_URL}/#/experiments/{quote(experiment_id or '0')}/runs/{quote(run_id)}"


def mlflow_version_url(name: str, version: int) -> str:
    return f"{MLFLOW_UI_URL}/#/models/{quote(name, safe='')}/versions/{version}"


def open_registry(settings: Settings) -> MlflowClient | None:
    """A client on the configured store; None when the local store does not exist yet (nothing registered).

    A tracking server that does not answer within a second raises :class:`RegistryUnavailable` (MLflow's own
    retries would hold the page for minutes)."""
    uri = tracking.tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    from mlflow import MlflowClient

    if uri.startswith(tracking.REMOTE_SCHEMES):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S):
                pass
        except OSError as err:
            raise RegistryUnavailable(f"the MLflow tracking server {uri} does not answer ({err})") from None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


_MANIFESTS: dict[str, tuple[lineage.LineageManifest | None, str | None]] = {}
_MANIFESTS_LOCK = threading.Lock()


def run_manifest(
    client: MlflowClient, run_id: str, artifact_uri: str
) -> tuple[lineage.LineageManifest | None, str | None]:
    """The run's lineage manifest and, when there is none or it cannot be read, why (cached per run)."""
    with _MANIFESTS_LOCK:
        if run_id in _MANIFESTS:
            return _MANIFESTS[run_id]
    found = _read_manifest(client, run_id, artifact_uri)
    with _MANIFESTS_LOCK:
        _MANIFESTS[run_id] = found
    return found


def _read_manifest(
    client: MlflowClient, run_id: str, artifact_uri: str
) -> tuple[lineage.LineageManifest | None, str | None]:
    from mlflow.exceptions import MlflowException

    try:
        parsed = urlparse(artifact_uri)
        if parsed.scheme in ("", "file"):  # the embedded store: read the file where it lies
            path = Path(unquote(parsed.path)) / lineage.MANIFEST_ARTIFACT
            if not path.exists():
                return None, f"run {run_id} has no {lineage.MANIFEST_ARTIFACT}: not trained by pitlake"
            text = path.read_text()
        else:
            with tempfile.TemporaryDirectory(prefix="pitlake-manifest-") as tmp:
                text = Path(client.download_artifacts(run_id, lineage.MANIFEST_ARTIFACT, tmp)).read_text()
        return lineage.read_manifest(text), None
    except (MlflowException, OSError) as err:
        return None, f"run {run_id}: {lineage.MANIFEST_ARTIFACT} unreadable ({str(err).splitlines()[0][:160]})"
    except (PitlakeError, ValueError, TypeError, KeyError) as err:
        return None, f"run {run_id}: {lineage.MANIFEST_ARTIFACT} does not parse ({str(err)[:160]})"


def _entry(client: MlflowClient, mv: ModelVersion, alias_of: dict[int, list[str]]) -> VersionEntry:
    from mlflow.exceptions import MlflowException

    version = int(mv.version)
    metrics: dict[str, float] = {}
    experiment_id = None
    manifest, problem = None, None
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
        except MlflowException as err:
            problem = f"run {mv.run_id} unreadable: {str(err).splitlines()[0][:160]}"
        else:
            metrics = dict(run.data.metrics)
            experiment_id = run.info.experiment_id
            manifest, problem = run_manifest(client, mv.run_id, run.info.artifact_uri)
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC) if mv.creation_timestamp else None
    names = sorted(alias_of.get(version, []), key=lambda a: (*ALIAS_ORDER, a).index(a))
    return VersionEntry(
        model=mv.name,
        version=version,
        aliases=tuple(names),
        created_at=created,
        run_id=mv.run_id,
        experiment_id=experiment_id,
        metrics=metrics,
        gate={k.removeprefix("gate."): v for k, v in (mv.tags or {}).items() if k.startswith("gate.")},
        manifest=manifest,
        manifest_problem=problem,
    )


def _aliases_by_version(alias_map: dict[str, int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for alias, version in alias_map.items():
        out.setdefault(int(version), []).append(alias)
    return out


def registered_models(settings: Settings, versions_shown: int = VERSIONS_SHOWN) -> list[ModelEntry] | None:
    """Every registered model with its newest versions; None when no registry exists yet."""
    client = open_registry(settings)
    if client is None:
        return None
    out = []
    for model in sorted(client.search_registered_models(max_results=1000), key=lambda m: m.name):
        alias_map = {a: int(v) for a, v in (model.aliases or {}).items()}
        versions = sorted(client.search_model_versions(name_filter(model.name)), key=lambda v: -int(v.version))
        by_version = _aliases_by_version(alias_map)
        shown = versions[:versions_shown]
        # Aliased versions are always shown, however old (a rollback target matters most).
        shown += [v for v in versions[versions_shown:] if int(v.version) in by_version]
        out.append(
            ModelEntry(
                name=model.name,
                description=model.description or "",
                aliases=alias_map,
                versions=tuple(_entry(client, mv, by_version) for mv in shown),
                version_count=len(versions),
            )
        )
    return out


def model_version(settings: Settings, name: str, version: int | str) -> VersionEntry | None:
    """Version ``version`` of model ``name``, or the version an alias (``champion``) points at; None if none."""
    from mlflow.exceptions import MlflowException

    client = open_registry(settings)
    if client is None:
        return None
    alias_map = aliases(client, name)
    number = alias_map.get(str(version)) if not str(version).isdigit() else int(version)
    if number is None:
        return None
    try:
        mv = client.get_model_version(name, str(number))
    except MlflowException:
        return None
    return _entry(client, mv, _aliases_by_version(alias_map))


def versions_of_run(settings: Settings, dag_id: str, run_id: str) -> list[VersionEntry]:
    """The model versions registered by MLflow runs that Airflow run ``dag_id``/``run_id`` logged."""
    if "'" in run_id or "'" in dag_id:
        return []
    client = open_registry(settings)
    if client is None:
        return []
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.`airflow.dag_id` = '{dag_id}' AND tags.`airflow.run_id` = '{run_id}'",
        max_results=200,
    )
    out: list[VersionEntry] = []
    alias_maps: dict[str, dict[str, int]] = {}
    for run in runs:
        for mv in client.search_model_versions(f"run_id = '{run.info.run_id}'"):
            alias_map = alias_maps.setdefault(mv.name, aliases(client, mv.name))
            out.append(_entry(client, mv, _aliases_by_version(alias_map)))
    return sorted(out, key=lambda v: (v.model, v.version))


def trained_on(manifest: lineage.LineageManifest) -> list[tuple[str, int, str]]:
    """``(table, Delta version, role)`` of the training set and of every input it was built from."""
    ts = manifest.training_set
    rows = [(ts.table, ts.delta_version, "training set")]
    rows += [(i.table, i.delta_version, str(i.role)) for i in manifest.inputs]
    return rows


def metric(entry: VersionEntry, name: str) -> float | None:
    value: Any = entry.metrics.get(name)
    return float(value) if value is not None else None
