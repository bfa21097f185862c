"""Data Docs work offline: a gate's page and the index link vendored, pinned copies of GX's CDN assets.

A real result from the gate's in-process route (GX's pandas engine, no Spark) is given its page by
``docs.publish``; the test reads the HTML, the site's files and GX's own templates, and, where
Debian's chromium and Playwright are installed, opens the pages with every request outside
``file://`` aborted.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pitlake.core.errors import ConfigError
from pitlake.core.settings import Settings
from pitlake.validation import build_docs_index, docs_assets
from pitlake.validation.records import CRITICAL, WARNING, SuitePlan

# The tags that load something, and what they load (GX's <img> spans lines).
ASSET_TAG = re.compile(r"<(script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", re.DOTALL)
REMOTE = re.compile(r"^(?:https?:)?//")


@dataclasses.dataclass
class Site:
    settings: Settings
    page: Path
    index: Path

    @property
    def root(self) -> Path:
        return self.settings.gx_dir / "data_docs"


def _gate_run(settings: Settings, run_id: str) -> tuple[str | None, str | None]:
    """One failing validation through the gate's in-process route (GX's pandas engine): its page and index."""
    import great_expectations.expectations as gxe
    import pandas as pd
    from pitlake.validation.gx_run import run_gx

    frame = pd.DataFrame({"customer_id": ["c1", "c2", None], "amount": [1.0, 2.5, 40.0]})
    plan = SuitePlan(
        name="docs_offline",
        batch=None,  # no schema check: nothing runs on Spark
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="customer_id", severity=CRITICAL),
            gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=10, severity=WARNING),
        ],
    )
    _, page, index = run_gx(settings, plan, None, frame, run_id, datetime(2026, 1, 2, tzinfo=UTC), samples=5)
    return page, index


@pytest.fixture(scope="module")
def cache() -> Path:
    """The shared cache (``make install`` fetched it; fetched here otherwise)."""
    try:
        return docs_assets.ensure_cache()
    except ConfigError as err:
        pytest.skip(f"the Data Docs assets are not cached and cannot be fetched: {err}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, repo_settings: Settings, cache: Path) -> Site:
    settings = dataclasses.replace(repo_settings, home=tmp_path_factory.mktemp("docs-offline") / "home")
    page, index = _gate_run(settings, "offline-1")  # failed: the index is built too
    assert page and index
    return Site(settings, Path(page), Path(index))


def _assets(html: str) -> list[tuple[str, str]]:
    return ASSET_TAG.findall(html)


def _gx_templates() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent / "render" / "view" / "templates"


def test_every_cdn_asset_of_gx_templates_is_pinned() -> None:
    linked = {url for t in _gx_templates().glob("*.j2") for _, url in _assets(t.read_text()) if REMOTE.match(url)}
    linked = {url for url in linked if "{{" not in url}  # the navbar logo: a template expression
    assert linked == set(docs_assets.CDN_ASSETS)


def test_pages_load_only_local_files_that_the_site_holds(site: Site) -> None:
    for page in (site.page, site.index):
        html = page.read_text()
        loaded = _assets(html)
        assert {tag for tag, _ in loaded} == {"script", "link", "img"}
        assert [url for _, url in loaded if REMOTE.match(url)] == [], page
        assert "integrity=" not in html and "crossorigin=" not in html
        for _, url in loaded:
            target = (page.parent / url.split("?")[0]).resolve()
            assert target.is_file() and target.is_relative_to(site.root.resolve()), (page, url)
    vendored = {u for _, u in _assets(site.page.read_text()) if "/static/vendor/" in u}
    assert len(vendored) == len(docs_assets.CDN_ASSETS) - 1  # the page takes one filter-control stylesheet


def test_each_vendored_file_has_its_pinned_digest(site: Site) -> None:
    vendor = site.root / "static" / "vendor"
    for package in docs_assets.PACKAGES:
        for name, want in package.files.items():
            assert hashlib.sha256((vendor / package.folder / name).read_bytes()).hexdigest() == want, name
    # Where GX's templates carry Subresource Integrity, the pinned files are the very bytes it names.
    imports = (_gx_templates() / "js_script_imports.j2").read_text()
    sri = dict(re.findall(r"src=\"([^\"]+)\" integrity=\"sha384-([^\"]+)\"", imports))
    assert len(sri) == 2
    for url, digest in sri.items():
        data = (site.root / docs_assets.local_path(url)).read_bytes()
        assert base64.b64encode(hashlib.sha384(data).digest()).decode() == digest, url


def test_localizing_is_idempotent_and_leaves_links_alone() -> None:
    url = "https://cdn.jsdelivr.net/npm/vega@5"
    html = f'<script src="{url}"></script><a href="https://greatexpectations.io">GX</a>'
    once = docs_assets.localize_html(html, depth=2)
    assert once == (
        '<script src="../../static/vendor/vega@5.33.1/build/vega.min.js"></script>'
        '<a href="https://greatexpectations.io">GX</a>'
    )
    assert docs_assets.localize_html(once, depth=2) == once


def test_no_cache_and_no_registry_keeps_cdn_links_with_one_warning(
    tmp_path: Path, repo_settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(docs_assets, "NPM_REGISTRY", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(docs_assets, "CACHE_DIR", tmp_path / "no-cache")
    monkeypatch.setattr(docs_assets, "_failed", [])
    settings = dataclasses.replace(repo_settings, home=tmp_path / "home")
    with caplog.at_level("WARNING", logger=docs_assets.__name__):
        pages = [Path(str(_gate_run(settings, f"no-assets-{i}")[0])) for i in range(2)]
    warnings = [r.getMessage() for r in caplog.records if r.name == docs_assets.__name__]
    assert len(warnings) == 1 and docs_assets.FETCH_COMMAND in warnings[0] and "\n" not in warnings[0]
    for page in pages:
        assert "https://code.jquery.com/jquery-3.7.1.min.js" in page.read_text()
    assert not (settings.gx_dir / "data_docs" / "static" / "vendor").exists()

    # Once the assets are there, `pitlake docs` gives the pages built without them local links too.
    monkeypatch.setattr(docs_assets, "CACHE_DIR", cache)
    monkeypatch.setattr(docs_assets, "_failed", [])
    build_docs_index(settings)
    for page in pages:
        assert not [url for _, url in _assets(page.read_text()) if REMOTE.match(url)]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_a_browser_without_network_renders_the_tables(site: Site) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (`apt-get install chromium`; .ci/run installs it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
    outside: list[str] = []
    failed: list[str] = []

    def local_only(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            context.route("**/*", local_only)
            tab = context.new_page()
            tab.on("requestfailed", lambda request: failed.append(request.url))
            rows = ".bootstrap-table table tbody tr[data-index]"
            tab.goto(site.index.as_uri())
            tab.wait_for_selector(rows, timeout=10_000)  # bootstrap-table filled the results list
            assert tab.locator(rows).count() == 1
            assert "docs_offline" in tab.locator(rows).first.inner_text()
            tab.goto(site.page.as_uri())
            tab.wait_for_selector(rows, timeout=10_000)
            assert tab.evaluate("typeof vegaEmbed") == "function"
            # bootstrap's stylesheet applied: its system font stack, not the browser's default serif
            assert "apple-system" in tab.evaluate("getComputedStyle(document.body).fontFamily")
        finally:
            browser.close()
    assert outside == [] and failed == []
