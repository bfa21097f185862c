"""The lineage manifest logged with every model run (``lineage/manifest.json``, schema version "1").

It answers "which data and code made model X" on its own: the training set (path, Delta version,
content hash, label window), every input table at the Delta version read (the label spine and
each feature view's table, with the view's version and TTL), the bronze versions behind them,
the validation results that gated them, the code commit, package versions, the Airflow run and
the metrics. Records are frozen dataclasses; ``str`` enums serialise as their value.

Bronze versions are not in a training set's manifest. They come from the caller
(``upstream_versions``, e.g. the Asset events that triggered the DAG run) and are derived from the
job result records under ``$PITLAKE_HOME/runs``: for each date partition live in an input table at
the pinned version, the latest recorded build at or below that version names the source version
it read. Partitions without a record are counted in ``unresolved_partitions``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import types
import typing
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pitlake.core.errors import ConfigError
from pitlake.core.settings import REPO_ROOT, Settings

SCHEMA_VERSION = "1"
MANIFEST_ARTIFACT = "lineage/manifest.json"
PACKAGES = ("scikit-learn", "mlflow", "pandas", "numpy", "pyspark", "delta-spark", "deltalake", "pyarrow", "skops")


class InputRole(StrEnum):
    LABELS = "labels"
    FEATURES = "features"


class UpstreamSource(StrEnum):
    ARGUMENT = "argument"  # passed by the caller (e.g. the triggering Asset events)
    JOB_RECORDS = "job_records"  # derived from $PITLAKE_HOME/runs/<stage>/*.json


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: int | None
    run_id: str
    model_uri: str
    estimator: str
    flavor: str = "sklearn"
    model_id: str | None = None  # MLflow 3's LoggedModel id (``models:/<model_id>``)


@dataclass(frozen=True)
class TrainingSetRecord:
    training_set_id: str
    use_case: str
    table: str
    path: str
    delta_version: int
    content_hash: str
    row_count: int
    positives: int | None
    label_start: str
    label_end: str
    as_of_write: bool
    feature_columns: tuple[str, ...]
    manifest_path: str | None


@dataclass(frozen=True)
class InputRecord:
    """One input of the training set, at the Delta version the build read."""

    role: InputRole
    table: str
    path: str
    delta_version: int
    committed_at: str | None  # the commit time of that version in the Delta log, when readable


@dataclass(frozen=True)
class FeatureViewRecord:
    name: str
    version: int
    table: str
    path: str
    delta_version: int
    ttl_seconds: int | None
    source: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class UpstreamRecord:
    """Versions of a source (bronze) table behind one input (or given by the caller: ``via`` is None)."""

    table: str
    path: str
    versions: tuple[int, ...]
    via: str | None
    derived_from: UpstreamSource
    unresolved_partitions: int = 0


@dataclass(frozen=True)
class ValidationRecord:
    result_id: str
    suite: str | None
    table: str | None
    delta_version: int | None
    success: bool
    json_path: str | None


@dataclass(frozen=True)
class CodeRecord:
    git_commit: str | None
    git_dirty: bool | None


@dataclass(frozen=True)
class AirflowRecord:
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    try_number: int | None
    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None


@dataclass(frozen=True)
class TrainingRecord:
    """How the model was fit: enough to retrain it identically from the same rows."""

    seed: int
    candidates: tuple[str, ...]
    selected: str
    feature_columns: tuple[str, ...]
    eval_fraction: float
    purge_days: int
    eval_start: str
    train_rows: int
    eval_rows: int
    threshold: float
    threshold_method: str


@dataclass(frozen=True)
class QualityRecord:
    ceiling_auc: float | None
    ceiling_auc_propensity: float | None
    ceiling_skipped: str | None
    quality_floor: float
    floor_source: str
    leakage_tolerance: float | None
    suspected_leakage: bool
    leakage_reasons: tuple[str, ...]


@dataclass(frozen=True)
class OpenLineageRecord:
    """The training's run in the OpenLineage graph, and the runs it joins: Airflow's task (``parent``,
    ``namespace/job/run_id``) and the job that built the training set."""

    namespace: str
    job: str
    run_id: str
    parent: str | None = None
    root: str | None = None
    training_set_run_id: str | None = None


@dataclass(frozen=True)
class ExperimentRecord:
    """The experiment whose best trial this model is (``conf/experiments``): the estimator and the trial's
    full params refit it; the config's hash says which file chose them."""

    name: str
    config_path: str
    config_sha256: str
    estimator: str
    params: dict[str, Any]
    variant: str
    trial: int
    metric: str
    cv_folds: int
    cv_mean: float
    cv_spread: float
    trials: int
    report: str | None = None


@dataclass(frozen=True)
class LineageManifest:
    schema_version: str
    created_at: str
    model: ModelRecord
    training_set: TrainingSetRecord
    inputs: tuple[InputRecord, ...]
    feature_views: tuple[FeatureViewRecord, ...]
    upstream: tuple[UpstreamRecord, ...]
    validations: tuple[ValidationRecord, ...]
    code: CodeRecord
    packages: dict[str, str | None]
    airflow: AirflowRecord | None
    training: TrainingRecord
    quality: QualityRecord
    metrics: dict[str, float]
    notes: tuple[str, ...] = field(default_factory=tuple)
    openlineage: OpenLineageRecord | None = None
    experiment: ExperimentRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageManifest:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"lineage manifest schema_version {version!r} is not supported "
                f"(this pitlake reads {SCHEMA_VERSION!r}): upgrade pitlake"
            )
        return _build(cls, data)

    def pinned_paths(self) -> dict[str, set[int]]:
        """Every Delta table path this model depends on, with the versions it pins."""
        out: dict[str, set[int]] = {}
        out.setdefault(self.training_set.path, set()).add(self.training_set.delta_version)
        for record in self.inputs:
            out.setdefault(record.path, set()).add(record.delta_version)
        for up in self.upstream:
            out.setdefault(up.path, set()).update(up.versions)
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


