"""SQL and LIKE injection in every filter, through the API and the portal.

tests/audit/test_query.py checks, in the model, that the audit search's free text takes
``%`` and ``_`` literally; tests/audit/test_api.py and test_cli.py that a malformed
filter is a 400. Here every filter parameter of every listing (the audit records,
export, statistics and checkpoints, the admin consoles' users, policy lines, grants and
activity, the catalogue's resources, applications, grants and calendar, real use, one's
own sign-ins), on the API and on the portal page that has it, gets SQL, LIKE and
pattern syntax: never a 5xx; an exact filter finds nothing; the free text finds exactly
the records that contain it letter for letter; and the database is as it was."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit import AuditRecord
from audit.verify import keyservice_sigcheck, verify_database
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.tables import users
from gateway.web.nul_guard import NulRefused, guard_form_body
from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import audit_events, csrf_of
from tests.tokens import access_token

#: what goes into a value an SQL statement compares or matches with LIKE
SQL = [
    "' OR '1'='1", "'; DROP TABLE audit_records; --",
    "' UNION SELECT username, password_hash FROM users --", "%", "_", "\\%' ESCAPE '!",
    "\x00",
]
#: what goes into a number, a time or a page cursor
NUMBERS = [
    "99999999999999999999", "1 OR 1=1",
    # page cursors made up with numbers no SQL integer holds
    *(base64.urlsafe_b64encode(raw).decode().rstrip("=") for raw in (
        b"99999999999999999999999.1", b"1.-99999999999999999999")),
]
NUMERIC = {"since", "until", "limit", "cursor", "before", "level", "year", "days", "active",
           "format", "by"}
PAYLOADS = SQL + NUMBERS
#: endpoint → who calls it → the filter parameters it reads
API = {
    "/api/v1/audit/records": ("auditor", ["user", "department", "client", "event_type",
                                          "outcome", "system", "resource", "request_id",
                                          "text", "since", "until", "limit", "cursor"]),
    "/api/v1/audit/export": ("auditor", ["user", "system", "text", "format", "since"]),
    "/api/v1/audit/stats": ("auditor", ["by", "since", "until", "system", "resource",
                                        "department", "event_type"]),
    "/api/v1/audit/checkpoints": ("auditor", ["before", "limit"]),
    "/api/v1/admin/users": ("sysadmin", ["department", "state", "role", "q"]),
    "/api/v1/admin/policies": ("secadmin", ["department", "subject"]),
    "/api/v1/admin/grants": ("secadmin", ["resource", "active"]),
    "/api/v1/admin/activity": ("auditor", ["user", "outcome", "since", "until", "text",
                                           "cursor"]),
    "/api/v1/catalogue/resources": ("zhang.san", ["q", "department", "share_type", "item",
                                                  "level", "status"]),
    "/api/v1/catalogue/applications": ("zhang.san", ["status"]),
    "/api/v1/catalogue/grants": ("zhang.san", ["resource", "active"]),
    "/api/v1/catalogue/calendar": ("zhang.san", ["year"]),
    "/api/v1/stats/overview": ("auditor", ["days"]),
    "/api/v1/account/sign-ins": ("zhang.san", ["limit"]),
}
PORTAL = {
    "/portal/audit": ("auditor", ["user", "department", "system", "outcome", "text", "since",
                                  "until", "cursor"]),
    "/portal/admin/users": ("sysadmin", ["q", "department", "state", "role"]),
    "/portal/admin/policies": ("secadmin", ["department", "subject"]),
    "/portal/admin/grants": ("secadmin", ["resource", "active"]),
    "/portal/admin/activity": ("auditor", ["user", "outcome", "since", "until", "text"]),
    "/portal/catalogue": ("zhang.san", ["q", "department", "share_type", "item", "level",
                                        "status"]),
    "/portal/stats": ("auditor", ["days"]),
}
PEOPLE = {"auditor": ("platform", ("auditor",)), "sysadmin": ("platform", ("sysadmin",)),
          "secadmin": ("platform", ("secadmin",)),
          "zhang.san": ("jgswj", ("staff", "data_steward"))}


@pytest.fixture(scope="module")
def seeded(idp_world: IdpWorld) -> IdpWorld:
    """Three records whose reasons differ where ``%``, ``_`` and ``\\`` would match as
    patterns; the admins past their first password."""
    for admin in ("sysadmin", "secadmin", "auditor"):
        idp_world.services.org.change_password(admin, "Brand-New-Passw0rd-2026!")
    idp_world.services.audit.append_many_sync([
        AuditRecord(event_type="hostile_seed", outcome="success", reason="zzXzz literal"),
        AuditRecord(event_type="hostile_seed", outcome="success", reason="zz%zz literal"),
        AuditRecord(event_type="hostile_seed", outcome="success", reason="zz\\zz literal")])
    return idp_world


def bearer(world: IdpWorld, who: str) -> dict[str, str]:
    department, roles = PEOPLE[who]
    token = access_token(world.services, sub=who, department=department, roles=roles)
    return {"Authorization": f"Bearer {token}"}


def session(world: IdpWorld, who: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={world.session_cookie(who)}"}


def state(world: IdpWorld) -> tuple[int, int]:
    with world.services.engine.connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one(),
                len(world.built.policies.lines()))


async def test_no_filter_of_the_api_or_the_portal_fails_or_is_run_as_code(
        seeded: IdpWorld) -> None:
    world = seeded
    before = state(world)
    calls = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(
            world.client.app, raise_app_exceptions=False),
                                 base_url="http://127.0.0.1:8080") as http:
        for surface, auth in ((API, bearer), (PORTAL, session)):
            for path, (who, names) in surface.items():
                headers = auth(world, who)
                r = await http.get(path, headers=headers)
                assert r.status_code == 200, path
                for name in names:
                    for payload in NUMBERS if name in NUMERIC else SQL:
                        calls.append((surface is API, path, name, payload, http.get(
                            path, params={name: payload}, headers=headers)))
        answers = await gather_bounded([c for *_, c in calls])
    failures = []
    for (api, path, name, payload, _), r in zip(calls, answers, strict=True):
        if r.status_code >= 500:
            failures.append(f"{path}?{name}={payload!r}: {r.status_code}")
        elif (api and r.status_code == 200 and name not in NUMERIC and payload not in "%_"
              and r.headers["content-type"].startswith("application/json")):
            # what was found: the lists of rows (not, say, the dimensions asked for)
            listed = [v for v in r.json().values() if isinstance(v, list)
                      and any(isinstance(row, dict) for row in v)]
            if listed:
                failures.append(f"{path}?{name}={payload!r} listed {str(listed)[:100]}")
    assert not failures, "\n".join(failures[:40])
    assert state(world) == before
    report = verify_database(world.services.engine, keyservice_sigcheck(world.services.keys))
    assert report.ok, report.problems


async def gather_bounded(calls: list[Any], at_once: int = 16) -> list[Any]:
    """Every call's answer, ``at_once`` at a time (their audit records commit together)."""
    gate = asyncio.Semaphore(at_once)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


