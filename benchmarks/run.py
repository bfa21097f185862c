"""``make bench``: run the benchmarks and write their figures into ``docs/benchmarks.md``.

Usage: ``python -m benchmarks.run all|ingest|features|pit [--quick]``.

Each benchmark lives in ``benchmarks.<name>`` and exposes ``run(ctx) -> Section``.
The report keeps one block per benchmark between ``<!-- bench:<name> -->`` markers, so
running one benchmark rewrites only its own block. Every figure is measured in the run that
writes it; ratios compare against a baseline measured in the same run, never a stored number.
Plots go to ``docs/img/``.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core import settings as settings_mod
from pitlake.core.settings import REPO_ROOT

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

BENCHMARKS = (
    "ingest", "features", "pit", "validation", "orchestration", "backfill", "serving", "lineage", "experiments",
    "recommender",
)  # fmt: skip
REPORT = REPO_ROOT / "docs" / "benchmarks.md"
IMG_DIR = REPO_ROOT / "docs" / "img"

HEADER = """# Benchmarks

Written by `make bench` (`python -m benchmarks.run all`); `make bench-ingest` and
`python -m benchmarks.run <name>` rewrite one section. Every ratio is against a baseline
measured in the same run on the same machine. Timings are wall-clock seconds, best of the
repetitions stated in each section.
"""


@dataclass
class Section:
    title: str
    body: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What a benchmark gets: scratch settings (own PITLAKE_HOME), a lazily built Spark session."""

    settings: settings_mod.Settings
    quick: bool
    days: int | None = None  # the backfill benchmark's demo days (None: its default)
    spark_master: str = "local[2]"
    _spark: SparkSession | None = None

    def spark(self, shuffle_partitions: int = 8) -> SparkSession:
        if self._spark is None:
            import dataclasses

            from pitlake.core.spark import get_spark

            # The data benchmarks measure Spark's work on a JVM of their own (8 GiB, local[2]); the
            # engine's own figures are in the orchestration section.
            local = dataclasses.replace(
                self.settings,
                engine="classic",
                spark_master=self.spark_master,
                spark_conf={
                    "spark.driver.memory": "8g",
                    "spark.sql.shuffle.partitions": str(shuffle_partitions),
                    **self.settings.spark_conf,
                },
            )
            self._spark = get_spark("pitlake-bench", local)
        return self._spark

    def scratch(self, name: str) -> Path:
        path = self.settings.home / "bench" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeats`` timed calls (the usual way to damp noise on a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    import os

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )


def write_section(name: str, section: Section, report: Path = REPORT) -> None:
    text = report.read_text() if report.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n## {section.title}\n\n_{machine_line()}_\n\n{section.body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    found = pattern.search(text)
    text = pattern.sub(lambda _m: block, text) if found else text.rstrip() + "\n\n" + block + "\n"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=("all", *BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the harness, figures not reported")
    parser.add_argument("--days", type=int, help="backfill: how many demo days (default 30)")
    args = parser.parse_args(argv)
    names = BENCHMARKS if args.which == "all" else (args.which,)
    base = settings_mod.load()
    import dataclasses

    scratch_home = base.home / "bench-home"
    settings = dataclasses.replace(base, home=scratch_home)
    # The scratch home shares the installed jars.
    (scratch_home).mkdir(parents=True, exist_ok=True)
    jars_link = scratch_home / "jars"
    if not jars_link.exists():
        jars_link.symlink_to(base.jars_dir.resolve(), target_is_directory=True)
    ctx = Context(settings=settings, quick=args.quick, days=args.days)
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== bench {name} ==", flush=True)
        section: Section = module.run(ctx)
        print(section.body, flush=True)
        if not args.quick:
            write_section(name, section)
    if not args.quick:
        print(f"report: {REPORT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
