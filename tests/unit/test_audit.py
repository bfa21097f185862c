"""``make audit``'s decisions (scripts/audit.py) on hand-written pip-audit reports: what fails, what an
exception allows and until when, and that "nothing audited" is never a pass. The vulnerability
service itself is asked by ``.ci/run``."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scripts import audit

VULN = {"name": "jinja2", "version": "3.1.2", "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}]}
CLEAN = {"name": "requests", "version": "2.34.2", "vulns": []}


@pytest.fixture()
def report(monkeypatch, tmp_path):
    exceptions = tmp_path / "audit-exceptions.tsv"
    exceptions.write_text("id\tpackage\tuntil\treason\n")
    monkeypatch.setattr(audit, "EXCEPTIONS", exceptions)

    def use(deps, project=None):
        monkeypatch.setattr(audit, "pip_audit", lambda: deps)
        monkeypatch.setattr(audit, "pinned", lambda: {"requests": "2.34.2"})
        monkeypatch.setattr(audit, "project_route", project or (lambda n, v: {"name": n, "skip_reason": "refused"}))
        return exceptions

    return use


def test_a_known_vulnerability_fails_with_one_line_naming_it(report, capsys):
    report([VULN, CLEAN])
    assert audit.main([]) == 1
    out = capsys.readouterr().out
    assert "audit: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)\n" in out
    assert "2 of 2 pinned packages audited, 1 known vulnerabilities, 0 excepted; not audited: 0" in out


def test_a_dated_exception_allows_a_finding_until_it_expires(report, capsys):
    exceptions = report([VULN, CLEAN])
    until = date.today() + timedelta(days=30)
    exceptions.write_text(
        f"id\tpackage\tuntil\treason\nGHSA-h5c8-rqwp-cp95\tJinja2\t{until}\tonly templates we write\n"
    )
    assert audit.main([]) == 0
    assert (
        f"allowed: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3): excepted until {until}"
        in capsys.readouterr().out
    )
    expired = date.today() - timedelta(days=1)
    exceptions.write_text(f"id\tpackage\tuntil\treason\nGHSA-h5c8-rqwp-cp95\tjinja2\t{expired}\told\n")
    assert audit.main([]) == 1
    assert f"its exception expired on {expired}" in capsys.readouterr().out


def test_nothing_audited_is_never_a_pass(report, capsys):
    report([{"name": "requests", "skip_reason": "Dependency not found on PyPI"}])
    assert audit.main([]) == 2
    assert "nothing audited (first: refused)" in capsys.readouterr().out
    assert audit.main(["--allow-unreachable"]) == 0


def test_the_project_route_audits_pins_at_their_newest_release(report, capsys):
    report(
        [{"name": "requests", "skip_reason": "Dependency not found on PyPI"}],
        project=lambda n, v: {
            "name": n,
            "version": v,
            "vulns": [{"id": "PYSEC-1", "fix_versions": []}],
            "route": "project",
        },
    )
    assert audit.main([]) == 1
    out = capsys.readouterr().out
    assert "requests 2.34.2: PYSEC-1 (fixed in no fixed version)" in out and "(project route" in out
