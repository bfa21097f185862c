"""One Airflow for the scheduler and the UI: a 3-day backfill created from the UI's own backfill
dialog, a day triggered from the "Trigger Dag" dialog after it, and the lake they built compared
with the library's build of the same four days (enough: the demo's late events reach back 2 days,
so the later runs rebuild feature days the earlier ones built).

Starts the Airflow components ``make airflow`` runs (``api-server``, ``dag-processor``, and the
``scheduler`` once the backfill exists; ``airflow standalone`` adds a triggerer, which no pitlake
DAG needs) once, on
127.0.0.1 with a free port, against a fresh ``PITLAKE_HOME`` in demo mode (2,000 customers: every
day has profile changes, which the bronze_customers gate requires), with the product's executor
(``WarmLocalExecutor``) and the run's shared Spark engine. The scheduler's own cron runs are off
(``use_job_schedule=False``): unpaused, the DAG would otherwise also run today's interval.

Debian's ``chromium`` is driven headless by Python Playwright (no browser download:
``executable_path`` points at the system binary). It logs in, creates the backfill as a user would
(date range, reprocess behaviour "Missing and Errored Runs", 2 active runs; the dialog's dry run
must announce 3 runs), waits for the three runs through the REST API, then triggers the fourth day
and saves a screenshot of the finished run (its path is printed; ``-s`` shows it). Without
chromium or Playwright the UI tests skip with the reason, and the backfill is created through the
REST API the dialog calls, so the scheduler's equivalence with the library is still checked.
Every process it starts runs in its own process group, stopped in the fixture's teardown by its id.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from pitlake.core.dates import day_range
from pitlake.core.settings import REPO_ROOT

from tests.builders import table_rows
from tests.services.processes import free_port, new_home, signal_group, teardown_on_sigterm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

FIRST, LAST = date(2026, 1, 1), date(2026, 1, 3)  # the backfill's data intervals [FIRST, LAST + 1)
BACKFILL_DAYS = (LAST - FIRST).days + 1
UI_DAY = LAST + timedelta(days=1)  # triggered from the UI once the backfill is done
DAG_ID = "feature_pipeline"
USER = "admin"
CUSTOMERS = "2000"  # the demo default: every day has profile changes (the bronze_customers gate needs some)
STARTUP_TIMEOUT_S = 240
BACKFILL_TIMEOUT_S = 30 * 60  # three days of sixteen tasks, two runs at once, on 2 shared cores (~4 min idle)
BACKFILL_ATTEMPTS = 3  # SQLite: a creation that meets "database is locked" answers 503 (see backfilled)
STALL_S = 12 * 60  # no task instance changed state or try for this long: the runs are stuck, say where
TASK_TIMEOUT_MINUTES = "8"  # a hung try (a task takes a minute here) is stopped and retried, not waited for
RUN_TIMEOUT_S = 720
SCREENSHOT_COPY = os.environ.get("PITLAKE_UI_SCREENSHOT_COPY")  # e.g. docs/img/airflow_ui_run.png
PAGES_SCREENSHOT_DIR = os.environ.get("PITLAKE_UI_PAGES_SCREENSHOT_DIR")  # e.g. docs/img: the pitlake pages'
ROWS = ".bootstrap-table table tbody tr[data-index]"  # a Data Docs results list, filled by bootstrap-table
# Columns that record where or when a row was written, not what it says.
WRITE_METADATA = {"computed_at", "source_file"}


def find_chromium() -> str | None:
    for candidate in (os.environ.get("PITLAKE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class LocalAirflow:
    """The Airflow processes of one test, their logs and how to reach them."""

    home: Path
    port: int
    password: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home.parent / "proc-logs"

    def start(self, name: str, args: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown stops it and its children
        )
        out.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():  # stragglers, and children (spark-submit JVMs) left in the group
            signal_group(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=10)

    def healthy(self, parts: tuple[str, ...] = ("metadatabase", "dag_processor")) -> bool:
        health = self.api("GET", "/api/v2/monitor/health")
        return all(health[part]["status"] == "healthy" for part in parts)

    def start_scheduler(self) -> None:
        self.start("scheduler", ["scheduler", "--skip-serve-logs"])
        self.wait_until(
            "the scheduler to be healthy", lambda: self.healthy(("metadatabase", "scheduler")), STARTUP_TIMEOUT_S
        )

    def logs_tail(self, lines: int = 40) -> str:
        """The tail of every component's log and of the task logs: what a failure message shows."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"--- {path.name} (last {lines} lines) ---\n" + _tail(path, lines))
        task_logs = sorted((self.home / "airflow" / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        for path in task_logs[-3:]:
            parts.append(f"--- task log {path.relative_to(self.home)} ---\n" + _tail(path, lines))
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                parts.append(f"--- {name} exited with {proc.returncode} ---")
        return "\n".join(parts)

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=20) as resp:
            return json.loads(resp.read() or b"null")

    def token(self) -> str:
        return str(self.api("POST", "/auth/token", {"username": USER, "password": self.password})["access_token"])

    def wait_until(self, what: str, check: Any, timeout: float, interval: float = 2.0,
                   explain: Callable[[], str] = str) -> Any:  # fmt: skip
        """Call ``check`` until it returns a truthy value; fail with the logs after ``timeout`` s, or at
        once on a request the API refuses (a 4xx other than 404, which means "not there yet")."""
        deadline = time.monotonic() + timeout
        last_error: object = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    exited = f"airflow {name} exited ({proc.returncode}) while waiting for {what}"
                    pytest.fail(f"{exited}\n{self.logs_tail()}")
            try:
                value = check()
                if value:
                    return value
                last_error = value
            except urllib.error.HTTPError as err:
                if 400 <= err.code < 500 and err.code != 404:
                    pytest.fail(f"the API refused a request while waiting for {what}: {err} {err.read()[:500]!r}")
                last_error = err
            except (OSError, KeyError, ValueError) as err:
                last_error = err
            time.sleep(interval)
        waited = f"timed out after {timeout:.0f} s waiting for {what} (last: {last_error!r})"
        pytest.fail(f"{waited}\n{explain()}\n{self.logs_tail()}")


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(unreadable: {err})"


@contextmanager
def running_airflow(root: Path, jars_dir: Path, engine_url: str, catalog_api: str) -> Iterator[LocalAirflow]:
    """api-server and dag-processor on 127.0.0.1:<free port> for a fresh home under ``root``; the
    caller starts the scheduler (:meth:`LocalAirflow.start_scheduler`)."""
    from pitlake.airflow.local import airflow_env
    from pitlake.core.settings import load

    home = new_home(root, jars_dir)
    (home / "airflow").mkdir()
    port = free_port()
    password = secrets.token_urlsafe(12)
    passwords_file = home / "airflow" / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({USER: password}) + "\n")  # the simple auth manager keeps it
    base = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PITLAKE_HOME": str(home),
        "PITLAKE_DEMO": "1",
        "PITLAKE_DEMO_CUSTOMERS": CUSTOMERS,
        "PITLAKE_SPARK_REMOTE": engine_url,  # the run's shared engine
        "PITLAKE_CATALOG_API_URL": catalog_api,  # the run's demo catalog API
        "PITLAKE_TASK_TIMEOUT_MINUTES": TASK_TIMEOUT_MINUTES,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),  # shared by api-server and scheduler
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Unpausing must not also start the scheduled run of yesterday: only the UI's run runs.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }
    env = airflow_env(_settings_for(home, load), base)
    af = LocalAirflow(home=home, port=port, password=password, env=env)
    migrate = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}"
    # A SIGTERM (CI cancelling, `timeout`) must still run the teardown below, not orphan the servers.
    with teardown_on_sigterm():
        try:
            af.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(port)])
            af.start("dag-processor", ["dag-processor"])
            af.wait_until("the API server and dag-processor to be healthy", af.healthy, STARTUP_TIMEOUT_S)
            af.wait_until(
                f"the dag-processor to parse {DAG_ID}",
                lambda: af.api("GET", f"/api/v2/dags/{DAG_ID}", token=af.token())["dag_id"] == DAG_ID,
                STARTUP_TIMEOUT_S,
            )
            yield af
        finally:
            af.stop()


