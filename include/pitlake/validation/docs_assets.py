"""Data Docs that work offline: the CSS, JavaScript and fonts GX's pages load from public CDNs, vendored.

GX's page templates (``great_expectations/render/view/templates``) link bootstrap, bootstrap-table,
jQuery, popper, bootstrap-datepicker, font-awesome and vega from unpkg, jsDelivr, cdnjs and the
bootstrap and jQuery CDNs, and the navbar logo from GX's own bucket (with the context id in its query).
Without a network the pages render unstyled and their tables empty. GX has no setting for it (its
``custom_views_directory`` templates come after its own in the loader, so they cannot replace a
page), so pitlake vendors the files and rewrites the links:

- :data:`CDN_ASSETS` maps every CDN URL of GX 1.24's templates to a file of an npm package at the
  version the URL names (``vega@5``, ``vega-lite@5``, ``vega-embed@6``: the newest release in that
  range when pinned, the one the CDN serves). Each package tarball must have the registry's
  ``dist.integrity`` (SHA-512) pinned in :data:`PACKAGES`, and each file the SHA-256 pinned there.
- :func:`ensure_cache` fetches the tarballs once into :data:`CACHE_DIR` (``.pitlake/vendor`` in the
  repository, beside the default home's jars; ``python -m pitlake install-docs-assets``, run by
  ``make install``). It serves every ``PITLAKE_HOME``.
- :func:`prepare_site` copies the files into a site's ``static/vendor/`` once (checked against the
  pins, then recorded in a stamp: later builds pay one small read), and :data:`STORE_BACKEND` (a
  ``TupleFilesystemStoreBackend`` named in the site's ``store_backend`` config) rewrites every HTML
  page the site builder writes to link them relatively, without the ``integrity``/``crossorigin``
  attributes a ``file://`` page cannot check (the pinned SHA-256 stand in for them).
- With no cache and no registry the pages keep their CDN links, and one warning names the command:
  a docs asset never fails a gate.

Not vendored: the dark-mode logo GX's stylesheet draws from its bucket (a background image, GX ships
no copy), and the ``<a href>`` links to greatexpectations.io.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import re
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pitlake.core import settings as settings_mod
from pitlake.core.errors import ConfigError

log = logging.getLogger(__name__)

NPM_REGISTRY = "https://registry.npmjs.org"
CACHE_DIR = settings_mod.REPO_ROOT / ".pitlake" / "vendor" / "gx-data-docs"
FETCH_COMMAND = "python -m pitlake install-docs-assets"
# In a site: static/vendor/<package folder>/<path in the package>.
SITE_VENDOR = PurePosixPath("static/vendor")
# GX's navbar logo (and a timestamp and the context id in its query): GX's own copy is in the site.
GX_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
GX_LOGO = "static/images/logo-long.png"


@dataclass(frozen=True)
class NpmPackage:
    """One npm release: its tarball's ``dist.integrity`` and the files taken from it, with their SHA-256."""

    name: str
    version: str
    integrity: str
    files: Mapping[str, str]

    @property
    def folder(self) -> str:
        """The folder of its files in the cache and in a site: ``fortawesome-fontawesome-free@6.6.0``."""
        return f"{self.name.lstrip('@').replace('/', '-')}@{self.version}"

    @property
    def tarball_url(self) -> str:
        return f"{NPM_REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


