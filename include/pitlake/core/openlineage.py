"""OpenLineage events of pitlake's jobs: one run per job, a child of the Airflow task that ran it.

Every job (the frame of ``jobs/<stage>.py``, and the Airflow tasks that call a stage directly:
training, materialization) emits a ``START`` event when it begins and a ``COMPLETE`` (or ``FAIL``)
event when it ends, with the python client (``openlineage-python``). The Spark side is emitted here,
from the job, rather than by Spark's OpenLineage listener: the newest listener on Maven Central
(``openlineage-spark_2.13`` 1.53.0) has no Spark 4.1 module, and the engine is one Spark Connect
server shared by every task, whose listener would see no Airflow task to name as each job's parent.

Datasets
    A Delta table is namespace ``delta``, name its path (``.../lake/bronze/events``), with the
    schema facet and the standard ``version`` facet holding the Delta version the job read or
    committed, and a ``symlinks`` facet naming the logical table (``bronze.events``). Landing folders
    are namespace ``file``. A registered model is namespace ``mlflow``, name ``models:/<name>/<version>``.

Parents
    A job run under Airflow gets ``--lineage-parent NAMESPACE/JOB/RUN_ID`` (the provider's
    ``lineage_parent_id`` of its task) and ``--lineage-root`` (the DAG run's), which become the
    standard ``parent`` run facet. Airflow's own task events come from
    ``apache-airflow-providers-openlineage`` with the same transport.

Transport
    Files under ``$PITLAKE_HOME/lineage/`` (one JSON file per event) by default; ``OPENLINEAGE_URL``
    (e.g. ``http://127.0.0.1:5000`` for Marquez) sends them over HTTP instead;
    ``OPENLINEAGE_CONFIG`` (the client's YAML file: docker-compose uses it) configures any transport;
    ``OPENLINEAGE_DISABLED=true`` emits nothing. Emitting never fails a job: an unreachable server
    is one warning line.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pitlake.core.settings import Settings

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/pitlake/pitlake"
DELTA_NAMESPACE = "delta"
FILE_NAMESPACE = "file"
MLFLOW_NAMESPACE = "mlflow"
HTTP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class RunRef:
    """A run another run names as its parent: ``namespace/job/run_id`` (the Airflow provider's format)."""

    namespace: str
    name: str
    run_id: str

    @classmethod
    def parse(cls, value: str | None, flag: str = "--lineage-parent") -> RunRef | None:
        from pitlake.core.errors import ConfigError

        if not value:
            return None
        namespace, sep, rest = value.partition("/")
        name, sep2, run_id = rest.rpartition("/")
        try:
            uuid.UUID(run_id)
        except ValueError:
            run_id = ""
        if not (sep and sep2 and namespace and name and run_id):
            raise ConfigError(f"{flag} {value!r}: use NAMESPACE/JOB_NAME/RUN_ID (RUN_ID a UUID)")
        return cls(namespace, name, run_id)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}/{self.run_id}"


def table_dataset(table: str, version: int | None, **facets: Any) -> dict[str, Any]:
    """A Delta table at a version, as a job's result lists it under ``lineage``."""
    return {"table": table, "version": version, **({"facets": facets} if facets else {})}


def other_dataset(namespace: str, name: str, **facets: Any) -> dict[str, Any]:
    """A dataset that is not a Delta table of the lake (a landing folder, a model, the online store)."""
    return {"namespace": namespace, "name": name, **({"facets": facets} if facets else {})}


def lineage(inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``lineage`` entry of a job's result: what it read and wrote, Delta versions included.
    Tables without a version (nothing committed) are left out."""

    def keep(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in items if "table" not in d or d.get("version") is not None]

    return {"inputs": keep(inputs), "outputs": keep(outputs)}


@dataclass
class JobRun:
    """One job's OpenLineage run: its id is known before it starts, so a manifest can record it."""

    settings: Settings
    name: str
    parent: RunRef | None = None
    root: RunRef | None = None
    run_id: str = field(default_factory=lambda: str(_uuid7()))
    facets: dict[str, dict[str, Any]] = field(default_factory=dict)
    io: dict[str, Any] | None = None  # what the body read and wrote: :func:`lineage`
    emit_seconds: float = 0.0
    _client: Any = None

    @property
    def namespace(self) -> str:
        return self.settings.openlineage_namespace

    def start(self) -> None:
        self._emit("START", [], [])

    def complete(self, result_lineage: Mapping[str, Any] | None) -> None:
        spec = result_lineage or {}
        self._emit("COMPLETE", spec.get("inputs") or [], spec.get("outputs") or [])

    def fail(self, error: BaseException) -> None:
        self._emit("FAIL", [], [], error=error)

    def _emit(self, state: str, inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]],
              error: BaseException | None = None) -> None:  # fmt: skip
        if self.settings.openlineage_disabled:
            return
        started = time.perf_counter()
        try:
            event = build_event(self, state, inputs, outputs, error=error)
            if self._client is None:
                self._client = client(self.settings, self.run_id)
            self._client.emit(event)
        except Exception as err:  # lineage must never fail the job it describes
            why = (str(err).splitlines() or [type(err).__name__])[0]
            log.warning("OpenLineage %s event of %s not emitted: %s", state, self.name, why)
        finally:
            self.emit_seconds += time.perf_counter() - started


