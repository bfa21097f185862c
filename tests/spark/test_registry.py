"""Alias moves that cannot race: the registry lock, ``previous`` under concurrency, completing an
interrupted move, names that would break a registry filter. MLflow only (no Spark): versions are
registered straight from a source folder, with the gate's floor tag a promotion checks."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from pitlake.core.errors import ConfigError
from pitlake.registry import promote as registry
from pitlake.registry.lock import RegistryBusyError, registry_lock

MODEL = "purchase_propensity"


@pytest.fixture()
def home(lake, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    db = lake.mlflow_dir / "mlflow.db"
    db.parent.mkdir(parents=True)
    return dataclasses.replace(lake, mlflow_tracking_uri=f"sqlite:///{db}")


def client_of(settings):
    from pitlake.core import tracking

    return tracking.connect(settings)


def register_versions(settings, n: int, name: str = MODEL) -> None:
    """``n`` versions of ``name`` that passed the gate's floor; v1 is champion."""
    client = client_of(settings)
    client.create_registered_model(name)
    source = settings.home / "model"
    source.mkdir(exist_ok=True)
    for _ in range(n):
        mv = client.create_model_version(name, source=str(source))
        client.set_model_version_tag(name, mv.version, "gate.floor_passed", "true")
    client.set_registered_model_alias(name, registry.CHAMPION, "1")


def tags(settings, version: int) -> dict[str, str]:
    return client_of(settings).get_model_version(MODEL, str(version)).tags


def test_two_promotions_started_together_queue_and_previous_is_the_champion_just_before(home):
    register_versions(home, 3)
    start = threading.Barrier(2)
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def promote(version: int) -> None:
        start.wait()
        try:
            results[version] = registry.promote(home, MODEL, version, "champion", reason="race", actor=f"u{version}")
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # One of them moved first (replacing v1), the other replaced it: never both replacing v1.
    first, second = sorted(results, key=lambda v: results[v]["replaced_version"] != 1)
    assert (results[first]["replaced_version"], results[second]["replaced_version"]) == (1, first)
    assert registry.aliases(client_of(home), MODEL) == {"champion": second, "previous": first}
    assert "for v" in tags(home, 1)["demoted"] and f"for v{second}" in tags(home, first)["demoted"]
    for v in (first, second):
        [entry] = json.loads(tags(home, v)["promotion.history"])
        assert entry["replaced_version"] == results[v]["replaced_version"]
        assert registry.PENDING_TAG not in tags(home, v)


def test_a_retry_after_a_failure_part_way_completes_the_history_and_tags(home, monkeypatch):
    from mlflow import MlflowClient

    register_versions(home, 2)
    real = MlflowClient.set_model_version_tag

    def dies_writing_history(self, name, version, key, value):
        if key == registry.HISTORY_TAG:
            raise OSError("connection reset by the tracking server")
        return real(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", dies_writing_history)
    with pytest.raises(OSError, match="connection reset"):
        registry.promote(home, MODEL, 2, "champion", reason="better", actor="alice")
    monkeypatch.setattr(MlflowClient, "set_model_version_tag", real)
    # The alias moved before the failure, the history and promotion.* tags were never written.
    assert registry.aliases(client_of(home), MODEL) == {"champion": 2, "previous": 1}
    assert registry.HISTORY_TAG not in tags(home, 2) and registry.PENDING_TAG in tags(home, 2)

    retry = registry.promote(home, MODEL, 2, "champion", reason="better", actor="alice")
    assert (retry["changed"], retry["completed_interrupted_move"], retry["replaced_version"]) == (True, True, 1)
    v2 = tags(home, 2)
    assert [(h["actor"], h["replaced_version"]) for h in json.loads(v2[registry.HISTORY_TAG])] == [("alice", 1)]
    assert (v2["promotion.actor"], v2["promotion.replaced_version"]) == ("alice", "1")
    assert registry.PENDING_TAG not in v2
    assert registry.aliases(client_of(home), MODEL) == {"champion": 2, "previous": 1}
    # Now finished: a third call changes nothing and writes nothing.
    again = registry.promote(home, MODEL, 2, "champion", reason="better", actor="alice")
    assert again["changed"] is False and len(json.loads(tags(home, 2)[registry.HISTORY_TAG])) == 1


def test_a_held_lock_makes_a_promotion_wait_then_fail_with_one_retryable_line(home):
    register_versions(home, 2)
    with (
        registry_lock(home, MODEL),
        pytest.raises(RegistryBusyError, match=r"being moved by another process \(pid \d+ on .*\) for more than 0 s"),
        registry_lock(home, MODEL, wait_s=0.2),
    ):
        pass
    assert RegistryBusyError.retryable is True
    assert registry.aliases(client_of(home), MODEL) == {"champion": 1}


def test_model_names_that_would_break_a_registry_filter_or_a_path_are_refused(home):
    with pytest.raises(ConfigError, match=r"model name \"x' OR name LIKE '%\" is not a valid name"):
        registry.promote(home, "x' OR name LIKE '%", 1, "champion", reason="r", actor="a")
    with pytest.raises(ConfigError, match=r"model name '\.\./etc' is not a valid name"):
        registry.promote(home, "../etc", 1, "champion", reason="r", actor="a")
    # A name registered by someone else with a quote is still searched exactly (the VACUUM guard lists all).
    register_versions(home, 1, name="bob's model")
    assert registry.name_filter("bob's model") == 'name="bob\'s model"'
    assert [v.version for v in registry._all_versions(client_of(home), "bob's model")] == [1]
    assert registry.pinned_versions(home) == {}  # no lineage manifests: nothing pinned, nothing crashed
