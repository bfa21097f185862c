"""The pitlake pages in the Airflow UI: the feature catalog, validation results, models and their lineage,
and a tab on every DAG run showing what it committed.

The pages are :mod:`pitlake.catalog`'s FastAPI app, mounted on Airflow's api-server under ``/pitlake``
(``fastapi_apps``) and listed in the UI (``external_views``: three entries in the Plugins menu, and a
``dag_run`` tab whose href Airflow's UI fills with the run's ``{DAG_ID}`` and ``{RUN_ID}``). Every route
sits behind Airflow's own authentication and authorization: ``requires_access_view(AccessView.WEBSITE)``
(any user allowed to open the UI; the JWT comes from the UI's ``_token`` cookie or a Bearer header), and
for a run's page also ``requires_access_dag("GET", DagAccessEntity.RUN)`` on that DAG.

Every Airflow process imports its plugins, so this module imports neither FastAPI nor Airflow's API
server: the app is built the first time the api-server asks for ``fastapi_apps``.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

URL_PREFIX = "/pitlake"
log = logging.getLogger(__name__)


def airflow_base() -> str:
    """The path Airflow is served under (``[api] base_url``'s path, empty by default)."""
    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def ui_views(base: str) -> list[dict[str, Any]]:
    pages = base + URL_PREFIX
    menu = {"destination": "nav", "category": "pitlake"}
    return [
        {"name": "Feature catalog", "href": f"{pages}/catalog", "url_route": "pitlake-catalog", **menu},
        {"name": "Validation results", "href": f"{pages}/validations", "url_route": "pitlake-validations", **menu},
        {"name": "Models", "href": f"{pages}/models", "url_route": "pitlake-models", **menu},
        # A tab on each DAG run; Airflow's UI replaces {DAG_ID} and {RUN_ID} (URL-encoded).
        {"name": "Lake commits", "href": pages + "/runs/{DAG_ID}/{RUN_ID}", "url_route": "pitlake-run",
         "destination": "dag_run"},
    ]  # fmt: skip


def create_app() -> FastAPI:
    """The pages' app, guarded by Airflow's security dependencies (imported here: only the api-server calls it)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag, requires_access_view
    from pitlake.catalog.app import create_app as pages_app
    from pitlake.core.settings import load

    return pages_app(
        load(),
        guard=requires_access_view(AccessView.WEBSITE),
        run_guard=requires_access_dag("GET", DagAccessEntity.RUN),
        airflow_base=airflow_base(),
        login_url=lambda next_url: get_auth_manager().get_url_login(next_url=next_url),
    )


class PitlakeUIPlugin(AirflowPlugin):
    name = "pitlake"
    external_views = ui_views(airflow_base())

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from pitlake.core.errors import ConfigError

        try:
            app = create_app()
        except ConfigError as err:  # a bad PITLAKE_* variable must not keep the api-server from starting
            log.error("pitlake pages not mounted: %s", err)
            return []
        return [{"app": app, "url_prefix": URL_PREFIX, "name": "pitlake pages"}]