_CURRENT: dict[str, JobRun] = {}


def current() -> JobRun | None:
    """The run of the job frame executing now (``jobs/<stage>.py``), for a stage that records its id."""
    return _CURRENT.get("run")


def set_current(run: JobRun | None) -> None:
    if run is None:
        _CURRENT.pop("run", None)
    else:
        _CURRENT["run"] = run


@contextmanager
def job_run(settings: Settings, name: str, *, parent: RunRef | None = None, root: RunRef | None = None,
            facets: dict[str, dict[str, Any]] | None = None) -> Iterator[JobRun]:  # fmt: skip
    """``START`` now; ``COMPLETE`` with the ``run.io`` the body set, or ``FAIL`` if it raises."""
    run = JobRun(settings, name, parent=parent, root=root or parent, facets=dict(facets or {}))
    run.start()
    try:
        yield run
    except BaseException as err:
        run.fail(err)
        raise
    run.complete(run.io)


def client(settings: Settings, run_id: str) -> Any:
    """The client for ``settings``: as ``OPENLINEAGE_CONFIG`` or ``OPENLINEAGE_URL`` say when set, else one
    file per event under ``lineage/``."""
    from openlineage.client import OpenLineageClient

    logging.getLogger("openlineage.client").setLevel(logging.WARNING)  # not a line per job about its transport
    if settings.openlineage_config:
        return OpenLineageClient()  # the client's own resolution of OPENLINEAGE_CONFIG's file
    if settings.openlineage_url:
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        # The client's default retries a down server for ~9 s per event: a job waits at most ~2 s here.
        retry = {"total": 2, "read": 2, "connect": 2, "backoff_factor": 0.2, "status_forcelist": [500, 502, 503, 504],
                 "allowed_methods": ["HEAD", "POST"]}  # fmt: skip
        config = HttpConfig(url=settings.openlineage_url, timeout=HTTP_TIMEOUT_S, retry=retry)
        return OpenLineageClient(transport=HttpTransport(config))
    from openlineage.client.transport.file import FileConfig, FileTransport

    settings.lineage_dir.mkdir(parents=True, exist_ok=True)
    # One file per event, named after the run: concurrent jobs never write the same file.
    path = str(settings.lineage_dir / f"pitlake-{run_id}")
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=path, append=False)))


def airflow_transport(settings: Settings) -> str:
    """``[openlineage] transport`` of the local Airflow: the same files (``OPENLINEAGE_URL`` wins when set)."""
    settings.lineage_dir.mkdir(parents=True, exist_ok=True)  # the provider's file transport does not create it
    return json.dumps({"type": "file", "log_file_path": str(settings.lineage_dir / "airflow"), "append": False})


def build_event(run: JobRun, state: str, inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]],
                error: BaseException | None = None) -> Any:  # fmt: skip
    """The ``RunEvent`` (client objects) of ``run`` in ``state``."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run

    run_facets: dict[str, Any] = {name: _custom(value, "run") for name, value in run.facets.items()}
    if run.parent is not None:
        root = run.root or run.parent
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run.parent.run_id),
            job=parent_run.Job(namespace=run.parent.namespace, name=run.parent.name),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=root.run_id),
                job=parent_run.RootJob(namespace=root.namespace, name=root.name),
            ),
            producer=PRODUCER,
        )
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=str(error).splitlines()[0] if str(error) else type(error).__name__,
            programmingLanguage="python",
            producer=PRODUCER,
        )
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="PITLAKE", jobType="JOB", producer=PRODUCER
        )
    }
    return RunEvent(
        eventType=getattr(RunState, state),
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=run.run_id, facets=run_facets),
        job=Job(namespace=run.namespace, name=run.name, facets=job_facets),
        inputs=datasets_of({"inputs": inputs}, run.settings)[0],
        outputs=datasets_of({"outputs": outputs}, run.settings)[1],
        producer=PRODUCER,
    )


def datasets_of(result_lineage: Mapping[str, Any], settings: Settings | None = None) -> tuple[list[Any], list[Any]]:
    """The client's ``(InputDataset list, OutputDataset list)`` of a job result's ``lineage``."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    from pitlake.core.settings import load

    s = settings or load()
    return (
        [InputDataset(**_dataset(s, d)) for d in result_lineage.get("inputs") or []],
        [OutputDataset(**_dataset(s, d)) for d in result_lineage.get("outputs") or []],
    )


