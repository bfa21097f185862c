"""pitlake's OpenLineage emitter without Spark: the run identity, the transports, and that lineage
never fails the job it describes."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from pitlake.core import settings as settings_mod
from pitlake.core.errors import ConfigError
from pitlake.core.openlineage import RunRef, completed_runs, job_run, lineage, other_dataset, read_events

PARENT = "pitlake/feature_pipeline.ingest_events/01929f3a-0000-7000-8000-000000000001"


def test_a_parent_is_namespace_job_and_a_uuid_and_anything_else_is_one_line():
    ref = RunRef.parse(PARENT)
    assert ref == RunRef("pitlake", "feature_pipeline.ingest_events", "01929f3a-0000-7000-8000-000000000001")
    assert str(ref) == PARENT
    assert RunRef.parse(None) is None
    for bad in ("pitlake/job", "pitlake/job/not-a-uuid", "/job/01929f3a-0000-7000-8000-000000000001"):
        with pytest.raises(ConfigError, match=r"--lineage-parent .*: use NAMESPACE/JOB_NAME/RUN_ID"):
            RunRef.parse(bad)


def test_by_default_each_event_is_a_file_under_lineage(lake):
    with job_run(lake, "ingest_events", parent=RunRef.parse(PARENT)) as run:
        run.io = lineage([other_dataset("file", "/landing/events/date=2026-01-05")], [])
    events = read_events(lake.lineage_dir)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert len(list(lake.lineage_dir.glob(f"pitlake-{run.run_id}-*.json"))) == 2
    [done] = completed_runs(events)
    assert done["job"] == "ingest_events" and done["parent"] == PARENT
    assert done["inputs"] == [("/landing/events/date=2026-01-05", None)] and done["outputs"] == []


def test_a_failing_job_emits_fail_with_its_message_and_the_error_still_raises(lake):
    with pytest.raises(ValueError, match="bad day"), job_run(lake, "build_labels"):
        raise ValueError("bad day\nsecond line")
    events = read_events(lake.lineage_dir)
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "bad day"


def test_disabled_emits_nothing(lake):
    with job_run(dataclasses.replace(lake, openlineage_disabled=True), "ingest_events"):
        pass
    assert not lake.lineage_dir.exists()


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_openlineage_url_sends_the_events_to_a_server_like_marquez(lake, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("PITLAKE_HOME", str(lake.home))
        settings = settings_mod.load()
        with job_run(settings, "ingest_events"):
            pass
    finally:
        server.shutdown()
    assert [(path, body["eventType"]) for path, body in _Collector.received] == [
        ("/api/v1/lineage", "START"),
        ("/api/v1/lineage", "COMPLETE"),
    ]
    assert not settings.lineage_dir.exists()


def test_an_unreachable_server_is_one_warning_and_the_job_goes_on(lake, monkeypatch, caplog):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PITLAKE_HOME", str(lake.home))
    with caplog.at_level(logging.WARNING, logger="pitlake.core.openlineage"), job_run(settings_mod.load(), "x") as run:
        pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "pitlake.core.openlineage"]
    assert len(warnings) == 2 and all("not emitted" in w for w in warnings), warnings
    assert run.emit_seconds < 10  # bounded retries: a down server costs a job seconds, not minutes


def test_trace_walks_from_a_model_back_through_the_versions_each_job_read():
    from pitlake.core.openlineage import trace

    def run(job, inputs, outputs):
        return {"job": job, "run_id": job, "inputs": inputs, "outputs": outputs}

    runs = [
        run("ingest_events", [("/l/events/date=2026-01-05", None)], [("bronze.events", "3")]),
        run("build_features.customer_activity", [("bronze.events", "3")], [("features.customer_activity", "9")]),
        run("build_labels", [("bronze.events", "2")], [("labels.purchase_propensity", "1")]),  # an older bronze
        run("build_training_set.purchase_propensity",
            [("features.customer_activity", "9"), ("labels.purchase_propensity", "1")],
            [("training_sets.purchase_propensity", "4")]),
        run("train_model.purchase_propensity", [("training_sets.purchase_propensity", "4")],
            [("models:/purchase_propensity/2", None)]),
    ]  # fmt: skip
    assert trace(runs, ("models:/purchase_propensity/2", None)) == [
        "models:/purchase_propensity/2 <- train_model.purchase_propensity <- training_sets.purchase_propensity v4",
        "  training_sets.purchase_propensity v4 <- build_training_set.purchase_propensity <- "
        "features.customer_activity v9, labels.purchase_propensity v1",
        "    features.customer_activity v9 <- build_features.customer_activity <- bronze.events v3",
        "    labels.purchase_propensity v1 <- build_labels <- bronze.events v2",
        "      bronze.events v3 <- ingest_events <- /l/events/date=2026-01-05",
    ]


def test_a_transport_that_raises_without_a_message_is_still_one_warning(lake, monkeypatch, caplog):
    from pitlake.core import openlineage

    class Broken:
        def emit(self, event):
            raise RuntimeError()

    monkeypatch.setattr(openlineage, "client", lambda settings, run_id: Broken())
    with caplog.at_level(logging.WARNING, logger="pitlake.core.openlineage"), job_run(lake, "x"):
        pass
    messages = [r.getMessage() for r in caplog.records if r.name == "pitlake.core.openlineage"]
    assert messages == ["OpenLineage START event of x not emitted: RuntimeError",
                        "OpenLineage COMPLETE event of x not emitted: RuntimeError"]  # fmt: skip
