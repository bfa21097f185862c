"""Resolve the Delta Lake jars from Maven Central once, into ``$PITLAKE_HOME/jars``, and check them.

First choice is Spark's own Ivy resolver (only Java needed); Maven's ``dependency:copy`` is
the fallback where Ivy cannot reach the repository. Later Spark starts only read the folder.
Every jar must have the SHA-256 recorded in ``conf/delta-jars.sha256`` (checked against Maven
Central's published SHA-1 when recorded): after a download a mismatch deletes the jar and fails,
and ``make install`` re-checks the jars already there.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pitlake.core import settings as settings_mod
from pitlake.core.errors import ConfigError
from pitlake.core.jvm import check_java

log = logging.getLogger(__name__)

_IVY_SCRIPT = """
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("pitlake-resolve-jars")
         .config("spark.jars.packages", sys.argv[1]).config("spark.jars.ivy", sys.argv[2])
         .config("spark.ui.enabled", "false").getOrCreate())
spark.stop()
"""


_WANTED_PREFIXES = ("delta-spark_", "delta-storage-")
CHECKSUMS = settings_mod.REPO_ROOT / "conf" / "delta-jars.sha256"


def expected_checksums(path: Path = CHECKSUMS) -> dict[str, str]:
    """``{jar file name: sha256}`` from a ``sha256sum``-format file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            out[name.lstrip("*")] = digest.lower()
    return out


def verify_jars(jars_dir: Path, expected: dict[str, str] | None = None, *, delete_bad: bool = False) -> None:
    """Every Delta jar in ``jars_dir`` has its recorded SHA-256; a one-line :class:`ConfigError` otherwise."""
    expected = expected_checksums() if expected is None else expected
    for jar in sorted(jars_dir.glob("*.jar")):
        if not jar.name.startswith(_WANTED_PREFIXES):
            continue
        want = expected.get(jar.name)
        if want is None:
            raise ConfigError(
                f"{jar} has no SHA-256 recorded in {CHECKSUMS.name}: record the checksum of the version in use "
                f"(pitlake expects Delta {settings_mod.DELTA_VERSION}) or remove the jar"
            )
        got = hashlib.sha256(jar.read_bytes()).hexdigest()
        if got != want:
            if delete_bad:
                jar.unlink()
            raise ConfigError(
                f"{jar.name} has SHA-256 {got}, expected {want} ({CHECKSUMS.name}): "
                + ("deleted it; " if delete_bad else f"delete {jar} and ")
                + "rerun `make install` to download it again"
            )


def _have_all(jars_dir: Path) -> bool:
    names = [p.name for p in jars_dir.glob("*.jar")]
    return all(any(n.startswith(prefix) for n in names) for prefix in _WANTED_PREFIXES)


def _resolve_with_ivy(jars_dir: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix="pitlake-ivy-") as ivy:
        proc = subprocess.run(
            [sys.executable, "-c", _IVY_SCRIPT, ",".join(settings_mod.DELTA_PACKAGES), ivy],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        resolved = list((Path(ivy) / "jars").glob("*.jar"))
        if proc.returncode != 0 or not resolved:
            log.warning("Ivy resolution failed (exit %s): %s", proc.returncode, proc.stderr[-2000:])
            return False
        for jar in resolved:
            # Ivy names jars group_artifact-version.jar. Only Delta's own two jars go on the class
            # path: its optional transitive jars (Hadoop, Parquet, Jackson) would shadow Spark's.
            name = jar.name.split("_", 1)[1] if jar.name.startswith("io.delta_") else jar.name
            if name.startswith(_WANTED_PREFIXES):
                shutil.copy2(jar, jars_dir / name)
    return True


def _resolve_with_maven(jars_dir: Path) -> bool:
    mvn = shutil.which("mvn")
    if not mvn:
        return False
    for coordinate in settings_mod.DELTA_PACKAGES:
        proc = subprocess.run(
            [mvn, "-q", "-B", "-U", "dependency:copy", f"-Dartifact={coordinate}", f"-DoutputDirectory={jars_dir}"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            log.warning("mvn dependency:copy %s failed: %s", coordinate, proc.stdout[-2000:])
            return False
    return True


def ensure_delta_jars(settings: settings_mod.Settings | None = None) -> list[Path]:
    """Make sure the Delta jars are in ``jars_dir``; download only when they are not."""
    s = settings or settings_mod.load()
    s.jars_dir.mkdir(parents=True, exist_ok=True)
    if _have_all(s.jars_dir):
        verify_jars(s.jars_dir)
        return s.delta_jars()
    check_java()
    if not (_resolve_with_ivy(s.jars_dir) and _have_all(s.jars_dir)) and not (
        _resolve_with_maven(s.jars_dir) and _have_all(s.jars_dir)
    ):
        raise ConfigError(
            f"could not download {', '.join(settings_mod.DELTA_PACKAGES)} from Maven Central: check network access "
            f"to the Maven repository, or copy the two jars into {s.jars_dir}"
        )
    verify_jars(s.jars_dir, delete_bad=True)
    return s.delta_jars()