_FC = "dist/extensions/filter-control/bootstrap-table-filter-control"
_DARK = "dist/css/bootstrap-prefers-dark.css"
BOOTSTRAP_TABLE = NpmPackage(
    "bootstrap-table",
    "1.19.1",
    "sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
    {
        "dist/bootstrap-table.min.css": "643f536f6982af4d7287af23f89ad457dd7e4a82f9c695330a112b0881c30a4a",
        "dist/bootstrap-table.min.js": "06a571a9beb50bd5ddd60517159775dfec1f3e798fff38fb117ae2350dc9ba9d",
        f"{_FC}.min.js": "111f68d31d1bdd714f9503bf5f4e162e0739c363e4ff2feef950d39e78266ffc",
    },
)
# The filter-control stylesheet: GX's templates take it from the release before.
BOOTSTRAP_TABLE_1_19_0 = NpmPackage(
    "bootstrap-table",
    "1.19.0",
    "sha512-L+USHm3X9FKocx/6yngGu12yF6r6s1Ntuc+hoIK2a2QQJjHw5kcySLiE2HY/9sEaSGAOfPbfQOtBH3uKkcpqEA==",
    {
        f"{_FC}.css": "b3ff051168696ec9ae3cf8616c59a6db8734fb282863b23edfd8c0f93eb5c4f0",
        f"{_FC}.min.css": "2c707bb54520737762a76f2238e87627993fb63bcef6d789a21a4957f393fa1c",
    },
)
BOOTSTRAP = NpmPackage(
    "bootstrap",
    "4.3.1",
    "sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==",
    {
        "dist/css/bootstrap.min.css": "60b19e5da6a9234ff9220668a5ec1125c157a268513256188ee80f2d2c8d8d36",
        "dist/js/bootstrap.min.js": "0a34a87842c539c1f4feec56bba982fd596b73500046a6e6fe38a22260c6577b",
    },
)
BOOTSTRAP_DATEPICKER = NpmPackage(
    "bootstrap-datepicker",
    "1.9.0",
    "sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
    {
        "dist/css/bootstrap-datepicker.min.css": "b22c8ea45fe905650f8087108b5ed32c1923bcd80d400adc9b0241f18be40208",
        "dist/js/bootstrap-datepicker.min.js": "6ea55ea86749ee1fe560fabac6b3effd81b33046fa74dc657e24d41d28110a9f",
    },
)
BOOTSTRAP_DARK = NpmPackage(
    "@forevolve/bootstrap-dark",
    "1.1.0",
    "sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
    {_DARK: "b087541364cdc7e95cbf71be42da5259f3d11431cc84198c17b47cd44c87cd5b"},
)
JQUERY = NpmPackage(
    "jquery",
    "3.7.1",
    "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
    {"dist/jquery.min.js": "fc9a93dd241f6b045cbff0481cf4e1901becd0e12fb45166a8f17f95823f0b1a"},
)
POPPER = NpmPackage(
    "popper.js",
    "1.12.9",
    "sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==",
    {"dist/umd/popper.min.js": "a52f7aa54d7bcaafa056ee0a050262dfc5694ae28dee8b4cac3429af37ff0d66"},
)
# cdnjs's font-awesome 6.6.0 is this package's build; its stylesheet loads ../webfonts/*.
FONTAWESOME = NpmPackage(
    "@fortawesome/fontawesome-free",
    "6.6.0",
    "sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
    {
        "css/all.min.css": "e5e202e3c899507992952533f57b634722b69b34241d271963559d31aa33ef81",
        "webfonts/fa-brands-400.ttf": "bc844b5b02d3f3adabb514de4e0c0208252d3123413bd03f6287fa446acee859",
        "webfonts/fa-brands-400.woff2": "c411f11975d26eb04cd2aa3c071181d4b18e489f1fb97060d4176a3531dfb36e",
        "webfonts/fa-regular-400.ttf": "64f9fb623681f112261e9a2f97826782439f3925dea8f44a57d1e4db95ba6cfd",
        "webfonts/fa-regular-400.woff2": "c732f106e91bc618767fbac8e2c7b27e5c736d477b2bb4fb83f597a43198c33c",
        "webfonts/fa-solid-900.ttf": "31f099c13f6e4ba05f1b471bf170cb5493249474222917372de3ca5cf29e6a1a",
        "webfonts/fa-solid-900.woff2": "1f0189e087fcefbf654fad74a3a06668b782c01353a61d5c0b7f0bf23e33c020",
        "webfonts/fa-v4compatibility.ttf": "a6274a12fd3f5f1ea05fc9b4677959b31fd101fdac4f0d09c17159c414d36d23",
        "webfonts/fa-v4compatibility.woff2": "2aca24b35bd41474dcc5e7fb5f11ec43fa06e3ac1d0035ad41108fa6b30b0871",
    },
)
# The templates ask jsDelivr for a major version (vega@5 ...): the newest release of it when pinned.
VEGA = NpmPackage(
    "vega",
    "5.33.1",
    "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
    {"build/vega.min.js": "463f3db6a40b20e9747b4ed38f37ed0add508838f9141b1cf8366784b07b30c8"},
)
VEGA_LITE = NpmPackage(
    "vega-lite",
    "5.23.0",
    "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
    {"build/vega-lite.min.js": "58c27358e26f2d319cf62f45bc17a4c8362f08645001df2ec8d341eee4097c7f"},
)
VEGA_EMBED = NpmPackage(
    "vega-embed",
    "6.29.0",
    "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
    {"build/vega-embed.min.js": "12d02acfbe3ec59ef9a37dd4822a2e04e2961b5bbb671bbe661d2221715b99da"},
)
PACKAGES: tuple[NpmPackage, ...] = (BOOTSTRAP_TABLE, BOOTSTRAP_TABLE_1_19_0, BOOTSTRAP, BOOTSTRAP_DATEPICKER)
PACKAGES += (BOOTSTRAP_DARK, JQUERY, POPPER, FONTAWESOME, VEGA, VEGA_LITE, VEGA_EMBED)