def _settings_for(home: Path, load: Any) -> Any:
    """The settings the child processes will see (PITLAKE_HOME=home), without touching os.environ."""
    import dataclasses

    return dataclasses.replace(load(), home=home)


@pytest.fixture(scope="module")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, repo_settings: Any, engine_url: str, catalog_api: str
) -> Iterator[LocalAirflow]:
    with running_airflow(tmp_path_factory.mktemp("airflow"), repo_settings.jars_dir, engine_url, catalog_api) as af:
        yield af


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless chromium, or None (with the reason printed) where there is none to drive."""
    binary = find_chromium()
    if binary is None:
        print("\nno chromium binary (Debian: apt-get install chromium; .ci/run installs it as root)")
        yield None
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("\nPython playwright is not installed (it is in requirements-dev.txt: make install)")
        yield None
        return
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Any:
    if chromium is None:
        pytest.skip("no chromium or no Python playwright to drive it (see the printed reason)")
    return chromium


@contextmanager
def logged_in_page(browser: Any, af: LocalAirflow, shot: Path) -> Iterator[Any]:
    """A page logged in through the simple auth manager's form; a screenshot where a failure stopped it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # two shared cores: the UI may take a while to render
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="UTC", locale="en-US")
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{af.url}/dags/{DAG_ID}")
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(af.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Trigger")).to_be_visible()
        yield page
    except BaseException:  # pytest.fail too: a screenshot of where it stopped
        try:
            page.screenshot(path=str(shot))
            print(f"\nscreenshot at the failure: {shot}")
        except Exception as err:  # the page may be gone; the original failure matters
            print(f"\nno screenshot at the failure: {err}")
        raise
    finally:
        context.close()


def pick_datetime(page: Any, dialog: Any, field_index: int, value: date, title: str) -> None:
    """Fill one of the dialog's date-time inputs (a popover with a date and a time field, UTC)."""
    from playwright.sync_api import expect

    inputs = dialog.get_by_test_id("datetime-input")
    inputs.nth(field_index).click()
    # The popover just opened is the last in the page: on a slow page the previous field's popover may
    # not have closed yet (the "From" one, when "To" opens).
    page.get_by_placeholder("YYYY/MM/DD").last.fill(value.strftime("%Y/%m/%d"))
    page.get_by_placeholder("HH:mm").last.fill("00:00")
    dialog.get_by_text(title).click()  # closes the popover
    expect(inputs.nth(field_index)).to_have_text(value.strftime("%b %d, %Y 00:00"))


def runs(af: LocalAirflow) -> list[dict[str, Any]]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=logical_date&limit=100"
    return list(af.api("GET", path, token=af.token())["dag_runs"])


def create_backfill_from_the_dialog(browser: Any, af: LocalAirflow) -> int:
    """Fill and submit the dialog as a user would (the DAG unpaused already, see ``backfilled``); the
    HTTP status its request was answered."""
    from playwright.sync_api import expect

    with logged_in_page(browser, af, af.home.parent / "backfill_dialog.png") as page:
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Backfill", exact=True).click()  # the dialog's "Single Run" / "Backfill" choice
        expect(dialog.get_by_text("Date Range")).to_be_visible()
        title = f"Run Backfill - {DAG_ID}"
        expect(dialog.get_by_text(title)).to_be_visible()
        pick_datetime(page, dialog, 0, FIRST, title)
        pick_datetime(page, dialog, 1, LAST, title)
        dialog.get_by_text("Missing and Errored Runs").click()
        max_runs = dialog.locator("input[name=max_active_runs]")
        max_runs.fill("2")
        max_runs.blur()
        # The dialog's dry run (the REST API's) counts the runs the backfill will create.
        expect(dialog.get_by_text(f"{BACKFILL_DAYS} runs will be triggered.")).to_be_visible()
        # Unpaused already: the dialog offers no "Unpause on trigger", so sends no PATCH beside its POST.
        expect(dialog.get_by_text(f"Unpause {DAG_ID} on trigger")).to_have_count(0)
        page.screenshot(path=str(af.home.parent / "backfill_dialog.png"))
        # The click's own request, answered before the page closes; what it created is checked
        # through the REST API (backfill_lost), not by the toast.
        posted = lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/backfills")  # noqa: E731
        with page.expect_response(posted) as response:
            dialog.get_by_role("button", name="Run Backfill").click()
        if response.value.status != 200:
            print(f"\nthe dialog's backfill request answered {response.value.status}: {response.value.text()[:300]}")
        return int(response.value.status)


def create_backfill_through_the_api(af: LocalAirflow) -> int:
    """What the dialog posts, for a machine with no browser to drive it; the HTTP status of the post."""
    body = {"dag_id": DAG_ID, "from_date": f"{FIRST}T00:00:00Z", "to_date": f"{LAST}T00:00:00Z",
            "reprocess_behavior": "failed", "max_active_runs": 2}  # fmt: skip
    try:
        af.api("POST", "/api/v2/backfills", body, token=af.token())
    except urllib.error.HTTPError as err:
        print(f"\nthe backfill request answered {err.code}: {err.read()[:300]!r}")
        return err.code
    return 200


def backfill_lost(af: LocalAirflow, status: int) -> str | None:
    """None once the backfill's BACKFILL_DAYS runs exist (they are created with it, before any
    scheduler runs); otherwise what went wrong, with an empty backfill left behind cancelled."""
    timeout = 60 if status == 200 else 5
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([r for r in runs(af) if r["run_type"] == "backfill"]) == BACKFILL_DAYS:
            return None
        time.sleep(2)
    backfills = af.api("GET", f"/api/v2/backfills?dag_id={DAG_ID}", token=af.token())["backfills"]
    empty = [b["id"] for b in backfills if b.get("completed_at") is None]
    for backfill_id in empty:
        af.api("PUT", f"/api/v2/backfills/{backfill_id}/cancel", token=af.token())
    return (
        f"the request answered {status}; {len(backfills)} backfill(s) and {len(runs(af))} run(s) after {timeout} s"
        + (f"; cancelled the backfill(s) left with no run: {empty}" if empty else "")
    )


class Progress:
    """The task instances of the DAG's runs: fails the wait when none changed state or try for
    STALL_S, and tabulates them for a failure message."""

    def __init__(self, af: LocalAirflow) -> None:
        self.af = af
        self.last: tuple[tuple[str, ...], ...] = ()
        self.since = time.monotonic()

    def instances(self) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances?limit=500"
        return list(self.af.api("GET", path, token=self.af.token())["task_instances"])

    def check(self) -> None:
        now = tuple(sorted((t["dag_run_id"], t["task_id"], str(t["state"]), str(t["try_number"]))
                           for t in self.instances()))  # fmt: skip
        if now != self.last:
            self.last, self.since = now, time.monotonic()
        elif time.monotonic() - self.since > STALL_S:
            pytest.fail(f"no task instance moved for {STALL_S} s:\n{self.table()}\n{self.af.logs_tail()}")

    def table(self) -> str:
        try:
            rows = [f"{t['dag_run_id']:<40} {t['task_id']:<45} {t['state']!s:<12} try {t['try_number']}"
                    for t in self.instances() if t["state"] != "success"]  # fmt: skip
        except (OSError, KeyError, ValueError) as err:
            return f"(task instances unreadable: {err!r})"
        return "task instances not (yet) successful:\n" + ("\n".join(rows) or "(none)")


@pytest.fixture(scope="module")
def backfilled(airflow: LocalAirflow, chromium: Any) -> list[dict[str, Any]]:
    """The backfill of FIRST..LAST, created from the UI's dialog (or the REST API), run to success."""
    # The scheduler starts once the backfill exists. With SQLite, creating it can still meet
    # "database is locked" at once (a reader's lock upgrade, which no timeout waits for): Airflow
    # then answers 503 and deletes the runs it had created, and where that cleanup also meets the
    # lock it leaves a backfill with no run, which the scheduler would then close as done. A user
    # sees the error and tries again: so does this fixture, after cancelling such a backfill. The
    # dialog's own concurrent unpause caused it on 2 of 3 local runs (503 "Database is locked.
    # Backfill creation is not supported on SQLite under concurrent access"); the DAG is now unpaused
    # before the dialog opens, and the retry stays for any other writer.
    # Postgres has neither problem. The day after the backfill is triggered with the scheduler running.
    # Unpaused first (the DAG page's toggle, through its REST call): the dialog's "Unpause on
    # trigger" would send that PATCH at the same moment as the backfill's POST.
    airflow.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False}, token=airflow.token())
    for attempt in range(1, BACKFILL_ATTEMPTS + 1):
        if chromium is not None:
            status = create_backfill_from_the_dialog(chromium, airflow)
        else:
            status = create_backfill_through_the_api(airflow)
        lost = backfill_lost(airflow, status)
        if lost is None:
            break
        print(f"\nbackfill attempt {attempt}: {lost}", file=sys.stderr)
    else:
        pytest.fail(f"no backfill in {BACKFILL_ATTEMPTS} attempts: {lost}\n{airflow.logs_tail()}")
    airflow.start_scheduler()
    progress = Progress(airflow)

    def finished() -> list[dict[str, Any]] | None:
        found = runs(airflow)
        failed = [r["dag_run_id"] for r in found if r["state"] == "failed"]
        if failed:
            pytest.fail(f"backfill runs failed: {failed}\n{progress.table()}\n{airflow.logs_tail()}")
        progress.check()
        done = [r for r in found if r["state"] == "success"]
        return found if len(found) == BACKFILL_DAYS and len(done) == BACKFILL_DAYS else None

    started = time.monotonic()
    found = airflow.wait_until(
        f"the {BACKFILL_DAYS} backfill runs to succeed", finished, BACKFILL_TIMEOUT_S, interval=10,
        explain=progress.table,
    )  # fmt: skip
    print(f"\nbackfill of {BACKFILL_DAYS} days took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return found


@pytest.fixture(scope="module")
def ui_run(browser: Any, airflow: LocalAirflow, backfilled: list[dict[str, Any]]) -> dict[str, Any]:
    """UI_DAY triggered from the "Trigger Dag" dialog after the backfill, run to its end."""
    from playwright.sync_api import expect

    logical = UI_DAY + timedelta(days=1)  # a manual run of a daily CronDataIntervalTimetable covers [D, D+1)
    shot = airflow.home.parent / "airflow_ui_run.png"
    run_id = f"ui_test__{UI_DAY.isoformat()}"
    with logged_in_page(browser, airflow, shot) as page:
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text(f"Trigger Dag - {DAG_ID}")).to_be_visible()
        dialog.get_by_text("Single Run", exact=True).click()
        pick_datetime(page, dialog, 0, logical, f"Trigger Dag - {DAG_ID}")
        expect(dialog.get_by_text("Inferred from Logical Date and Timetable")).to_be_visible()
        dialog.get_by_text("Advanced Options").click()
        dialog.locator("input[name=dagRunId]").fill(run_id)
        dialog.get_by_role("button", name="Trigger").click()
        # Not the "Dag Run Triggered" toast: it lasts a few seconds and a slow page can miss it; the
        # REST API below shows the run the click created, with the interval the dialog chose.
        run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"
        run = airflow.wait_until("the triggered run", lambda: airflow.api("GET", run_path, token=airflow.token()), 60)

        def finished() -> dict[str, Any] | None:
            current = airflow.api("GET", run_path, token=airflow.token())  # a fresh token: runs outlive them
            return current if current["state"] in ("success", "failed") else None

        done = airflow.wait_until(f"run {run_id} to finish", finished, RUN_TIMEOUT_S, interval=5)
        # The run's page in the UI: every task green.
        page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{run_id}")
        from pitlake.features import VIEWS

        # generate_demo_data, three ingestions, then a build and a materialization per feature view
        expect(page.get_by_text(f"{4 + 2 * len(VIEWS)} Task Instances")).to_be_visible()
        expect(page.get_by_text("Success").first).to_be_visible()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(shot), full_page=False)
        print(f"\nscreenshot of the finished run: {shot}")
        if SCREENSHOT_COPY:
            shutil.copyfile(shot, REPO_ROOT / SCREENSHOT_COPY)
            print(f"copied to {SCREENSHOT_COPY}")
    assert done["state"] == "success", f"run {run_id} {done['state']}\n{airflow.logs_tail()}"
    return {"created": run, "done": done}


