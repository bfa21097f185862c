"""The Airflow plugin (plugins/pitlake_ui.py): loaded by Airflow's own plugin loader, light to import, its UI
entries valid for Airflow 3.3, and every route behind Airflow's authentication.

The pages' app is mounted the way the api-server mounts plugin apps (``airflow.api_fastapi.app.init_plugins``)
and guarded by the plugin's real dependencies: Airflow's SimpleAuthManager (the embedded default) validates
real JWTs it issued itself, its revoked-token check and the DAG's team lookup read Airflow's metadata tables
(created in this test session's AIRFLOW_HOME database). Nothing is overridden."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pitlake.core.settings import REPO_ROOT

PLUGINS = REPO_ROOT / "plugins"
PLUGIN_FILE = PLUGINS / "pitlake_ui.py"
SAMPLE = {"dag_id": "feature_pipeline", "run_id": "manual__2026-01-02T00:00:00+00:00", "suite": "bronze_events",
          "result_id": "r1", "name": "purchase_propensity", "version": "1", "path": "index.html"}  # fmt: skip
PAGES = ["/pitlake/catalog", "/pitlake/validations", "/pitlake/models",
         "/pitlake/runs/feature_pipeline/manual__2026-01-02T00:00:00+00:00"]  # fmt: skip


@pytest.fixture(scope="module")
def plugin():
    from airflow._shared.plugins_manager import _load_plugins_from_plugin_directory

    plugins, errors = _load_plugins_from_plugin_directory(plugins_folder=str(PLUGINS))
    assert errors == {}
    assert [p.name for p in plugins] == ["pitlake"]
    return plugins[0]


def test_loading_the_plugin_imports_neither_fastapi_nor_the_pages():
    """Every Airflow process (scheduler, workers) imports its plugins: the app is built only when asked for."""
    code = (
        "import importlib.util, json, sys\n"
        "import airflow.plugins_manager\n"
        f"spec = importlib.util.spec_from_file_location('pitlake_ui', {str(PLUGIN_FILE)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "heavy = ('fastapi', 'airflow.api_fastapi.core_api.security', 'pitlake.catalog', 'mlflow', 'deltalake',\n"
        "         'pandas')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_ui_entries_are_external_views_airflow_serves(plugin):
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    views = [ExternalViewResponse.model_validate(v) for v in plugin.external_views]
    assert [(v.name, v.href, v.destination, v.url_route) for v in views] == [
        ("Feature catalog", "/pitlake/catalog", "nav", "pitlake-catalog"),
        ("Validation results", "/pitlake/validations", "nav", "pitlake-validations"),
        ("Models", "/pitlake/models", "nav", "pitlake-models"),
        ("Lake commits", "/pitlake/runs/{DAG_ID}/{RUN_ID}", "dag_run", "pitlake-run"),
    ]
    assert {v.category for v in views[:3]} == {"pitlake"}


@pytest.fixture(scope="module")
def api(plugin, tmp_path_factory):
    """Airflow's auth manager with real tokens, the plugin's app mounted as the api-server mounts it."""
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_auth_manager, init_plugins, purge_cached_app
    from airflow.models import import_all_models
    from airflow.models.base import Base

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "pitlake-test-secret-" + "x" * 48)
        mp.setenv("PITLAKE_HOME", str(tmp_path_factory.mktemp("ui") / "home"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        import_all_models()
        Base.metadata.create_all(settings.engine)  # revoked_token, dag, dag_bundle, team: what the guards read
        purge_cached_app()
        manager = create_auth_manager()
        manager.init()
        mp.setattr(plugins_manager, "get_fastapi_plugins", lambda: (plugin.fastapi_apps, []))
        root = FastAPI()
        init_plugins(root)
        with TestClient(root) as client:
            yield client, manager, plugin.fastapi_apps[0]["app"]
        purge_cached_app()


def token(manager, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return manager.generate_jwt(SimpleAuthManagerUser(username="someone", role=role))


def every_route(app) -> list[str]:
    """Each route of the pages' app with sample path parameters, under the plugin's prefix."""
    paths = [r.path for r in app.routes if isinstance(r, APIRoute)]
    assert len(paths) >= 10
    return [re.sub(r"\{(\w+)(:path)?\}", lambda m: SAMPLE[m.group(1)], "/pitlake" + p) for p in paths]


def test_an_anonymous_request_to_any_route_is_refused(api):
    client, _, app = api
    for path in every_route(app):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 401, (path, response.status_code)
    page = client.get("/pitlake/catalog")
    assert "Log in to Airflow" in page.text and 'href="/auth/login?next=' in page.text


def test_a_forged_or_roleless_token_is_refused(api):
    import jwt

    client, manager, app = api
    forged = jwt.encode({"sub": "admin", "role": "ADMIN", "aud": "apache-airflow"}, "another-secret-" + "y" * 48)
    for path in every_route(app):
        assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code == 403, path
    roleless = token(manager, None)
    for path in PAGES:
        assert client.get(path, headers={"Authorization": f"Bearer {roleless}"}).status_code == 403, path


def test_a_logged_in_user_gets_every_page(api):
    client, manager, app = api
    headers = {"Authorization": f"Bearer {token(manager, 'VIEWER')}"}
    for path in every_route(app):
        # Sample ids that do not exist answer 404 (after authorization), the index redirects to the catalog.
        assert client.get(path, headers=headers, follow_redirects=False).status_code in (200, 303, 404), path
    for path in PAGES:
        assert client.get(path, headers=headers).status_code == 200, path
    # The UI's session cookie (what a logged-in browser sends to the plugin's frame) is accepted too.
    client.cookies.set("_token", token(manager, "ADMIN"))
    try:
        page = client.get("/pitlake/catalog")
    finally:
        client.cookies.clear()
    assert page.status_code == 200 and "count_purchases_7d" in page.text
    assert 'href="/pitlake/models"' in page.text  # links follow the mount
    assert float(page.headers["Server-Timing"].split("dur=")[1]) < 1000