# Every CDN URL in GX's page templates (page.j2, page_minimal.j2, index_page.j2, js_script_imports.j2).
_UNPKG, _CDNJS, _JSDELIVR = (
    "https://unpkg.com",
    "https://cdnjs.cloudflare.com/ajax/libs",
    "https://cdn.jsdelivr.net/npm",
)
_BT, _DP = "dist/bootstrap-table.min", "bootstrap-datepicker.min"
CDN_ASSETS: dict[str, tuple[NpmPackage, str]] = {
    url: (package, path)
    for url, package, path in (
        (f"{_UNPKG}/bootstrap-table@1.19.1/{_BT}.css", BOOTSTRAP_TABLE, f"{_BT}.css"),
        (f"{_UNPKG}/bootstrap-table@1.19.1/{_BT}.js", BOOTSTRAP_TABLE, f"{_BT}.js"),
        (f"{_UNPKG}/bootstrap-table@1.19.1/{_FC}.min.js", BOOTSTRAP_TABLE, f"{_FC}.min.js"),
        (f"{_UNPKG}/bootstrap-table@1.19.0/{_FC}.css", BOOTSTRAP_TABLE_1_19_0, f"{_FC}.css"),
        (f"{_UNPKG}/bootstrap-table@1.19.0/{_FC}.min.css", BOOTSTRAP_TABLE_1_19_0, f"{_FC}.min.css"),
        (
            "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
            BOOTSTRAP,
            "dist/css/bootstrap.min.css",
        ),
        (
            "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
            BOOTSTRAP,
            "dist/js/bootstrap.min.js",
        ),
        (f"{_CDNJS}/bootstrap-datepicker/1.9.0/css/{_DP}.css", BOOTSTRAP_DATEPICKER, f"dist/css/{_DP}.css"),
        (f"{_CDNJS}/bootstrap-datepicker/1.9.0/js/{_DP}.js", BOOTSTRAP_DATEPICKER, f"dist/js/{_DP}.js"),
        (f"{_JSDELIVR}/@forevolve/bootstrap-dark@1.1.0/{_DARK}", BOOTSTRAP_DARK, _DARK),
        ("https://code.jquery.com/jquery-3.7.1.min.js", JQUERY, "dist/jquery.min.js"),
        (f"{_CDNJS}/popper.js/1.12.9/umd/popper.min.js", POPPER, "dist/umd/popper.min.js"),
        (f"{_CDNJS}/font-awesome/6.6.0/css/all.min.css", FONTAWESOME, "css/all.min.css"),
        (f"{_JSDELIVR}/vega@5", VEGA, "build/vega.min.js"),
        (f"{_JSDELIVR}/vega-lite@5", VEGA_LITE, "build/vega-lite.min.js"),
        (f"{_JSDELIVR}/vega-embed@6", VEGA_EMBED, "build/vega-embed.min.js"),
    )
}

# What a site's copy was made from: a changed pin makes the next build copy again.
ASSETS_KEY = hashlib.sha256(
    "\n".join(f"{p.folder} {p.integrity} {sorted(p.files.items())}" for p in PACKAGES).encode()
).hexdigest()[:16]
_SITE_STAMP = ".pitlake-assets"

