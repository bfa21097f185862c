"""Known vulnerabilities in the locked dependencies: ``make audit`` (requirements*.txt).

pip-audit asks PyPI's per-version JSON API (``/pypi/<name>/<version>/json``) about every pin. Its own
summary says "No known vulnerabilities found" also when that API answered for none of them, so this
wrapper counts what was actually audited. Where the per-version route is refused (as on a machine
whose PyPI access serves the project pages only), the project route (``/pypi/<name>/json``) still
carries PyPI's vulnerability data for a project's newest release: a pin at the newest release is
audited through it, an older pin is listed as not audited.

Exit 1 with one line per finding (package, version, advisory, fixed versions) unless the finding has
an unexpired exception in ``conf/audit-exceptions.tsv`` (id, package, until YYYY-MM-DD, reason);
exit 2 when nothing could be audited (unless ``--allow-unreachable``: a warning, exit 0); exit 0
with the counts otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCKS = ("requirements.txt", "requirements-dev.txt")
EXCEPTIONS = REPO / "conf" / "audit-exceptions.tsv"
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"


def pip_audit() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [
            str(Path(sys.executable).parent / "pip-audit"),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
        ]
        cmd += [a for lock in LOCKS for a in ("-r", str(REPO / lock))]
        cmd += ["-f", "json", "-o", str(out), "--cache-dir", str(Path(tmp) / "cache")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if not out.exists():  # it could not reach the service at all: the project route below
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"audit: pip-audit could not run its service ({proc.returncode}): {last[:300]}")
            return []
        deps: list[dict[str, Any]] = json.loads(out.read_text())["dependencies"]
        return deps


def pinned() -> dict[str, str]:
    pins = {}
    for lock in LOCKS:
        for line in (REPO / lock).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower()] = version.split(";", 1)[0].strip()
    return pins


def project_route(name: str, version: str) -> dict[str, Any]:
    """The dependency as pip-audit reports it, audited through the project route, or skipped with why."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name=name), timeout=20) as resp:
            data = json.loads(resp.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as err:
        return {"name": name, "version": version, "skip_reason": f"project page unreachable: {err}"}
    latest = data.get("info", {}).get("version")
    if latest != version:
        return {"name": name, "version": version, "skip_reason": f"pinned {version}, newest {latest}"}
    vulns = [
        {"id": v.get("id"), "fix_versions": v.get("fixed_in") or [], "aliases": v.get("aliases") or []}
        for v in data.get("vulnerabilities") or []
    ]
    return {"name": name, "version": version, "vulns": vulns, "route": "project"}


def exceptions() -> dict[tuple[str, str], tuple[date, str]]:
    out = {}
    if EXCEPTIONS.exists():
        for line in EXCEPTIONS.read_text().splitlines()[1:]:
            if line.strip() and not line.startswith("#"):
                vuln_id, package, until, reason = line.split("\t", 3)
                out[(vuln_id, package.lower())] = (date.fromisoformat(until), reason)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-unreachable", action="store_true", help="exit 0 when no package could be audited")
    args = parser.parse_args(argv)
    deps = pip_audit()
    if all("skip_reason" in d for d in deps):  # the per-version route answered for none: the project route
        pins = pinned()
        with ThreadPoolExecutor(max_workers=16) as pool:
            deps = list(pool.map(lambda name: project_route(name, pins[name]), sorted(pins)))
    audited = [d for d in deps if "skip_reason" not in d]
    skipped = [d for d in deps if "skip_reason" in d]
    allowed, failing = [], []
    excepted = exceptions()
    for dep in audited:
        for vuln in dep.get("vulns", []):
            exception = excepted.get((vuln["id"], dep["name"].lower()))
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            line = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})"
            if exception and exception[0] >= date.today():
                allowed.append(f"{line}: excepted until {exception[0]}: {exception[1]}")
            else:
                failing.append(line + (f": its exception expired on {exception[0]}" if exception else ""))
    for line in allowed:
        print(f"audit: allowed: {line}")
    for line in failing:
        print(f"audit: {line}")
    route = " (project route: pins at their newest release)" if any(d.get("route") for d in audited) else ""
    print(f"audit: {len(audited)} of {len(deps)} pinned packages audited{route}, {len(failing)} known "
          f"vulnerabilities, {len(allowed)} excepted; not audited: {len(skipped)}"
          + (f" ({', '.join(d['name'] for d in skipped[:40])})" if skipped else ""))  # fmt: skip
    if failing:
        print("audit: upgrade the pins (requirements*.in, then make lock) or add a dated exception to "
              f"{EXCEPTIONS.name} in conf/")  # fmt: skip
        return 1
    if not audited:
        print(f"audit: nothing audited (first: {skipped[0]['skip_reason'] if skipped else 'no pins'})")
        return 0 if args.allow_unreachable else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
