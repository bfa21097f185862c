"""The pages as a FastAPI app, built by :func:`create_app` with the dependencies that guard them.

The app knows nothing of Airflow: the plugin (``plugins/pitlake_ui.py``) mounts it on Airflow's
api-server and passes Airflow's own authentication and authorization dependencies as ``guard`` (every
route) and ``run_guard`` (the per-run page, which also needs read access to that DAG's runs).
Routes, relative to where it is mounted (``/pitlake``):

- ``/catalog``: the feature catalog; ``/validations``, ``/validations/<result_id>``,
  ``/validations/suites/<suite>``: validation results;
- ``/models``, ``/models/<name>/versions/<version or alias>/lineage`` (``/models/<name>/lineage``: the
  champion's);
- ``/runs/<dag_id>/<run_id>``: one Airflow run; ``/data-docs/<path>``: the Data Docs files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pitlake.catalog import html as h
from pitlake.core.settings import Settings

log = logging.getLogger(__name__)

WARM_MODULES = ("pyarrow.parquet", "deltalake", "mlflow", "pitlake.catalog.models", "pitlake.catalog.features")


def warm_up(settings: Settings) -> None:
    """Import what the pages need and open the registry ahead of the first request (seconds, once per process)."""
    import importlib

    try:
        for name in WARM_MODULES:
            importlib.import_module(name)
        from pitlake.catalog.models import open_registry

        client = open_registry(settings)
        if client is not None:
            client.search_registered_models(max_results=1)
    except Exception:  # whatever fails here shows on the page that needs it, not at start-up
        log.warning("pitlake pages: warming up failed", exc_info=True)


def framed(request: Request) -> bool:
    """Whether the browser loads the page into a frame (the Airflow UI's), from its Fetch Metadata header."""
    return request.headers.get("sec-fetch-dest") == "iframe"


def base_of(request: Request) -> str:
    """Where the app is mounted (``/pitlake``, behind Airflow's own base path): every link starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def create_app(
    settings: Settings,
    *,
    guard: Callable[..., Any],
    run_guard: Callable[..., Any],
    airflow_base: str = "",
    login_url: Callable[[str], str] | None = None,
) -> FastAPI:
    """The pages' app. ``guard`` and ``run_guard`` are FastAPI dependencies that raise 401/403 for a request
    that may not see the page; ``airflow_base`` prefixes links to Airflow's own pages; ``login_url(next)``
    is offered on a refusal."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Airflow's api-server enters a mounted app's lifespan when it starts.
        threading.Thread(target=warm_up, args=(settings,), name="pitlake-pages-warm-up", daemon=True).start()
        yield

    app = FastAPI(title="pitlake pages", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    guarded = [Depends(guard)]

    @app.middleware("http")
    async def timing(request: Request, call_next: Callable[[Request], Any]) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        base = base_of(request)
        if exc.status_code in (401, 403):
            text = "Log in to Airflow to see this page." if exc.status_code == 401 else (
                f"Your Airflow role may not see this page ({exc.detail})."
            )  # fmt: skip
            body = h.notice(text, "failed")
            if exc.status_code == 401 and login_url is not None:
                body = h.join([body, h.Html("<p>"), h.link(login_url(str(request.url)), "Log in", top=True),
                               h.Html("</p>")])  # fmt: skip
            return HTMLResponse(h.page("Not allowed", body, base=base), status_code=exc.status_code)
        return HTMLResponse(h.page("Not found", h.notice(str(exc.detail)), base=base), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("pitlake page %s failed", request.url.path)
        message = f"This page could not be built: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return HTMLResponse(h.page("Error", h.notice(message, "failed"), base=base_of(request)), status_code=500)

    @app.get("/", dependencies=guarded, include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{base_of(request)}/catalog", status_code=303)

    @app.get("/catalog", dependencies=guarded, response_class=HTMLResponse)
    def catalog_page(request: Request) -> str:
        from pitlake.catalog.features import catalog, render_catalog

        return render_catalog(catalog(settings), base=base_of(request))

    @app.get("/validations", dependencies=guarded, response_class=HTMLResponse)
    def validations_page(request: Request) -> str:
        from pitlake.catalog.validation_pages import render_overview

        return render_overview(settings, base=base_of(request))

    @app.get("/validations/suites/{suite}", dependencies=guarded, response_class=HTMLResponse)
    def suite_page(request: Request, suite: str) -> str:
        from pitlake.catalog.validation_pages import render_history

        return render_history(settings, suite, base=base_of(request))

    @app.get("/validations/{result_id}", dependencies=guarded, response_class=HTMLResponse)
    def validation_page(request: Request, result_id: str) -> str:
        from pitlake.catalog.validation_pages import render_run
        from pitlake.catalog.validations import validation_run

        run = validation_run(settings, result_id)
        if run is None:
            raise StarletteHTTPException(404, f"no validation result {result_id} in ops.validation_results")
        return render_run(settings, run, base=base_of(request))

    @app.get("/models", dependencies=guarded, response_class=HTMLResponse)
    def models_page(request: Request) -> str:
        from pitlake.catalog.model_pages import render_models
        from pitlake.catalog.models import RegistryUnavailable, registered_models

        try:
            return render_models(registered_models(settings), base=base_of(request))
        except RegistryUnavailable as err:
            return render_models(None, base=base_of(request), problem=str(err))

    @app.get("/models/{name}/lineage", dependencies=guarded, response_class=HTMLResponse)
    def champion_lineage_page(request: Request, name: str) -> str:
        return lineage_page(request, name, "champion")

    @app.get("/models/{name}/versions/{version}/lineage", dependencies=guarded, response_class=HTMLResponse)
    def lineage_page(request: Request, name: str, version: str) -> str:
        from pitlake.catalog.model_pages import render_lineage
        from pitlake.catalog.models import RegistryUnavailable, model_version

        try:
            entry = model_version(settings, name, version)
        except RegistryUnavailable as err:
            raise StarletteHTTPException(503, str(err)) from None
        if entry is None:
            raise StarletteHTTPException(404, f"model {name!r} has no version or alias {version!r}")
        return render_lineage(entry, base=base_of(request), airflow_base=None if framed(request) else airflow_base)

    @app.get("/runs/{dag_id}/{run_id:path}", dependencies=[*guarded, Depends(run_guard)], response_class=HTMLResponse)
    def run_page(request: Request, dag_id: str, run_id: str) -> str:
        from pitlake.catalog.run_page import render_run

        links = None if framed(request) else airflow_base  # in the run's own tab, Airflow is around it
        return render_run(settings, dag_id, run_id, base=base_of(request), airflow_base=links)

    @app.get("/data-docs/{path:path}", dependencies=guarded)
    def data_docs(path: str) -> FileResponse:
        root = (settings.gx_dir / "data_docs").resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise StarletteHTTPException(404, f"no Data Docs file {path!r}")
        return FileResponse(target)

    return app
