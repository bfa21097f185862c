"""Layered configuration: defaults, then environment variables.

This is the only module that reads ``os.environ``. Every path pitlake uses lives under
``PITLAKE_HOME`` (default ``.pitlake/`` in the repository root).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pitlake.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]

DELTA_VERSION = "4.4.0"
DELTA_PACKAGES = (
    f"io.delta:delta-spark_4.1_2.13:{DELTA_VERSION}",
    f"io.delta:delta-storage:{DELTA_VERSION}",
)


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build one with :func:`load`."""

    home: Path
    spark_master: str | None
    spark_conf: dict[str, str] = field(default_factory=dict)
    demo_seed: int = 7
    demo_customers: int = 2000
    demo_start: str = "2026-01-01"
    defect_rate: float = 0.01
    max_event_lateness_days: int = 3
    mlflow_tracking_uri: str | None = None
    # Extra JVM options for the Spark driver (local mode: the whole job), after pitlake's own.
    driver_java_options: str = ""
    # The Spark engine: "connect" (default) talks to a long-lived Spark Connect server (this home's
    # engine on 127.0.0.1:engine_port, or spark_remote); "classic" starts a JVM in this process.
    engine: str = "connect"
    spark_remote: str | None = None
    engine_port: int = 15002
    engine_host: str = "127.0.0.1"  # the address the engine binds (compose: 0.0.0.0 inside its network)
    engine_master: str = "local[*]"
    engine_memory: str = "4g"
    engine_java_options: str = ""
    # Online serving: the store materializations write and the app reads ("sqlite": a file under
    # online/, the embedded default; "redis": redis_url), and where `pitlake serve` listens.
    online_store: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    serving_host: str = "127.0.0.1"
    serving_port: int = 8000
    # A pitlake task still running after this many minutes is stopped and retried (0: no bound): a
    # hung Spark job must fail the day's run with a message, not hold it forever.
    task_timeout_minutes: int = 120
    # The serving app's clock: "wall" (UTC now) or "materialization" (the newest materialization's
    # as_of: serving a historical store, e.g. the demo's, as of the time its features are valid).
    serving_clock: str = "wall"
    # OpenLineage: events go to files under lineage/ unless OPENLINEAGE_URL names a server (Marquez) or
    # OPENLINEAGE_CONFIG a client config file (the client's own variables, read by the client itself);
    # OPENLINEAGE_DISABLED=true emits nothing. The namespace of pitlake's jobs (OPENLINEAGE_NAMESPACE).
    openlineage_url: str | None = None
    openlineage_config: str | None = None  # OPENLINEAGE_CONFIG: the client's YAML (transport), e.g. in compose
    openlineage_namespace: str = "pitlake"
    openlineage_disabled: bool = False
    # The product catalog's HTTP API, which ingest_products pulls each day's changes from (the demo's
    # own API, `python -m pitlake catalog-api`, listens there by default).
    catalog_api_url: str = "http://127.0.0.1:8765"

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def gx_dir(self) -> Path:
        return self.home / "gx"

    @property
    def jars_dir(self) -> Path:
        return self.home / "jars"

    @property
    def engine_dir(self) -> Path:
        """The engine's pid/port record and log."""
        return self.home / "engine"

    @property
    def online_dir(self) -> Path:
        """The embedded online store (SQLite) and its materialization records."""
        return self.home / "online"

    @property
    def monitoring_dir(self) -> Path:
        """Monitoring reports (HTML and JSON) per use case and day."""
        return self.home / "monitoring"

    @property
    def experiments_dir(self) -> Path:
        """Experiment comparison reports (HTML, Markdown, plots), one folder per experiment run."""
        return self.home / "experiments"

    @property
    def lineage_dir(self) -> Path:
        """OpenLineage events, one JSON file per event (the client's file transport)."""
        return self.home / "lineage"

    @property
    def runs_dir(self) -> Path:
        """Job result records (JSON), read by Airflow tasks to emit Asset events."""
        return self.home / "runs"

    def table_path(self, name: str) -> str:
        """Map a logical table name such as ``bronze.events`` to its Delta location."""
        parts = name.split(".")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"table name {name!r} must look like 'layer.table', e.g. 'bronze.events'")
        return str(self.lake / parts[0] / parts[1])

    def delta_jars(self) -> list[Path]:
        """The Delta Lake jars resolved by ``make install`` (empty if not resolved yet)."""
        if not self.jars_dir.is_dir():
            return []
        return sorted(self.jars_dir.glob("*.jar"))


def _parse_conf(raw: str | None) -> dict[str, str]:
    """Parse ``PITLAKE_SPARK_CONF`` = ``key=value,key2=value2``."""
    conf: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"PITLAKE_SPARK_CONF entry {item!r} must be key=value (entries separated by commas)")
        conf[key.strip()] = value.strip()
    return conf


