"""The shared frame of every ``jobs/<stage>.py`` entry point: arguments, logging, result, exit code.

A job prints its result as one JSON line prefixed with ``PITLAKE_RESULT`` and writes it to
``--result-file`` (default ``$PITLAKE_HOME/runs/<stage>/<key>.json``) so an Airflow task can
attach the committed Delta version to the Asset event it emits.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pitlake.core import settings as settings_mod
from pitlake.core.errors import PitlakeError

RESULT_PREFIX = "PITLAKE_RESULT "


def result_path(settings: settings_mod.Settings, stage: str, key: str) -> Path:
    """``runs/<stage>/<key>.json``; characters of ``key`` outside a file name's safe set become ``_``, so a
    key built from arguments (a model name, a training set id) never points outside ``runs/<stage>``."""
    safe = re.sub(r"[^A-Za-z0-9_.:=-]", "_", key).lstrip(".") or "_"
    return settings.runs_dir / stage / f"{safe}.json"


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def add_interval_args(parser: argparse.ArgumentParser, what: str) -> None:
    """``--date D`` (one data interval) or ``--start D1 --end D2`` (a range, both days included)."""
    parser.add_argument("--date", help=f"{what}, YYYY-MM-DD (the data interval start)")
    parser.add_argument("--start", help="first day of a backfill range, YYYY-MM-DD")
    parser.add_argument("--end", help="last day of a backfill range (inclusive), YYYY-MM-DD")


def interval(args: argparse.Namespace) -> tuple[date, date]:
    """The ``(start, end)`` days of :func:`add_interval_args`' arguments; one-line errors for misuse."""
    from pitlake.core.dates import parse_date
    from pitlake.core.errors import ConfigError

    if args.date and (args.start or args.end):
        raise ConfigError("give either --date or --start/--end, not both")
    if args.date:
        day = parse_date(args.date, what="--date")
        return day, day
    if args.start and args.end:
        start, end = parse_date(args.start, what="--start"), parse_date(args.end, what="--end")
        if end < start:
            raise ConfigError(f"--end {end} is before --start {start}: swap them")
        return start, end
    raise ConfigError("give --date D, or --start D1 --end D2 for a range")


def table_versions_arg(pairs: Sequence[str], flag: str) -> dict[str, int]:
    """``["bronze.events=12", ...]`` (a repeatable ``TABLE=VERSION`` flag) as ``{table: version}``."""
    from pitlake.core.errors import ConfigError

    out: dict[str, int] = {}
    for pair in pairs:
        table, sep, version = pair.partition("=")
        if not sep or not version.isdigit():
            raise ConfigError(f"{flag} {pair!r}: use TABLE=VERSION, e.g. bronze.events=12")
        out[table] = int(version)
    return out


def json_arg(value: str | None, flag: str, kind: type[dict[str, Any]] | type[list[Any]]) -> Any:
    """A flag's JSON value (None when not given); a one-line error unless it parses to ``kind``."""
    from pitlake.core.errors import ConfigError

    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ConfigError(f"{flag} must be JSON, got {value[:60]!r}") from None
    if not isinstance(parsed, kind):
        raise ConfigError(f"{flag} must be a JSON {'object' if kind is dict else 'list'}")
    return parsed


# A job whose commit lost to a concurrent writer reruns from the start (every job's writes are
# interval-scoped replaces, so a rerun is idempotent): CONFLICT_ATTEMPTS in all, backoff doubling.
CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_S = 2.0


