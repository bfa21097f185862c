"""Where MLflow lives: ``MLFLOW_TRACKING_URI`` (through settings) or a SQLite store under ``PITLAKE_HOME/mlflow``.

The embedded default keeps runs in ``mlflow/mlflow.db`` and artifacts in ``mlflow/artifacts``; a
tracking server (docker compose's ``http://mlflow:5000``) decides its own artifact store.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from pitlake.core.errors import ConfigError
from pitlake.core.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

REMOTE_SCHEMES = ("http://", "https://")
HEALTH_TIMEOUT_SECONDS = 5.0


def tracking_uri(settings: Settings) -> str:
    """The tracking (and registry) URI: the configured one, else ``sqlite:///<abs>/mlflow/mlflow.db``."""
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    return f"sqlite:///{(settings.mlflow_dir / 'mlflow.db').resolve()}"


def artifact_location(settings: Settings, uri: str) -> str | None:
    """Artifacts of a local store go to ``<mlflow_dir>/artifacts``; a server keeps its own default."""
    if uri.startswith(REMOTE_SCHEMES) or uri.startswith("databricks"):
        return None
    return (settings.mlflow_dir / "artifacts").resolve().as_uri()


def check_reachable(uri: str) -> None:
    """A one-line :class:`ConfigError` when a tracking server does not answer its ``/health`` endpoint."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return
    if not uri.startswith(REMOTE_SCHEMES):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_SECONDS) as response:
            if response.status >= 400:
                raise OSError(f"HTTP {response.status}")
    except (OSError, urllib.error.URLError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(
            f"MLflow tracking server {uri} is unreachable ({reason}): start it (`docker compose up -d mlflow`) "
            "or unset MLFLOW_TRACKING_URI to use the local SQLite store under $PITLAKE_HOME/mlflow"
        ) from None


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow (fluent API and client) at the configured store, after checking it answers."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(settings)
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client: MlflowClient, settings: Settings, name: str) -> str:
    """The id of experiment ``name``, created (with the local artifact location) when missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = artifact_location(settings, tracking_uri(settings))
    return str(client.create_experiment(name, artifact_location=location))