def _dataset(settings: Settings, spec: Mapping[str, Any]) -> dict[str, Any]:
    from openlineage.client.facet_v2 import dataset_version_dataset, symlinks_dataset

    facets: dict[str, Any] = {name: _custom(value, "dataset") for name, value in (spec.get("facets") or {}).items()}
    if "table" in spec:
        table, version = spec["table"], spec.get("version")
        path = settings.table_path(table)
        if version is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(version), producer=PRODUCER
            )
            schema = delta_schema_facet(path, int(version))
            if schema is not None:
                facets["schema"] = schema
        facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[
                symlinks_dataset.Identifier(namespace=settings.openlineage_namespace, name=table, type="TABLE")
            ],
            producer=PRODUCER,
        )
        return {"namespace": DELTA_NAMESPACE, "name": path, "facets": facets}
    return {"namespace": spec["namespace"], "name": spec["name"], "facets": facets}


_SCHEMAS: dict[tuple[str, int], Any] = {}


def delta_schema_facet(path: str, version: int) -> Any:
    """The schema facet of the Delta table at ``path`` as of ``version`` (from its log; no data file read)."""
    from openlineage.client.facet_v2 import schema_dataset

    key = (path, version)
    if key not in _SCHEMAS:
        try:
            from deltalake import DeltaTable

            schema = DeltaTable(path, version=version).schema()
        except Exception as err:  # a vacuumed or unreachable version: the facet is left out
            log.info("no schema facet for %s@%s: %s", path, version, str(err).splitlines()[0])
            return None
        _SCHEMAS[key] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=f.name, type=_type_name(f.type)) for f in schema.fields
            ],
            producer=PRODUCER,
        )
    return _SCHEMAS[key]


def _type_name(delta_type: Any) -> str:
    kind = getattr(delta_type, "type", None)
    return str(kind) if isinstance(kind, str) else type(delta_type).__name__.removesuffix("Type").lower()


def _custom(value: Mapping[str, Any], kind: str) -> Any:
    """A pitlake facet (a JSON object) as a client facet, with the producer and schema URL the spec asks."""
    import attr
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

    base = RunFacet if kind == "run" else DatasetFacet
    cls = attr.make_class("PitlakeFacet", {k: attr.ib(default=None) for k in value}, bases=(base,), kw_only=True)
    return cls(**dict(value), producer=PRODUCER)


def _uuid7() -> uuid.UUID:
    from openlineage.client.uuid import generate_new_uuid

    return generate_new_uuid()


# --------------------------------------------------------------------------- reading the events back


def read_events(folder: Path) -> list[dict[str, Any]]:
    """Every event under ``folder`` (the file transport's files), oldest first."""
    events = []
    for path in sorted(folder.glob("*.json")):
        try:
            events.append(json.loads(path.read_text()))
        except ValueError:
            log.warning("skipping %s: not one JSON event", path)
    return sorted(events, key=lambda e: e.get("eventTime", ""))


def completed_runs(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``COMPLETE`` events of pitlake jobs, each as ``{job, run_id, parent, inputs, outputs}``, where
    a dataset is ``(logical table or name, version)``."""

    def datasets(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
        out = []
        for d in items:
            facets = d.get("facets") or {}
            links = (facets.get("symlinks") or {}).get("identifiers") or []
            name = links[0]["name"] if links else d["name"]
            out.append((name, (facets.get("version") or {}).get("datasetVersion")))
        return out

    runs = []
    for e in events:
        if e.get("eventType") != "COMPLETE" or e.get("producer") != PRODUCER:
            continue
        parent = (e["run"].get("facets") or {}).get("parent") or {}
        parent_id = f"{parent['job']['namespace']}/{parent['job']['name']}/{parent['run']['runId']}" if parent else None
        runs.append({
            "job": e["job"]["name"],
            "run_id": e["run"]["runId"],
            "parent": parent_id,
            "inputs": datasets(e.get("inputs") or []),
            "outputs": datasets(e.get("outputs") or []),
            "facets": e["run"].get("facets") or {},
        })  # fmt: skip
    return runs


def trace(runs: Sequence[Mapping[str, Any]], dataset: tuple[str, str | None], depth: int = 8) -> list[str]:
    """``dataset``'s upstream in :func:`completed_runs`' graph, one line per job: what it wrote from what.
    A dataset version no job in ``runs`` wrote (history built outside Airflow, a landing folder) ends a path."""

    def label(d: Sequence[Any]) -> str:
        return f"{d[0]} v{d[1]}" if d[1] is not None else str(d[0])

    writers = {tuple(o): r for r in runs for o in r["outputs"]}
    lines: list[str] = []
    seen: set[str] = set()
    frontier: list[tuple[Any, ...]] = [tuple(dataset)]
    for level in range(depth):
        following: list[tuple[Any, ...]] = []
        for node in frontier:
            run = writers.get(node)
            if run is None or run["run_id"] in seen:
                continue
            seen.add(run["run_id"])
            lines.append(f"{'  ' * level}{label(node)} <- {run['job']} <- {', '.join(label(i) for i in run['inputs'])}")
            following.extend(tuple(i) for i in run["inputs"])
        frontier = following
    return lines