_CDN_RE = re.compile("|".join(map(re.escape, CDN_ASSETS)))
# After a CDN URL, the templates' SRI attributes: a file:// page cannot check them (no CORS), so it
# would not run the script. The pinned SHA-256 stand in for them.
_SRI_RE = re.compile(r"(static/vendor/[^\"]*\")(?:\s+(?:integrity|crossorigin)=\"[^\"]*\")+")
_LOGO_RE = re.compile(re.escape(GX_WEB_ASSETS) + r"logo-long\.png[^\"]*(?=\")")
# GX's own static images, which GX links one folder short from a validation page (its favicon).
_IMAGES_RE = re.compile(r"\"(?:\./|(?:\.\./)+)static/images/")

# Why this process could not give a site its assets (the registry did not answer...): the first
# failure warns, later builds do not try again.
_failed: list[str] = []


def local_path(url: str) -> str:
    """The site-relative path of the vendored copy of the CDN ``url``."""
    package, path = CDN_ASSETS[url]
    return str(SITE_VENDOR / package.folder / path)


def localize_html(html: str, depth: int) -> str:
    """``html`` (a page ``depth`` folders below the site root) linking the vendored assets instead of the CDNs."""
    up = "../" * depth
    for url in CDN_ASSETS:  # plain replaces: a fraction of a millisecond for a page (one regex: 3x that)
        html = html.replace(f'"{url}"', f'"{up}{local_path(url)}"')
    html = _SRI_RE.sub(r"\1", html)
    html = _LOGO_RE.sub(up + GX_LOGO, html)
    return _IMAGES_RE.sub(f'"{up}static/images/', html)


# --------------------------------------------------------------------------- the cache


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_complete(cache: Path) -> bool:
    return all((cache / p.folder / f).is_file() for p in PACKAGES for f in p.files)


def verify_cache(cache: Path | None = None, *, delete_bad: bool = False) -> list[NpmPackage]:
    """The packages whose files in ``cache`` are all present and have their pinned SHA-256 (the others: missing).

    A file with another SHA-256 raises :class:`ConfigError` (or, with ``delete_bad``, is deleted and its
    package counted as missing).
    """
    cache = cache or CACHE_DIR
    missing = []
    for package in PACKAGES:
        for name, want in package.files.items():
            path = cache / package.folder / name
            if not path.is_file():
                missing.append(package)
                break
            got = sha256(path)
            if got != want:
                if not delete_bad:
                    raise ConfigError(
                        f"{path} has SHA-256 {got}, expected {want} ({package.name}@{package.version}): "
                        f"delete {cache / package.folder} and run `{FETCH_COMMAND}`"
                    )
                shutil.rmtree(cache / package.folder, ignore_errors=True)
                missing.append(package)
                break
    return missing


