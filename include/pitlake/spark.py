"""The one SparkSession factory: Delta enabled, UTC.

By default (``PITLAKE_ENGINE=connect``) a session is a Spark Connect session on the warm engine
(:mod:`pitlake.engine`): one new session per task, released by :func:`release` when the task
ends. Under ``spark-submit`` (a cluster) or with ``PITLAKE_ENGINE=classic`` it is a classic
session whose JVM starts in this process; the master and jars then come from the submit command
line or from settings.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

from pitlake import settings as settings_mod
from pitlake.errors import ConfigError
from pitlake.settings import REPO_ROOT

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MIN_JAVA = 17

LOG4J_CONF = REPO_ROOT / "conf" / "log4j2.properties"
JAVA_OPTIONS = f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{LOG4J_CONF}"
# For short-lived drivers on small data (one spark-submit per Airflow task, tests): the C1 JIT only
# and the serial collector cut a task's CPU time by about a third; a long-lived session on real data
# wants the defaults (C2), so this is an opt-in through PITLAKE_DRIVER_JAVA_OPTIONS.
SHORT_LIVED_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

# Seconds the last get_spark() spent in getOrCreate (a new SparkContext: JVM side start-up, jars),
# or in opening a Connect session on the engine.
SESSION_STARTUP_S: dict[str, float] = {}
# Connect sessions this process opened: get_spark() returns the open one, release() closes them.
_CONNECT_SESSIONS: list[SparkSession] = []

BASE_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    # Small data by default; AQE coalesces further. A cluster overrides through PITLAKE_SPARK_CONF.
    "spark.sql.shuffle.partitions": "8",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # toPandas through Arrow (the gates fetch small slices; Spark Connect always uses Arrow).
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def java_version() -> int | None:
    """The major version of ``java`` on PATH (or under JAVA_HOME), None if there is none."""
    home = settings_mod.java_home()
    java = f"{home}/bin/java" if home else shutil.which("java")
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def check_java() -> int:
    version = java_version()
    if version is None:
        raise ConfigError(
            "Java not found: install a JDK/JRE 17 or newer (e.g. `apt-get install openjdk-17-jre-headless`) "
            "or set JAVA_HOME"
        )
    if version < MIN_JAVA:
        raise ConfigError(
            f"Java {version} found but Spark 4 needs Java {MIN_JAVA}+: install it or point JAVA_HOME at it"
        )
    return version


def delta_jar_paths(settings: settings_mod.Settings | None = None) -> list[str]:
    s = settings or settings_mod.load()
    jars = [str(p) for p in s.delta_jars()]
    names = " ".join(jars)
    if not jars or "delta-spark" not in names or "delta-storage" not in names:
        raise ConfigError(
            f"Delta Lake jars missing in {s.jars_dir}: run `make install` (or `python -m pitlake install-jars`)"
        )
    return jars


def driver_java_options(settings: settings_mod.Settings | None = None) -> str:
    """pitlake's driver JVM options (UTC, log4j) plus ``PITLAKE_DRIVER_JAVA_OPTIONS``."""
    s = settings or settings_mod.load()
    return f"{JAVA_OPTIONS} {s.driver_java_options}".strip()


def submit_conf(settings: settings_mod.Settings | None = None) -> dict[str, str]:
    """Spark conf that must be given on the spark-submit command line (before the JVM starts)."""
    return {
        "spark.driver.extraJavaOptions": driver_java_options(settings),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.session.timeZone": "UTC",
    }


# Session confs a Connect client sets on its own session (the engine's static confs, such as the
# Delta extension and catalog, are set when it starts).
SESSION_CONF_KEYS = (
    "spark.sql.session.timeZone",
    "spark.sql.shuffle.partitions",
    "spark.databricks.delta.snapshotPartitions",
    "spark.sql.sources.partitionOverwriteMode",
)