def test_the_backfill_dialog_creates_one_backfill_run_per_day(
    airflow: LocalAirflow, backfilled: list[dict[str, Any]]
) -> None:
    assert [r["run_type"] for r in backfilled] == ["backfill"] * BACKFILL_DAYS
    assert [r["data_interval_start"][:10] for r in backfilled] == [d.isoformat() for d in day_range(FIRST, LAST)]
    assert [r["data_interval_end"][:10] for r in backfilled] == [
        (d + timedelta(days=1)).isoformat() for d in day_range(FIRST, LAST)
    ]
    # The choices made in the dialog reached the server.
    [backfill] = airflow.api("GET", f"/api/v2/backfills?dag_id={DAG_ID}", token=airflow.token())["backfills"]
    assert (backfill["reprocess_behavior"], backfill["max_active_runs"]) == ("failed", 2), backfill
    assert backfill["from_date"][:10] == FIRST.isoformat() and backfill["to_date"][:10] == LAST.isoformat(), backfill


def test_no_deprecation_warning_from_our_code_in_the_task_logs(
    airflow: LocalAirflow, backfilled: list[dict[str, Any]]
) -> None:
    """Airflow logs a warning for a deprecated import with the file that made it: none may be ours."""
    ours = (str(REPO_ROOT / "dags"), str(REPO_ROOT / "include"), str(REPO_ROOT / "jobs"))
    logs = sorted((airflow.home / "airflow" / "logs").rglob("*.log"))
    assert logs, "no task logs written"
    found = [
        f"{path.name}: {line.strip()[:300]}"
        for path in logs
        for line in path.read_text(errors="replace").splitlines()
        if "deprecat" in line.lower() and any(root in line for root in ours)
    ]
    assert found == []


