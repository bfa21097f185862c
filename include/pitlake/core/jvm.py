"""The JVM side of a Spark session, known without starting one: Java 17+, the Delta jars, pitlake's
driver options and the base Spark conf every session and the engine carry."""

from __future__ import annotations

import re
import shutil
import subprocess

from pitlake.core import settings as settings_mod
from pitlake.core.errors import ConfigError
from pitlake.core.settings import REPO_ROOT

MIN_JAVA = 17

LOG4J_CONF = REPO_ROOT / "conf" / "log4j2.properties"
JAVA_OPTIONS = f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{LOG4J_CONF}"
# For short-lived drivers on small data (one spark-submit per Airflow task, tests): the C1 JIT only
# and the serial collector cut a task's CPU time by about a third; a long-lived session on real data
# wants the defaults (C2), so this is an opt-in through PITLAKE_DRIVER_JAVA_OPTIONS.
SHORT_LIVED_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

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
