"""Data Docs: each run's own page, and the site index that lists every stored result.

A gate writes its run's page at once. The index reads every listed result, so rebuilding it costs
more as history grows: a gate rebuilds it only when its run failed (someone is about to look) or when
the last rebuild is older than :data:`DOCS_INDEX_EVERY_S`; :func:`build_docs_index`
(``python -m pitlake docs``) rebuilds it on demand. The site lives under ``$PITLAKE_HOME/gx/data_docs``.

The pages work offline: the CSS, JavaScript and fonts GX links from public CDNs are copied into the
site's ``static/vendor/`` from a checked cache that ``make install`` fetches from the npm registry
(``python -m pitlake install-docs-assets``), and every page written here links them relatively
(:mod:`pitlake.validation.docs_assets`). Without that cache the pages keep their CDN links.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pitlake.core.settings import Settings
from pitlake.validation import docs_assets
from pitlake.validation.context import DOCS_SITE, gx_context

# A passing gate rebuilds the index when the last rebuild is older than this (seconds); the cost
# of a rebuild against the number of stored results: docs/benchmarks.md.
DOCS_INDEX_EVERY_S = 300.0


def publish(settings: Settings, identifier: Any, *, failed: bool) -> tuple[str | None, str | None]:
    """Build the page of the stored result ``identifier`` (and the index if due); their paths (page, index)."""
    context = gx_context(settings)
    stamp = settings.gx_dir / "data_docs" / ".index_built"
    build_index = failed or not stamp.exists() or time.time() - stamp.stat().st_mtime >= DOCS_INDEX_EVERY_S
    site, _ = _site_builder(context)
    site.build(resource_identifiers=[identifier], build_index=build_index)
    if build_index:
        stamp.touch()
    page = _site_path(context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE))
    index = _site_path(context.get_docs_sites_urls(site_name=DOCS_SITE))
    return page, index


def build_docs_index(settings: Settings) -> str | None:
    """Rebuild the Data Docs index over every stored result (each run wrote its own page); its path.

    Pages built while the site had no local assets are rewritten to link them now.
    """
    context = gx_context(settings)
    site, local_assets = _site_builder(context)
    site.site_index_builder.build(build_index=True)  # the index alone, not every page
    site_dir = settings.gx_dir / "data_docs"
    if local_assets:
        docs_assets.localize_pages(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / ".index_built").touch()
    return _site_path(context.get_docs_sites_urls(site_name=DOCS_SITE))


def _site_builder(context: Any) -> tuple[Any, bool]:
    """GX's site builder for :data:`DOCS_SITE`, and whether the pages it writes link the site's local assets."""
    config = copy.deepcopy(context.variables.data_docs_sites[DOCS_SITE])
    backend = config["store_backend"]
    local_assets = backend.get("class_name") == "TupleFilesystemStoreBackend" and docs_assets.prepare_site(
        Path(backend["base_directory"])
    )
    if local_assets:
        config["store_backend"] = docs_assets.store_backend_config(backend)
    site = context._init_site_builder_for_data_docs_site_creation(site_name=DOCS_SITE, site_config=config)
    return site, local_assets


def _site_path(urls: list[dict[str, str | None]]) -> str | None:
    url = urls[0].get("site_url") if urls else None
    return unquote(urlparse(url).path) if url else None
