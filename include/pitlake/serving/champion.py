"""The model behind the registry's ``champion`` alias, loaded for serving and reloaded when the alias moves.

The model's inputs are its MLflow signature's columns, in that order, with the signature's types
(``double``: numeric, ``string``: categorical): the feature vector is built from them with
:func:`pitlake.training.dataset.model_inputs`, the function that turns training rows into the
model's inputs, so a served row and a training row with the same values give the same input.
:class:`ChampionWatcher` polls the alias (every ``reload_seconds``, 20 s by default) in a
background thread and swaps in the new version once it has loaded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pitlake.core import tracking
from pitlake.core.errors import ConfigError
from pitlake.core.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    name: str
    version: int
    run_id: str | None
    model: Any
    features: list[str]
    numeric: list[str]
    compiled: Any = None  # a CompiledPipeline proven equal to ``model`` (pitlake.serving.compiled), or None

    def frame(self, values: list[dict[str, Any]]) -> pd.DataFrame:
        """The model's input rows for served feature values (plain name -> value or None)."""
        import pandas as pd

        from pitlake.training.dataset import model_inputs

        raw = pd.DataFrame({f: [v.get(f) for v in values] for f in self.features})
        return model_inputs(raw, self.features, numeric=self.numeric)

    def score(self, values: list[dict[str, Any]]) -> np.ndarray:
        """The positive-class probability per row, as ``predict_proba`` gives it offline (the compiled
        form when there is one: identical on every probe row, a fraction of the per-call overhead)."""
        if self.compiled is not None:
            return self.compiled.predict_proba(values)[:, 1]
        return self.model.predict_proba(self.frame(values))[:, 1]


def load_champion(settings: Settings, name: str, alias: str = "champion") -> Champion:
    """Load the version behind ``alias``; a :class:`ConfigError` saying how to get one when there is none."""
    import mlflow.sklearn
    from mlflow.models import get_model_info

    from pitlake.registry.promote import aliases

    client = tracking.connect(settings)
    version = aliases(client, name).get(alias)
    if version is None:
        raise ConfigError(f"registered model {name!r} has no {alias!r} alias: run train_model (or promote_model) first")
    uri = f"models:/{name}/{version}"
    signature = get_model_info(uri).signature
    if signature is None:
        raise ConfigError(f"{name} v{version} was logged without a signature: retrain it with this pitlake")
    inputs = signature.inputs.to_dict()
    features = [c["name"] for c in inputs]
    numeric = [c["name"] for c in inputs if c["type"] in ("double", "float", "long", "integer", "boolean")]
    model = mlflow.sklearn.load_model(uri)
    run_id = client.get_model_version(name, str(version)).run_id
    from pitlake.serving.compiled import compile_pipeline

    compiled = compile_pipeline(model, features, numeric)
    return Champion(name, int(version), run_id, model, features, numeric, compiled)


class ChampionWatcher:
    """Holds the current champion; a daemon thread reloads it within ``reload_seconds`` of the alias moving."""

    def __init__(self, settings: Settings, name: str, reload_seconds: float = 20.0) -> None:
        self.settings = settings
        self.name = name
        self.reload_seconds = reload_seconds
        self.current: Champion | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> None:
        from pitlake.registry.promote import aliases

        try:
            if self.current is not None:
                version = aliases(tracking.connect(self.settings), self.name).get("champion")
                if version == self.current.version:
                    return
            self.current = load_champion(self.settings, self.name)
            self.error = None
            log.info("serving %s v%d", self.name, self.current.version)
        except Exception as err:  # keep serving the loaded model; /health reports the error
            self.error = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("cannot load the champion of %s: %s", self.name, self.error)

    def start(self) -> None:
        self.load()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.reload_seconds):
            self.load()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