def test_a_day_triggered_from_the_ui_after_the_backfill(airflow: LocalAirflow, ui_run: dict[str, Any]) -> None:
    created = ui_run["created"]
    assert created["run_type"] == "manual", created
    assert created["data_interval_start"].startswith(UI_DAY.isoformat()), created  # [D, D + 1) from the timetable
    assert created["data_interval_end"].startswith((UI_DAY + timedelta(days=1)).isoformat()), created
    # The run did the day's work: ingestion of exactly UI_DAY, Delta versions reported.
    outputs = (airflow.home / "runs" / "airflow" / DAG_ID / created["dag_run_id"]).glob("*.json")
    results = {p.name.split(".")[0]: json.loads(p.read_text()) for p in outputs}
    assert results["ingest_events"]["ingest_date"] == UI_DAY.isoformat(), results["ingest_events"]
    assert results["ingest_events"]["accepted"] > 0
    assert results["build_customer_activity"]["dates_built"][-1] == UI_DAY.isoformat()


def test_the_scheduler_runs_equal_the_library_build(
    airflow: LocalAirflow,
    backfilled: list[dict[str, Any]],
    chromium: Any,
    request: pytest.FixtureRequest,
    spark: Any,
    repo_settings: Any,
    catalog_api: str,
    tmp_path: Path,
) -> None:
    """The lake the backfill (and the UI's day after it) built equals the same days built in this
    process by the library calls the jobs make: each day ingested in turn, each feature view in one
    range build (which tests/spark/test_features.py proves equal to day by day)."""
    from deltalake import DeltaTable
    from pitlake.demo.landing import generate_range
    from pitlake.features import VIEWS
    from pitlake.features.engine import affected_start, build
    from pitlake.ingest import ingest_customers, ingest_events, ingest_products

    last = LAST
    if chromium is not None:
        request.getfixturevalue("ui_run")
        last = UI_DAY
    reference = dataclasses.replace(
        repo_settings, home=tmp_path / "reference", demo_customers=int(CUSTOMERS), catalog_api_url=catalog_api
    )
    generate_range(reference, FIRST, last)
    days = list(day_range(FIRST, last))
    for day in days:
        ingest_events(spark, reference, day)
        ingest_customers(spark, reference, day)
        ingest_products(spark, reference, day)
    # Each view in one range build over every feature day the daily runs touched (late events reach
    # back up to 2 days, inside the 3-day lateness window, so the daily runs rebuilt each such day).
    for view in VIEWS:
        start = min(affected_start(spark, reference, view, day) for day in days)
        build(spark, reference, view, start, last)

    lake = airflow.home / "lake"
    ingest_dates = set(DeltaTable(str(lake / "bronze" / "events")).to_pandas(columns=["ingest_date"])["ingest_date"])
    assert ingest_dates == set(days)
    for table in ("bronze/events", "bronze/customers", "bronze/products", *(v.table.replace(".", "/") for v in VIEWS)):
        ours, theirs = (
            table_rows(lake / table, drop=WRITE_METADATA),
            table_rows(reference.lake / table, drop=WRITE_METADATA),
        )
        assert len(ours) == len(theirs), f"{table}: {len(ours)} rows from Airflow, {len(theirs)} in the reference"
        assert ours == theirs, f"{table}: the rows Airflow's runs built differ from the reference build"


