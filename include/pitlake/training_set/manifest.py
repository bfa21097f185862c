"""The training-set manifest: ``lake/training_sets/_manifests/<use_case>/<training_set_id>.json``.

Written once per build beside the ``training_sets.<use_case>`` table: the Delta version of every
input read (the pins that rebuild the same rows), the written table version, row count, positives,
content hash, label range, mode and leakage counts. On disk it is the JSON of
:meth:`TrainingSetManifest.to_dict` (keys sorted, indent 2), versioned by ``schema_version``
(currently ``"1"``); a manifest written before the field existed reads as version 1.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core.errors import ConfigError, InputError

if TYPE_CHECKING:
    from pitlake.core.settings import Settings

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class TrainingSetManifest:
    """One built training set: what was read (``inputs``: table -> ``{"path", "version"}``) and what was written."""

    training_set_id: str
    use_case: str
    table: str
    label_start: str  # ISO date, inclusive
    label_end: str  # ISO date, inclusive
    as_of_write: bool
    inputs: dict[str, dict[str, Any]]
    row_count: int
    positives: int
    content_hash: str
    feature_columns: tuple[str, ...]
    label_column: str
    delta_version: int  # the version of ``table`` this build wrote
    manifest_path: str
    built_at: str
    leakage_violations: dict[str, int] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    def pins(self) -> dict[str, int]:
        """Table -> Delta version read: pass as ``pins`` to rebuild the same rows."""
        return {table: int(info["version"]) for table, info in self.inputs.items()}

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["feature_columns"] = list(self.feature_columns)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSetManifest:
        version = data.get("schema_version", "1")  # written before the field existed: version 1
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"training set manifest schema_version {version!r} is not supported "
                f"(this pitlake reads {SCHEMA_VERSION!r}): upgrade pitlake"
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        required = [
            n for n, f in known.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [n for n in required if n not in data]
        unknown = sorted(k for k in data if k not in known)
        if missing or unknown:
            raise InputError(
                f"training set manifest {data.get('training_set_id')!r} does not match schema_version "
                f"{SCHEMA_VERSION!r}: missing {missing}, unknown {unknown}"
            )
        values = {**data, "schema_version": version, "feature_columns": tuple(data["feature_columns"])}
        values["inputs"] = {table: dict(info) for table, info in data["inputs"].items()}
        values["leakage_violations"] = dict(data.get("leakage_violations", {}))
        return cls(**values)


def manifest_dir(settings: Settings, use_case: str) -> Path:
    return settings.lake / "training_sets" / "_manifests" / use_case


def write_manifest(manifest: TrainingSetManifest) -> Path:
    """Write ``manifest`` to its ``manifest_path`` (replacing a rebuild's earlier file)."""
    path = Path(manifest.manifest_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json())
    return path


def read_manifest(settings: Settings, use_case: str, training_set_id: str) -> TrainingSetManifest:
    from pitlake.core.names import check_name

    check_name(training_set_id, "training set id")
    path = manifest_dir(settings, use_case) / f"{training_set_id}.json"
    if not path.exists():
        raise InputError(f"no manifest for training set {training_set_id!r} of {use_case} at {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"training set manifest {path} is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"training set manifest {path} is not a JSON object")
    return TrainingSetManifest.from_dict(data)


def latest_manifest(settings: Settings, use_case: str) -> TrainingSetManifest:
    """The most recently built training set of ``use_case``; an :class:`InputError` when none was built."""
    folder = manifest_dir(settings, use_case)
    manifests = [read_manifest(settings, use_case, p.stem) for p in sorted(folder.glob("*.json"))]
    if not manifests:
        raise InputError(
            f"no training set of {use_case} in {folder}: build one first (jobs/build_training_set.py, or make demo)"
        )
    return max(manifests, key=lambda m: (m.built_at, m.delta_version))
