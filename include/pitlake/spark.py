"""The one SparkSession factory: Delta enabled, UTC, ``local[*]`` unless told otherwise.

Under ``spark-submit`` the master and jars come from the submit command line; in a plain
Python process (tests, notebooks) they come from settings.
"""

from __future__ import annotations

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

# Seconds the last get_spark() spent in getOrCreate (a new SparkContext: JVM side start-up, jars).
SESSION_STARTUP_S: dict[str, float] = {}

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


def get_spark(app_name: str = "pitlake", settings: settings_mod.Settings | None = None) -> SparkSession:
    """Return the active SparkSession or build one configured for Delta Lake and UTC."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    s = settings or settings_mod.load()
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