def _download(package: NpmPackage, timeout: float) -> bytes:
    request = urllib.request.Request(package.tarball_url, headers={"User-Agent": "pitlake"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read()
    algorithm, _, digest = package.integrity.partition("-")
    got = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if got != digest:
        raise ConfigError(
            f"{package.tarball_url} has integrity {algorithm}-{got}, expected {package.integrity} "
            "(the registry's dist.integrity pinned in pitlake.validation.docs_assets): not used"
        )
    return data


def _unpack(package: NpmPackage, tarball: bytes, cache: Path) -> None:
    """The package's pinned files, checked, into ``cache/<folder>`` (written aside, then renamed into place)."""
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{package.folder}-", dir=cache))
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            # npm tarballs hold one top folder (usually package/): paths are relative to it.
            members = {PurePosixPath(*PurePosixPath(m.name).parts[1:]).as_posix(): m for m in tar.getmembers()}
            for name, want in package.files.items():
                member = members.get(name)
                source = tar.extractfile(member) if member is not None and member.isfile() else None
                if source is None:
                    raise ConfigError(f"{package.tarball_url} has no file {name}")
                data = source.read()
                got = hashlib.sha256(data).hexdigest()
                if got != want:
                    raise ConfigError(
                        f"{name} in {package.tarball_url} has SHA-256 {got}, expected {want} "
                        "(pinned in pitlake.validation.docs_assets): not used"
                    )
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        final = cache / package.folder
        shutil.rmtree(final, ignore_errors=True)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # else another process put the same checked files there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_cache(cache: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Make ``cache`` (:data:`CACHE_DIR`) hold every pinned file, checked; download only the packages it misses."""
    cache = cache or CACHE_DIR
    for package in verify_cache(cache, delete_bad=True):
        try:
            tarball = _download(package, timeout)
        except (OSError, ValueError) as err:  # URLError, timeouts, HTTP errors
            raise ConfigError(
                f"could not download {package.name}@{package.version} from the npm registry ({err}): "
                f"check network access to {NPM_REGISTRY}"
            ) from err
        _unpack(package, tarball, cache)
    return cache


# --------------------------------------------------------------------------- a site


def prepare_site(site_dir: Path, cache: Path | None = None) -> bool:
    """Make ``site_dir/static/vendor`` hold the pinned assets; whether the site's pages may link them.

    Once a site has them (its stamp names :data:`ASSETS_KEY`) this is one small read. Otherwise the
    files are copied from ``cache``, each checked against its pin, after fetching the cache when it is
    incomplete. Should that fail: one warning per process, naming the command that fetches them, and
    ``False`` (the pages keep their CDN links); it never raises.
    """
    vendor, cache = site_dir / SITE_VENDOR, cache or CACHE_DIR
    try:
        if (vendor / _SITE_STAMP).read_text() == ASSETS_KEY:
            return True
    except OSError:
        pass
    try:
        if not _cache_complete(cache):
            if _failed:
                return False  # this process tried the registry already
            ensure_cache(cache, timeout=10.0)
        _copy_into(vendor, cache)
    except Exception as err:  # never fail a gate for the looks of its docs
        if not _failed:
            log.warning("Data Docs keep their CDN links (unstyled without a network): %s; run `%s`", err, FETCH_COMMAND)
        _failed.append(str(err))
        return False
    return True


def _copy_into(vendor: Path, cache: Path) -> None:
    for package in PACKAGES:
        for name, want in package.files.items():
            source, target = cache / package.folder / name, vendor / package.folder / name
            if target.is_file() and sha256(target) == want:
                continue
            if (got := sha256(source)) != want:
                raise ConfigError(f"{source} has SHA-256 {got}, expected {want}: delete it")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(source, partial)
            partial.replace(target)  # a concurrent gate reads a whole file or none
    (vendor / _SITE_STAMP).write_text(ASSETS_KEY)


def localize_pages(site_dir: Path) -> int:
    """Rewrite the pages of ``site_dir`` built with CDN links (before the assets were there); how many."""
    changed = 0
    for folder in ("validations", "expectations"):
        for page in (site_dir / folder).rglob("*.html"):
            with page.open("rb") as head:
                start = head.read(8192).decode("utf-8", "ignore")  # the links are in <head>
            if not _CDN_RE.search(start):
                continue
            depth = len(page.relative_to(site_dir).parts) - 1
            page.write_text(localize_html(page.read_text(encoding="utf-8"), depth), encoding="utf-8")
            changed += 1
    return changed


def store_backend_config(store_backend: Mapping[str, Any]) -> dict[str, Any]:
    """A site's ``store_backend`` config whose HTML pages link the vendored assets (see :data:`STORE_BACKEND`)."""
    return {**store_backend, "module_name": __name__, "class_name": STORE_BACKEND}


STORE_BACKEND = "LocalAssetsStoreBackend"


@functools.cache
def _store_backend_class() -> type:
    from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend

    class LocalAssetsStoreBackend(TupleFilesystemStoreBackend):
        """GX's filesystem backend for a Data Docs site, writing HTML pages that link the vendored assets."""

        def _set(self, key: Any, value: Any, **kwargs: Any) -> Any:
            if isinstance(value, str):
                relative = self._convert_key_to_filepath(key if isinstance(key, tuple) else key.to_tuple())
                if relative.endswith(".html"):
                    value = localize_html(value, depth=len(Path(relative).parts) - 1)
            return super()._set(key, value, **kwargs)

    LocalAssetsStoreBackend.__module__ = __name__
    return LocalAssetsStoreBackend


def __getattr__(name: str) -> Any:
    # GX loads the backend by module and class name; defined on first use, so that importing
    # pitlake.validation imports no GX.
    if name == STORE_BACKEND:
        return _store_backend_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