@pytest.fixture(scope="module")
def champion(airflow: LocalAirflow, ui_run: dict[str, Any]) -> Any:
    """A model trained and registered in the Airflow's home the way train_model's task does it (lineage
    manifest, gate, aliases), on a training set written with delta-rs (no Spark)."""
    from pitlake.core.settings import load
    from pitlake.training.train import train

    from tests.spark.test_training import synthetic, write_training_set

    settings = dataclasses.replace(_settings_for(airflow.home, load), mlflow_tracking_uri=None)
    frame, _ = synthetic(customers=150)
    write_training_set(settings, frame, "ui-test")
    return train(settings, training_set_id="ui-test")


def _shot(page: Any, af: LocalAirflow, name: str) -> None:
    path = af.home.parent / name
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path), full_page=False)
    print(f"\nscreenshot: {path}")
    if PAGES_SCREENSHOT_DIR:
        shutil.copyfile(path, REPO_ROOT / PAGES_SCREENSHOT_DIR / name)


def test_the_pitlake_pages_show_the_catalog_the_champions_lineage_and_offline_data_docs(
    browser: Any, airflow: LocalAirflow, ui_run: dict[str, Any], champion: Any
) -> None:
    """Logged in, the Plugins menu's pitlake pages (frames of the plugin's app) show the feature catalog
    and the champion's lineage; the Data Docs the gates wrote render their results with every request
    outside the Airflow server aborted (no internet); an anonymous request is refused."""
    from playwright.sync_api import expect

    with logged_in_page(browser, airflow, airflow.home.parent / "pitlake_pages_failure.png") as page:
        page.goto(f"{airflow.url}/plugin/pitlake-catalog")
        catalog = page.frame_locator("iframe[title='Feature catalog']")
        expect(catalog.locator("#customer_activity-v1")).to_be_visible()
        expect(catalog.locator("code", has_text="count_purchases_7d").first).to_be_visible()
        _shot(page, airflow, "pitlake_catalog.png")

        page.goto(f"{airflow.url}/plugin/pitlake-models")
        models = page.frame_locator("iframe[title='Models']")
        models.get_by_role("link", name="champion's lineage").click()
        expect(models.get_by_text(f"Lineage of purchase_propensity v{champion.model_version}")).to_be_visible()
        expect(models.get_by_text("features.customer_activity").first).to_be_visible()
        _shot(page, airflow, "pitlake_lineage.png")

        page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{ui_run['done']['dag_run_id']}/plugin/pitlake-run")
        commits = page.frame_locator("iframe[title='Lake commits']")
        expect(commits.get_by_text("bronze.events").first).to_be_visible()
        _shot(page, airflow, "pitlake_run.png")

        outside: list[str] = []

        def local_only(route: Any) -> None:
            if route.request.url.startswith(airflow.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.context.route("**/*", local_only)
        page.goto(f"{airflow.url}/pitlake/data-docs/index.html")
        expect(page.locator(ROWS).first).to_be_visible()  # bootstrap-table, from the site's own copy
        assert "apple-system" in page.evaluate("getComputedStyle(document.body).fontFamily")  # bootstrap's CSS
        assert outside == [], outside
    # Without a login, the pages refuse.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{airflow.url}/pitlake/catalog", timeout=20)
    assert refused.value.code == 401