def load() -> Settings:
    """Read defaults, then environment overrides."""
    home = Path(_env("PITLAKE_HOME", str(REPO_ROOT / ".pitlake")) or "").expanduser().resolve()
    return Settings(
        home=home,
        spark_master=_env("PITLAKE_SPARK_MASTER"),
        spark_conf=_parse_conf(_env("PITLAKE_SPARK_CONF")),
        demo_seed=_int("PITLAKE_DEMO_SEED", 7, minimum=0),
        demo_customers=_int("PITLAKE_DEMO_CUSTOMERS", 2000, minimum=1),
        demo_start=_env("PITLAKE_DEMO_START", "2026-01-01") or "2026-01-01",
        defect_rate=_fraction("PITLAKE_DEFECT_RATE", 0.01),
        max_event_lateness_days=_int("PITLAKE_MAX_EVENT_LATENESS_DAYS", 3, minimum=0),
        mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI"),
        driver_java_options=_env("PITLAKE_DRIVER_JAVA_OPTIONS", "") or "",
        engine=_engine_kind(_env("PITLAKE_ENGINE", "connect") or "connect"),
        spark_remote=_env("PITLAKE_SPARK_REMOTE"),
        engine_port=_port(_env("PITLAKE_ENGINE_PORT", "15002") or "15002"),
        engine_host=_env("PITLAKE_ENGINE_HOST", "127.0.0.1") or "127.0.0.1",
        engine_master=_env("PITLAKE_ENGINE_MASTER", "local[*]") or "local[*]",
        engine_memory=_env("PITLAKE_ENGINE_MEMORY", "4g") or "4g",
        engine_java_options=_env("PITLAKE_ENGINE_JAVA_OPTIONS", "") or "",
        online_store=_online_store(_env("PITLAKE_ONLINE_STORE", "sqlite") or "sqlite"),
        redis_url=_env("PITLAKE_REDIS_URL", "redis://127.0.0.1:6379/0") or "redis://127.0.0.1:6379/0",
        serving_host=_env("PITLAKE_SERVING_HOST", "127.0.0.1") or "127.0.0.1",
        serving_clock=_choice("PITLAKE_SERVING_CLOCK", "wall", ("wall", "materialization")),
        serving_port=_port(_env("PITLAKE_SERVING_PORT", "8000") or "8000", "PITLAKE_SERVING_PORT"),
        openlineage_url=_env("OPENLINEAGE_URL") or None,
        openlineage_config=_env("OPENLINEAGE_CONFIG") or None,
        openlineage_namespace=_env("OPENLINEAGE_NAMESPACE", "pitlake") or "pitlake",
        openlineage_disabled=(_env("OPENLINEAGE_DISABLED", "") or "").strip().lower() in ("1", "true", "yes"),
        catalog_api_url=_url("PITLAKE_CATALOG_API_URL", "http://127.0.0.1:8765"),
        task_timeout_minutes=_int("PITLAKE_TASK_TIMEOUT_MINUTES", 120, minimum=0),
    )


def _url(name: str, default: str) -> str:
    """Environment variable ``name`` as an http(s) URL without a trailing slash; a one-line ConfigError otherwise."""
    raw = (_env(name, default) or default).strip().rstrip("/")
    if not raw.startswith(("http://", "https://")) or len(raw.split("://", 1)[1]) == 0:
        raise ConfigError(f"{name}={raw!r} must be an http(s) URL such as {default}: fix or unset it")
    return raw


def _int(name: str, default: int, *, minimum: int) -> int:
    """Environment variable ``name`` as an integer >= ``minimum``; a one-line ConfigError otherwise."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be a whole number (default {default}): fix or unset it") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum} (default {default}): fix or unset it")
    return value


def _fraction(name: str, default: float) -> float:
    """Environment variable ``name`` as a number in [0, 1]; a one-line ConfigError otherwise."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ConfigError(f"{name}={raw!r} must be a number from 0 to 1 (default {default}): fix or unset it")
    return value


def _engine_kind(raw: str) -> str:
    if raw not in ("connect", "classic"):
        raise ConfigError(
            f"PITLAKE_ENGINE={raw!r} must be 'connect' (the warm engine) or 'classic' (a JVM per process)"
        )
    return raw


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (_env(name, default) or default).strip().lower()
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r}: use one of {', '.join(allowed)}")
    return raw


def _online_store(raw: str) -> str:
    kind = raw.strip().lower()
    if kind not in ("sqlite", "redis"):
        raise ConfigError(f"PITLAKE_ONLINE_STORE={raw!r}: use 'sqlite' (embedded) or 'redis' (with PITLAKE_REDIS_URL)")
    return kind


def _port(raw: str, name: str = "PITLAKE_ENGINE_PORT") -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}={raw!r} must be a TCP port number (1-65535)")
    return int(raw)


@contextmanager
def env_override(name: str, value: str | None) -> Iterator[None]:
    """Set (or, with None, leave) environment variable ``name`` for the block, then restore it."""
    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def java_home() -> str | None:
    return _env("JAVA_HOME")


def child_environ() -> dict[str, str]:
    """A copy of this process's environment, for a child process (airflow, spark-submit)."""
    return dict(os.environ)


def demo_mode() -> bool:
    """Whether ``feature_pipeline`` generates the synthetic landing files before ingesting."""
    return (_env("PITLAKE_DEMO", "0") or "0").lower() in ("1", "true", "yes")


def environ_snapshot(names: tuple[str, ...]) -> dict[str, str]:
    """The subset of the environment a child process (spark-submit, airflow) must inherit."""
    return {n: os.environ[n] for n in names if n in os.environ}


def python_workers_use_this_interpreter() -> None:
    """Point PySpark's Python workers (local executors, and a cluster's through the driver) at the running
    interpreter, the one with pitlake and pyarrow installed, unless ``PYSPARK_PYTHON`` already names one."""
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
