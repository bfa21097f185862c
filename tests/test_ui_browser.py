"""The Airflow UI in a real browser: log in, trigger ``feature_pipeline`` for one day, watch it succeed.

Starts the Airflow components ``make airflow`` runs (``api-server``, ``scheduler``, ``dag-processor``;
``airflow standalone`` adds a triggerer, which no pitlake DAG needs) on 127.0.0.1 with a free port
against a fresh ``PITLAKE_HOME`` in demo mode, drives Debian's ``chromium`` headless with Python
Playwright (no browser download: ``executable_path`` points at the system binary), triggers the run
from the "Trigger Dag" dialog with the logical date that covers the day, waits for the run through
the REST API, and saves a screenshot of the finished run (its path is printed; ``-s`` shows it).

Skipped with the reason when Playwright or a chromium binary is missing (``.ci/run`` installs
Debian's ``chromium``). Every process it starts runs in its own process group, stopped in the
fixture's teardown by its id.
"""

from __future__ import annotations

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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from pitlake.settings import REPO_ROOT

from tests.services import free_port, new_home, signal_group, teardown_on_sigterm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

DAY = date(2026, 1, 1)  # the run covers the data interval [DAY, DAY + 1)
DAG_ID = "feature_pipeline"
USER = "admin"
STARTUP_TIMEOUT_S = 240
RUN_TIMEOUT_S = 720
SCREENSHOT_COPY = os.environ.get("PITLAKE_UI_SCREENSHOT_COPY")  # e.g. docs/img/airflow_ui_run.png


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

    def wait_until(self, what: str, check: Any, timeout: float, interval: float = 2.0) -> Any:
        """Call ``check`` until it returns a truthy value; fail with the logs after ``timeout`` s."""
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
            except (OSError, urllib.error.URLError, KeyError, ValueError) as err:
                last_error = err
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last_error!r})\n{self.logs_tail()}")


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(unreadable: {err})"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, repo_settings: Any, engine_url: str) -> Iterator[LocalAirflow]:
    with running_airflow(tmp_path_factory.mktemp("ui"), repo_settings.jars_dir, engine_url) as af:
        yield af


@contextmanager
def running_airflow(root: Path, jars_dir: Path, engine_url: str) -> Iterator[LocalAirflow]:
    """api-server, scheduler and dag-processor on 127.0.0.1:<free port> for a fresh home under ``root``."""
    from pitlake.airflow.local import airflow_env
    from pitlake.settings import load

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
        "PITLAKE_DEMO_CUSTOMERS": "50",
        "PITLAKE_SPARK_REMOTE": engine_url,  # the run's shared engine
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),  # shared by api-server and scheduler
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
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
            af.start("scheduler", ["scheduler", "--skip-serve-logs"])
            af.start("dag-processor", ["dag-processor"])

            def healthy() -> bool:
                health = af.api("GET", "/api/v2/monitor/health")
                return all(
                    health[part]["status"] == "healthy" for part in ("metadatabase", "scheduler", "dag_processor")
                )

            af.wait_until("the API server, scheduler and dag-processor to be healthy", healthy, STARTUP_TIMEOUT_S)
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
def browser() -> Iterator[Any]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary (Debian: apt-get install chromium; .ci/run installs it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Python playwright is not installed (it is in requirements-dev.txt: make install)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_trigger_feature_pipeline_from_the_ui(browser: Any, airflow: LocalAirflow) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # two shared cores: the UI may take a while to render
    logical = DAY + timedelta(days=1)  # a manual run of a daily CronDataIntervalTimetable covers [D, D+1)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="UTC", locale="en-US")
    page = context.new_page()
    page.set_default_timeout(60_000)
    shot = airflow.home.parent / "airflow_ui_run.png"
    run_id = f"ui_test__{DAY.isoformat()}"
    try:
        # Log in through the simple auth manager's form.
        page.goto(f"{airflow.url}/dags/{DAG_ID}")
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(airflow.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Trigger")).to_be_visible()

        # Trigger a single run for the day from the "Trigger Dag" dialog (it also unpauses the DAG).
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text(f"Trigger Dag - {DAG_ID}")).to_be_visible()
        dialog.get_by_test_id("datetime-input").click()  # a popover with a date and a time field (UTC)
        page.get_by_placeholder("YYYY/MM/DD").fill(logical.strftime("%Y/%m/%d"))
        page.get_by_placeholder("HH:mm").fill("00:00")
        dialog.get_by_text(f"Trigger Dag - {DAG_ID}").click()  # closes the popover
        expect(dialog.get_by_test_id("datetime-input")).to_have_text(logical.strftime("%b %d, %Y 00:00"))
        expect(dialog.get_by_text("Inferred from Logical Date and Timetable")).to_be_visible()
        unpause = dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")
        if unpause.count() and not unpause.is_checked():
            dialog.get_by_text(f"Unpause {DAG_ID} on trigger").click()
        dialog.get_by_text("Advanced Options").click()
        dialog.locator("input[name=dagRunId]").fill(run_id)
        dialog.get_by_role("button", name="Trigger").click()
        # Not the "Dag Run Triggered" toast: it lasts a few seconds and a slow page can miss it; the
        # REST API below shows the run the click created, with the interval the dialog chose.

        run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"
        run = airflow.wait_until("the triggered run", lambda: airflow.api("GET", run_path, token=airflow.token()), 60)
        assert run["run_type"] == "manual", run
        assert run["data_interval_start"].startswith(DAY.isoformat()), run  # [DAY, DAY + 1) from the timetable
        assert run["data_interval_end"].startswith(logical.isoformat()), run

        def finished() -> dict[str, Any] | None:
            current = airflow.api("GET", run_path, token=airflow.token())  # a fresh token: runs outlive them
            return current if current["state"] in ("success", "failed") else None

        done = airflow.wait_until(f"run {run['dag_run_id']} to finish", finished, RUN_TIMEOUT_S, interval=10)

        # The run's page in the UI: every task green.
        page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{run_id}")
        expect(page.get_by_text("5 Task Instances")).to_be_visible()
        expect(page.get_by_text("Success").first).to_be_visible()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(shot), full_page=False)
        print(f"\nscreenshot of the finished run: {shot}")
        if SCREENSHOT_COPY:
            shutil.copyfile(shot, REPO_ROOT / SCREENSHOT_COPY)
            print(f"copied to {SCREENSHOT_COPY}")
        assert done["state"] == "success", f"run {run_id} {done['state']}\n{airflow.logs_tail()}"
    except BaseException:  # pytest.fail too: a screenshot of where it stopped
        try:
            page.screenshot(path=str(shot))
            print(f"\nscreenshot at the failure: {shot}")
        except Exception as err:  # the page may be gone; the original failure matters
            print(f"\nno screenshot at the failure: {err}")
        raise
    finally:
        context.close()

    # The run did the day's work: ingestion of exactly DAY, Delta versions reported.
    outputs = (airflow.home / "runs" / "airflow").rglob("*.json")
    results = {p.name.split(".")[0]: json.loads(p.read_text()) for p in outputs}
    assert results["ingest_events"]["ingest_date"] == DAY.isoformat(), results["ingest_events"]
    assert results["ingest_events"]["accepted"] > 0
    assert results["build_customer_activity"]["dates_built"][-1] == DAY.isoformat()
