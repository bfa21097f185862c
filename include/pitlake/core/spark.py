"""The one SparkSession factory: Delta enabled, UTC.

By default (``PITLAKE_ENGINE=connect``) a session is a Spark Connect session on the warm engine
(:mod:`pitlake.core.engine`): one new session per task, released by :func:`release` when the task
ends. Under ``spark-submit`` (a cluster) or with ``PITLAKE_ENGINE=classic`` it is a classic
session whose JVM starts in this process; the master and jars then come from the submit command
line or from settings.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from pitlake.core import settings as settings_mod
from pitlake.core.jvm import BASE_CONF, check_java, delta_jar_paths, driver_java_options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Seconds the last get_spark() spent in getOrCreate (a new SparkContext: JVM side start-up, jars),
# or in opening a Connect session on the engine.
SESSION_STARTUP_S: dict[str, float] = {}
# Connect sessions this process opened: get_spark() returns the open one, release() closes them.
_CONNECT_SESSIONS: list[SparkSession] = []


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
    # The ingestion's record splitter runs in Python workers: not whatever `python3` is first on PATH.
    settings_mod.python_workers_use_this_interpreter()
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

    from pitlake.core import engine

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