@pytest.mark.parametrize(("text", "found"), [
    ("zz%zz", ["zz%zz literal"]), ("zz_zz", []), ("zz\\zz", ["zz\\zz literal"]),
    ("zz%", ["zz%zz literal"]), ("%zz", ["zz%zz literal"]), ("zz_", []),
    ("zzXzz", ["zzXzz literal"]), ("zzxzz", ["zzXzz literal"]),  # case-insensitive
])
def test_the_free_text_takes_pattern_characters_literally(seeded: IdpWorld, text: str,
                                                          found: list[str]) -> None:
    client = seeded.fresh()
    r = client.get("/api/v1/audit/records", params={"text": text, "event_type": "hostile_seed"},
                   headers=bearer(seeded, "auditor"))
    assert r.status_code == 200, r.text
    assert sorted(rec["reason"] for rec in r.json()["records"]) == found
    page = client.get("/portal/audit", params={"text": text, "event_type": "hostile_seed"},
                      headers=session(seeded, "auditor"), follow_redirects=False)
    assert page.status_code == 200
    for reason in ("zzXzz literal", "zz%zz literal", "zz\\zz literal"):
        assert (reason in page.text) == (reason in found), (text, reason)


def test_catalogue_and_user_searches_take_patterns_literally(seeded: IdpWorld) -> None:
    client = seeded.fresh()
    steward = bearer(seeded, "zhang.san")
    everything = client.get("/api/v1/catalogue/resources", headers=steward).json()["resources"]
    assert everything
    for q in ("%", "*", ".*", "' OR '1'='1", "%%", "[a-z]"):
        r = client.get("/api/v1/catalogue/resources", params={"q": q}, headers=steward)
        assert r.json()["resources"] == [], q
        r = client.get("/api/v1/admin/users", params={"q": q},
                       headers=bearer(seeded, "sysadmin"))
        assert r.status_code == 200 and r.json()["users"] == [], q


def test_a_nul_anywhere_is_a_400_on_either_database(seeded: IdpWorld) -> None:
    """PostgreSQL refuses a NUL in any text, SQLite stores it: refused before any route,
    in the path, the query, a url-encoded or a multipart form (gateway.web.nul_guard)."""
    client = TestClient(seeded.client.app, base_url="http://127.0.0.1:8080",
                        raise_server_exceptions=False)
    page = client.get("/portal/login")
    token = csrf_of(page.text)
    form = {"csrf_token": token, "username": "li\x00si", "password": "x", "next": "/portal"}
    answers = {
        "a sign-in name": client.post("/portal/login", data=form),
        "a multipart sign-in": client.post("/portal/login", files={
            k: (None, v) for k, v in form.items()}),
        "a path parameter": client.get("/portal/catalogue/JG-0001%00",
                                       headers=session(seeded, "zhang.san")),
        "a filter": client.get("/api/v1/catalogue/grants", params={"resource": "a\x00"},
                               headers=bearer(seeded, "zhang.san")),
        "a NUL in the query": client.get("/portal/login?next=/a%00b"),
    }
    for what, r in answers.items():
        assert r.status_code == 400, (what, r.status_code, r.text[:200])
        assert r.json()["type"] == "urn:govgate:error:nul_character", what
    refused = [e for e in audit_events(seeded.services, "api_request")
               if (e["extra"] or "").find("nul_character") >= 0]
    assert len(refused) >= 3  # the ones refused before any route, with the target as sent


async def test_a_nul_split_across_two_chunks_of_a_form_is_found() -> None:
    chunks = [b"username=li%0", b"0si&password=x", b""]

    async def receive() -> dict[str, Any]:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    scope = {"headers": [(b"content-type", b"application/x-www-form-urlencoded")]}
    guarded = guard_form_body(scope, receive)
    await guarded()
    with pytest.raises(NulRefused):
        await guarded()