def run_with_conflict_retry(
    stage: str,
    args: argparse.Namespace,
    settings: settings_mod.Settings,
    body: Callable[[argparse.Namespace, settings_mod.Settings], tuple[str, dict[str, Any]]],
) -> tuple[str, dict[str, Any]]:
    """``body`` under the job's writer name, rerun after a :class:`~pitlake.core.delta_io.WriteConflict`."""
    import random

    from pitlake.core import delta_io

    delta_io.WRITER["name"] = f"pitlake {stage} run {args.run_id}"
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            key, result = body(args, settings)
        except delta_io.WriteConflict as err:
            if attempt == CONFLICT_ATTEMPTS:
                raise err.after(attempt) from err
            wait = CONFLICT_BACKOFF_S * 2 ** (attempt - 1) * (1 + random.random() / 2)
            print(f"pitlake {stage}: {err}; rerunning the job in {wait:.1f} s "
                  f"(attempt {attempt + 1} of {CONFLICT_ATTEMPTS})", file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(wait)
            continue
        return key, {**result, "conflict_retries": attempt - 1} if attempt > 1 else result
    raise AssertionError("unreachable")


def start_lineage(stage: str, args: argparse.Namespace, settings: settings_mod.Settings) -> Any:
    """The job's OpenLineage run, started: named ``<stage>`` or ``<stage>.<view or use case>``, the
    child of ``--lineage-parent`` (its Airflow task) when given."""
    from pitlake.core.openlineage import JobRun, RunRef, set_current

    subject = getattr(args, "view", None) or getattr(args, "use_case", None)
    name = f"{stage}.{str(subject).split(':')[0]}" if subject else stage
    parent = RunRef.parse(args.lineage_parent)
    root = RunRef.parse(args.lineage_root, "--lineage-root")
    run = JobRun(settings, name, parent=parent, root=root or parent, facets={"pitlake_job": {"stage": stage,
                 "airflow_run_id": args.run_id}})  # fmt: skip
    run.start()
    set_current(run)
    return run


def run(
    stage: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, settings_mod.Settings], tuple[str, dict[str, Any]]],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv``, run ``body`` (which returns ``(result_key, result)``), report, return an exit code."""
    parser.add_argument("--result-file", type=Path, help="where to write the JSON result (default under runs/)")
    parser.add_argument("--run-id", default="manual", help="the Airflow run id, recorded with validation results")
    parser.add_argument("--lineage-parent", help="OpenLineage parent run: NAMESPACE/JOB/RUN_ID (the Airflow task's)")
    parser.add_argument("--lineage-root", help="OpenLineage root run: NAMESPACE/JOB/RUN_ID (the Airflow DAG run's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    from pitlake.core.openlineage import JobRun
    from pitlake.core.spark import engine_lost, release

    lineage: JobRun | None = None
    try:
        settings = settings_mod.load()  # a bad environment value: one line, like a bad argument
        lineage = start_lineage(stage, args, settings)
        key, result = run_with_conflict_retry(stage, args, settings, body)
    except PitlakeError as err:
        if lineage is not None:
            lineage.fail(err)
        report = getattr(err, "report", None)
        if report is not None:  # a failed validation gate: the one-screen summary, then the one-line cause
            print(report.summary(), flush=True)
        print(f"pitlake {stage}: error: {err}", file=sys.stderr)
        if args.result_file:  # tells the Airflow operator: a deterministic failure, do not retry
            retryable = bool(getattr(err, "retryable", False))
            write_result(
                args.result_file,
                {"stage": stage, "error": str(err), "kind": type(err).__name__, "retryable": retryable},
            )
        return 2
    except Exception as err:
        if lineage is not None:
            lineage.fail(err)
        if not engine_lost(err):
            raise
        from pitlake.core.engine import START_HINT, url

        # The engine died or was stopped mid-task: Delta committed nothing partial, a retry can succeed.
        message = (
            f"the Spark engine at {url(settings)} went away during the job ({type(err).__name__}); "
            f"no Delta commit of this job is partial. {START_HINT[0].upper() + START_HINT[1:]}, then retry the task"
        )
        print(f"pitlake {stage}: error: {message}", file=sys.stderr)
        if args.result_file:
            write_result(args.result_file, {"stage": stage, "error": message, "kind": "EngineLost", "retryable": True})
        return 3
    finally:
        release()  # the task's Connect session: the engine drops its views, confs and cached data
        from pitlake.core.openlineage import set_current

        set_current(None)
    # Where a job's time goes: its body (including the Spark session's start-up), against the
    # task's wall time in Airflow, whose difference is the spark-submit JVM and Python start.
    from pitlake.core.spark import SESSION_STARTUP_S

    assert lineage is not None  # set before the body ran
    lineage.complete(result.get("lineage"))
    result = {**result, "openlineage": {"namespace": lineage.namespace, "job": lineage.name, "run_id": lineage.run_id}}
    timing = {"body_s": round(time.monotonic() - started, 3), "spark_session_start_s": SESSION_STARTUP_S.get("last")}
    timing["lineage_s"] = round(lineage.emit_seconds, 4)  # part of body_s: the cost of emitting lineage
    gates = [v["seconds"] for v in result.get("validation") or [] if isinstance(v, dict) and "seconds" in v]
    if gates:
        timing["gate_s"] = round(sum(gates), 3)  # part of body_s
    result = {"stage": stage, **result, "timing": timing}
    write_result(args.result_file or result_path(settings, stage, key), result)
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0