T = TypeVar("T")


def _build(cls: type[T], data: Any) -> T:
    """Rebuild a (nested) record from its JSON form, guided by the dataclass's type hints."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        return tuple(_convert(typing.get_args(hint)[0], v) for v in value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


# --------------------------------------------------------------------------- facts about the environment


def git_state(repo: Path = REPO_ROOT) -> CodeRecord:
    """The commit and whether the working tree differs from it; (None, None) without git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return CodeRecord(git_commit=None, git_dirty=None)
    status = git("status", "--porcelain")
    return CodeRecord(git_commit=commit.strip(), git_dirty=None if status is None else bool(status.strip()))


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def airflow_record(airflow: dict[str, Any] | None) -> AirflowRecord | None:
    """The Airflow identity of the run (keys as in the task context); None outside Airflow."""
    if not airflow:
        return None

    def text(key: str) -> str | None:
        value = airflow.get(key)
        return None if value is None else str(value.isoformat() if hasattr(value, "isoformat") else value)

    try_number = airflow.get("try_number")
    return AirflowRecord(
        dag_id=text("dag_id"),
        run_id=text("run_id"),
        task_id=text("task_id"),
        try_number=int(try_number) if try_number is not None else None,
        logical_date=text("logical_date"),
        data_interval_start=text("data_interval_start"),
        data_interval_end=text("data_interval_end"),
    )


def validation_records(results: list[dict[str, Any]] | None) -> tuple[ValidationRecord, ...]:
    """Validation results as passed by the caller (``ValidationReport.to_dict()`` or a subset of it)."""
    out = []
    for i, r in enumerate(results or []):
        result_id = r.get("result_id") or r.get("id")
        if not result_id or "success" not in r:
            raise ConfigError(f"validation_results[{i}] needs 'result_id' and 'success' (a ValidationReport.to_dict())")
        version = r.get("delta_version")
        out.append(
            ValidationRecord(
                result_id=str(result_id),
                suite=r.get("suite"),
                table=r.get("table"),
                delta_version=int(version) if version is not None else None,
                success=bool(r["success"]),
                json_path=r.get("json_path"),
            )
        )
    return tuple(out)


def commit_time(path: str, version: int) -> str | None:
    """When ``version`` of the Delta table at ``path`` was committed (ISO, UTC), if the log still has it."""
    from datetime import UTC, datetime

    from deltalake import DeltaTable

    try:
        history = DeltaTable(path).history()
    except Exception:  # a missing or unreadable table must not stop training: the version is still recorded
        return None
    for entry in history:
        if entry.get("version") == version and entry.get("timestamp") is not None:
            return datetime.fromtimestamp(int(entry["timestamp"]) / 1000, UTC).replace(tzinfo=None).isoformat()
    return None


def _records_for(settings: Settings, table: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not settings.runs_dir.is_dir():
        return out
    # runs/<stage>/<key>.json from a manual job, runs/airflow/<dag>/<run>/<task>.<try>.json from a task.
    for path in sorted(settings.runs_dir.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("table") == table and record.get("source_table"):
            out.append(record)
    return out


def upstream_from_job_records(settings: Settings, table: str, version: int) -> UpstreamRecord | None:
    """The source versions behind ``table`` at ``version``, from the recorded builds (None without records)."""
    from deltalake import DeltaTable

    records = [
        r
        for r in _records_for(settings, table)
        if r.get("delta_version") is not None and int(r["delta_version"]) <= version
    ]
    if not records:
        return None
    latest_by_date: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: int(r["delta_version"])):
        for day in r.get("dates_built") or r.get("dates_labelled") or []:
            latest_by_date[str(day)] = r
    try:
        live = {
            str(v)
            for p in DeltaTable(settings.table_path(table), version=version).partitions()
            for v in p.values()
            if v is not None
        }
    except Exception:  # without the log we cannot tell live partitions: use every recorded date
        live = set(latest_by_date)
    versions = sorted({int(latest_by_date[d]["source_version"]) for d in live if d in latest_by_date})
    unresolved = len([d for d in live if d not in latest_by_date])
    source = str(records[-1]["source_table"])
    return UpstreamRecord(
        table=source,
        path=settings.table_path(source),
        versions=tuple(versions),
        via=table,
        derived_from=UpstreamSource.JOB_RECORDS,
        unresolved_partitions=unresolved,
    )


def upstream_records(
    settings: Settings, inputs: tuple[InputRecord, ...], given: dict[str, Any] | None
) -> tuple[UpstreamRecord, ...]:
    out: list[UpstreamRecord] = []
    for table, value in sorted((given or {}).items()):
        versions = (value,) if isinstance(value, int) else tuple(int(v) for v in value)
        out.append(
            UpstreamRecord(
                table=table,
                path=settings.table_path(table),
                versions=tuple(sorted(set(versions))),
                via=None,
                derived_from=UpstreamSource.ARGUMENT,
            )
        )
    for record in inputs:
        derived = upstream_from_job_records(settings, record.table, record.delta_version)
        if derived is not None:
            out.append(derived)
    return tuple(out)


def read_manifest(text: str) -> LineageManifest:
    return LineageManifest.from_dict(json.loads(text))