def get_spark(app_name: str = "pitlake", settings: settings_mod.Settings | None = None) -> SparkSession:
    """Return the active SparkSession or build one configured for Delta Lake and UTC."""
    from pyspark.sql import SparkSession

    s = settings or settings_mod.load()
    if s.engine == "connect" and not _launched_by_spark_submit():
        active = SparkSession.getActiveSession()
        if active is not None and not is_connect(active):
            return active  # a classic session this process already runs (the tests' fixture)
        return _connect_session(app_name, s)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    for key, value in BASE_CONF.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.driver.extraJavaOptions", driver_java_options(s))
    from pyspark import SparkContext

    if SparkContext._active_spark_context is None and not _launched_by_spark_submit():
        # A fresh JVM will start in this process: it needs Java and the jars on its class path.
        check_java()
        builder = builder.master(s.spark_master or "local[*]")
        builder = builder.config("spark.jars", ",".join(delta_jar_paths(s)))
    for key, value in s.spark_conf.items():
        builder = builder.config(key, value)
    started = time.monotonic()
    session = builder.getOrCreate()
    SESSION_STARTUP_S["last"] = round(time.monotonic() - started, 3)
    return session


def _launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and tells PySpark through PYSPARK_GATEWAY_PORT."""
    return bool(settings_mod.environ_snapshot(("PYSPARK_GATEWAY_PORT",)))


def _connect_session(app_name: str, s: settings_mod.Settings) -> SparkSession:
    """A new Connect session on the engine (or the one this process already opened)."""
    from pyspark.sql import SparkSession

    from pitlake import engine

    for open_session in _CONNECT_SESSIONS:
        if not getattr(open_session, "is_stopped", False):
            return open_session
    remote = engine.url(s)
    host, _, port = remote.removeprefix("sc://").split("/")[0].partition(":")
    if not engine.port_open(int(port or 15002), host or "127.0.0.1", timeout=2.0):
        raise engine.EngineError(f"no Spark engine answers at {remote} (PITLAKE_HOME={s.home}): {engine.START_HINT}")
    started = time.monotonic()
    builder = SparkSession.builder.remote(remote).appName(app_name)
    for key in SESSION_CONF_KEYS:
        builder = builder.config(key, BASE_CONF[key])
    for key, value in s.spark_conf.items():
        if key.startswith(("spark.sql.", "spark.databricks.")) and key not in _STATIC_SQL_CONF:
            builder = builder.config(key, value)
    session = builder.create()
    # Spark's default retries an unreachable server for at least 10 minutes: a task whose engine
    # died would hang that long. A few seconds ride out a hiccup; then the task fails and says why.
    from pyspark.sql.connect.client.retries import DefaultPolicy

    session.client.set_retry_policies([DefaultPolicy(max_retries=4, initial_backoff=250, max_backoff=2000)])
    try:
        home = session.conf.get("spark.pitlake.home", None)
    except Exception as err:
        session.stop()
        if engine_lost(err):
            raise engine.EngineError(
                f"the Spark engine at {remote} does not answer ({_first_line(err)}): {engine.START_HINT}"
            ) from None
        raise
    if not s.spark_remote and home is not None and home != str(s.home):
        session.stop()
        raise engine.EngineError(
            f"the engine on {remote} belongs to PITLAKE_HOME={home}, not {s.home}: stop it "
            f"(`PITLAKE_HOME={home} python -m pitlake engine stop`) or set PITLAKE_ENGINE_PORT to a free port"
        )
    SESSION_STARTUP_S["last"] = round(time.monotonic() - started, 3)
    _CONNECT_SESSIONS.append(session)
    return session


_STATIC_SQL_CONF = {"spark.sql.extensions", "spark.sql.catalog.spark_catalog"}


def release() -> None:
    """Close the Connect sessions this process opened: the engine drops their temp views, confs,
    cached data and checkpoints. A no-op for a classic session (its JVM ends with the process)."""
    while _CONNECT_SESSIONS:
        session = _CONNECT_SESSIONS.pop()
        with contextlib.suppress(Exception):
            session.stop()


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no JVM, no SparkContext in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def engine_lost(err: BaseException) -> bool:
    """Whether ``err`` says the Connect engine is unreachable or went away mid-call."""
    text = f"{type(err).__name__}: {err}"
    markers = ("UNAVAILABLE", "Connection refused", "failed to connect", "Socket closed", "RST_STREAM",
               "CANCELLED", "Connection reset", "GOAWAY", "unavailable")  # fmt: skip
    names = {c.__name__ for c in type(err).__mro__}
    return bool(names & {"SparkConnectGrpcException", "RpcError", "_InactiveRpcError", "RetriesExceeded"}) and any(
        m in text for m in markers
    )


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
