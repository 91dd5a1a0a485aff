"""The gaps between processes, attacked: a security change made through one ``govgate
serve`` process (its API, or the command line / state file against the database) and
the time until the other process enforces it, against docs/workers.md's table ("How
the processes agree"). One pair of processes, one real upstream, the changes made one
after another; each test prints what it measured."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from audit.tables import records
from bench.gateway_world import LOADER, SYSTEM, WEB, GatewayProcess, audit_records, free_port, state
from bench.load import _CSRF, Client
from gateway.break_glass.tables import break_glass
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from tests.multiprocess.conftest import ONLY_POSTGRES, shared_world
from tests.tokens import access_token, ensure_client, ensure_user, own_client
from tests.wiring import apply_state, parts

pytestmark = ONLY_POSTGRES

WITHIN = 1.0  # seconds: docs/workers.md, "at most" (the largest figure but restart)
ADMIN_API = "/api/v1/admin"
UPSTREAM: dict[str, str] = {}  # the real upstream's address, for the state file
ROUND = 1.0  # seconds between the processes' maintenance rounds


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Services, GatewayProcess, GatewayProcess]]:
    # polls every 20 ms would meet the conftest's small rate limit (a 429 hides the
    # decision): none here
    # the maintenance round every ROUND seconds (60 by default): the break-glass notices
    with shared_world(tmp_path_factory.mktemp("reach"), ports=2, rate=1e6, burst=1e6,
                      settings={"GOVGATE_MAINTENANCE_INTERVAL_SECONDS": str(ROUND)}) as (
            services, gateways, upstream):
        UPSTREAM["url"] = upstream.url
        one, two = gateways
        yield services, one, two


def _admin(services: Services, username: str, role: str, department: str = "jgswj"
           ) -> dict[str, str]:
    ensure_user(services, username, department, [role])
    return _bearer(access_token(services, sub=username, department=department,
                                roles=[role], scope="openid admin account"))


def _entry(section: str, code: str, **changes: Any) -> dict[str, Any]:
    """One entry of the world's state file (``bench.gateway_world.state``), changed."""
    key = "client_id" if section == "clients" else "code"
    entry = next(e for e in state(UPSTREAM["url"], user_count=2)[section]
                 if e[key] == code)
    return {**copy.deepcopy(entry), **changes}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _until(check: Callable[[], bool], what: str, within: float = WITHIN) -> float:
    """Seconds from now until a ``check()`` that holds was started (polling every
    20 ms); fails when one started ``within`` seconds or later does not hold: the
    promise is about the requests that arrive that long after the change."""
    started = time.monotonic()
    while True:
        at = time.monotonic() - started
        if check():
            print(f"{what}: {at:.3f} s")
            return at
        assert at < within, f"{what}: not within {within:g} s"
        time.sleep(0.02)


def _proxied(gateway: GatewayProcess, token: str, path: str = "/api/ping") -> int:
    return httpx.get(f"{gateway.url}/s/{SYSTEM}{path}", headers=_bearer(token),
                     timeout=5).status_code


def _client_token(services: Services, client_id: str, department: str = "jgswj") -> str:
    """A token of a client of its own."""
    ensure_client(services, client_id, department, "proxy")
    return access_token(services, sub=None, client_id=client_id, department=department,
                        scope="proxy")


def _loader_token(gateway: GatewayProcess) -> str:
    r = httpx.post(f"{gateway.url}/oauth2/token", data={"grant_type": "client_credentials"},
                   auth=LOADER, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _revoke(gateway: GatewayProcess, token: str) -> None:
    r = httpx.post(f"{gateway.url}/oauth2/revoke", data={"token": token}, auth=LOADER,
                   timeout=10)
    assert r.status_code == 200, r.text


def test_a_revocation_committed_after_a_later_one_is_not_skipped(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """Deny-list rows are numbered when written and seen when committed: a revocation
    whose transaction commits after a later-numbered one (another process, a longer
    transaction) lies below the mirror's high-water mark by then. It was never read:
    the revoked token stayed good in that process until it expired."""
    services, one, two = world
    slow, quick = _loader_token(one), _loader_token(one)
    assert _proxied(two, slow) == 200 and _proxied(two, quick) == 200
    store = parts(services).provider.store
    with services.engine.connect() as conn:
        late = conn.begin()
        # the slow revocation: numbered now, committed after the quick one
        store._deny(conn, "jti", str(_claims(slow)["jti"]), 600)
        _revoke(one, quick)
        _until(lambda: _proxied(two, quick) == 401, "quick revocation in the other")
        late.commit()
    _until(lambda: _proxied(two, slow) == 401, "revocation committed late, in the other")
    assert _proxied(one, slow) == 401


def test_a_token_verified_before_its_key_was_destroyed_is_refused(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """A compromised signing key: rotated with ``now`` through one process, then
    destroyed (``govgate keys destroy``). The other process had verified a token of
    it and kept it in its cache of verified tokens (up to 60 s) with no look at the
    ring: the token stayed good there for a minute."""
    services, one, two = world
    token = _client_token(services, "keyed")
    old = str(_header(token)["kid"])
    assert _proxied(two, token) == 200  # verified there, now cached
    services.keys.rotate("token")
    services.keys.promote_now("token")
    services.keys.destroy(old)
    _until(lambda: _proxied(two, token) == 401, "token of a destroyed key, in the other")
    _until(lambda: _proxied(one, token) == 401, "and in the first")
    fresh = _loader_token(one)  # the new key signs, and the other accepts it
    assert _header(fresh)["kid"] != old and _proxied(two, fresh) in (200, 429)


@dataclass
class Person:
    """Someone signed in at the portal, with the code flow's tokens."""

    access: str
    refresh: str
    cookies: dict[str, str]


def _signed_in(gateway: GatewayProcess, username: str) -> Person:
    """``username`` signed in at ``gateway``'s portal, then the code flow
    (``bench.load.Client``: a person at a browser)."""
    async def sign_in() -> Person:
        client = Client(gateway.url, username, [])
        try:
            assert await client.sign_in(), client.answers[-3:]
            return Person(client.access, client.refresh_token, dict(client.http.cookies))
        finally:
            await client.aclose()
    return asyncio.run(sign_in())


def _portal_ok(gateway: GatewayProcess, person: Person) -> bool:
    r = httpx.get(f"{gateway.url}/api/v1/account/sessions", timeout=5,
                  cookies={SESSION_COOKIE: person.cookies[SESSION_COOKIE]})
    return r.status_code == 200


def test_a_refresh_family_revoked_through_one_ends_its_access_token_in_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """RFC 7009 on the refresh token: its family and the access token it came with."""
    _, one, two = world
    person = _signed_in(one, "user000")
    assert _proxied(two, person.access) == 200
    r = httpx.post(f"{one.url}/oauth2/revoke", auth=WEB, timeout=10,
                   data={"token": person.refresh, "token_type_hint": "refresh_token"})
    assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, person.access) == 401, "refresh family revoked: its access "
                                                       "token in the other")
    r = httpx.post(f"{two.url}/oauth2/token", auth=WEB, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": person.refresh})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_a_portal_sign_out_through_one_ends_the_session_and_its_tokens_in_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """The portal's sign-out (which also tells the relying parties, back-channel):
    the session cookie and the tokens issued under the session (their ``sid``)."""
    _, one, two = world
    person = _signed_in(one, "user001")
    assert _proxied(two, person.access) == 200 and _portal_ok(two, person)
    with httpx.Client(base_url=one.url, cookies=person.cookies, timeout=10,
                      headers={"Origin": one.url}) as browser:
        found = _CSRF.search(browser.get("/portal").text)
        assert found is not None
        r = browser.post("/portal/logout", data={"csrf_token": found.group(1)})
        assert r.status_code == 200, r.text[:300]
    # the browser's copy of the cookie, replayed at the other
    _until(lambda: not _portal_ok(two, person) and _proxied(two, person.access) == 401,
           "portal sign-out: session and its tokens in the other")


def test_a_client_disabled_through_one_is_refused_by_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    services, one, two = world
    admin = _admin(services, "sys.mp", "sysadmin")
    token = _client_token(services, "doomed")
    assert _proxied(two, token) == 200
    r = httpx.post(f"{one.url}{ADMIN_API}/clients/doomed/disable", headers=admin,
                   timeout=10)
    assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, token) == 401, "client disabled: its token in the other")


def test_a_client_secret_rotated_through_one_is_refused_by_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    services, one, two = world
    admin = _admin(services, "sys.mp", "sysadmin")
    old = ("rotated", "rotated-secret-0123456789abcdef0123")
    apply_state(services, {"clients": [{
        "client_id": old[0], "name": "轮换", "department": "jgswj", "scope": "proxy",
        "grant_types": ["client_credentials"], "secret": old[1]}]})

    def token_status(auth: tuple[str, str]) -> int:
        return httpx.post(f"{two.url}/oauth2/token", auth=auth, timeout=5,
                          data={"grant_type": "client_credentials"}).status_code

    _until(lambda: token_status(old) == 200, "client registered")
    r = httpx.post(f"{one.url}{ADMIN_API}/clients/{old[0]}/rotate-secret", headers=admin,
                   timeout=10)
    assert r.status_code == 200, r.text
    _until(lambda: token_status(old) == 401, "client secret rotated: the old one refused in "
                                             "the other")
    assert token_status((old[0], r.json()["client_secret"])) == 200


def test_a_role_taken_by_the_state_file_is_gone_in_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    services, _, two = world
    admin = _admin(services, "was.sysadmin", "sysadmin")

    def listed() -> int:
        return httpx.get(f"{two.url}{ADMIN_API}/users", headers=admin, timeout=5).status_code

    assert listed() == 200
    apply_state(services, {"users": [{"username": "was.sysadmin", "name": "was.sysadmin",
                                      "department": "jgswj", "roles": ["staff"],
                                      "status": "active"}]})
    _until(lambda: listed() == 403, "role taken (state file): refused in the other")


def test_catalogue_changes_reach_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """A resource made not shared (state file), then shared on conditions with a grant
    that is revoked through one process's API: the other stops releasing it."""
    services, one, two = world
    outsider = _client_token(services, "czt-app", department="czt")
    assert _proxied(two, outsider, "/api/items") == 200  # unconditional: shaped
    apply_state(services, {"catalogue": [_entry("catalogue", "JG-0100", share_type="none",
                                                basis="测试")]})
    _until(lambda: _proxied(two, outsider, "/api/items") == 403,
           "resource made not shared (state file): refused in the other")
    apply_state(services, {
        "catalogue": [_entry("catalogue", "JG-0100", share_type="conditional",
                             basis="测试")],
        "grants": [{"resource": "JG-0100", "consumer": "czt", "items": ["id", "name"],
                    "purpose": "测试", "until": "2099-12-31"}]})
    _until(lambda: _proxied(two, outsider, "/api/items") == 200, "grant given")
    admin = _admin(services, "sec.mp", "secadmin")
    grants = httpx.get(f"{one.url}{ADMIN_API}/grants", headers=admin, timeout=10)
    assert grants.status_code == 200, grants.text
    gid = next(g["id"] for g in grants.json()["grants"] if g["resource"] == "JG-0100")
    r = httpx.post(f"{one.url}{ADMIN_API}/grants/{gid}/revoke", headers=admin, timeout=10,
                   json={"reason": "合同到期"})
    assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, outsider, "/api/items") == 403,
           "grant revoked: refused in the other")


def test_system_changes_reach_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """The upstream moved (to an address nobody answers: 502 proves it), then
    ``case_sensitive_paths`` set: another spelling of a governed route stops being
    read as that route."""
    services, one, two = world
    admin = _admin(services, "sys.mp", "sysadmin")
    caller = _client_token(services, "sys-watch")
    assert _proxied(two, caller) == 200
    nobody = f"http://127.0.0.1:{free_port()}"
    r = httpx.post(f"{one.url}{ADMIN_API}/systems/{SYSTEM}", headers=admin, timeout=10,
                   json={"upstream": nobody})
    assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, caller) == 502, "upstream moved: the other follows")
    r = httpx.post(f"{one.url}{ADMIN_API}/systems/{SYSTEM}", headers=admin, timeout=10,
                   json={"upstream": UPSTREAM["url"]})
    assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, caller) == 200, "upstream back")
    # another department reads the items unconditionally (shaped), however spelled,
    # while the system's paths are read without regard to case
    apply_state(services, {"catalogue": [_entry("catalogue", "JG-0100")]})
    outsider = _client_token(services, "czt-spell", department="czt")
    # read as the route, released and sent on; the upstream tells letters apart: 404
    _until(lambda: _proxied(two, outsider, "/API/ITEMS") == 404, "shared again")
    apply_state(services, {"systems": [_entry("systems", SYSTEM,
                                              case_sensitive_paths=True)]})
    # another spelling is another path there: not the route, the system refused
    _until(lambda: _proxied(two, outsider, "/API/ITEMS") == 403,
           "case_sensitive_paths set (state file): the other reads paths exactly")
    apply_state(services, {"systems": [_entry("systems", SYSTEM)]})
    _until(lambda: _proxied(two, outsider, "/API/ITEMS") == 404,
           "case_sensitive_paths unset: the other governs every spelling again")


def test_a_break_glass_ended_early_through_one_closes_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """Dual-approved emergency access to a system of another department, ended early
    by a security administrator through one process."""
    services, one, two = world
    ensure_user(services, "bg.czt", "czt", ["staff"])
    # through czt's own system: through another department's (office-web of jgswj) that
    # system acts for the person, and a break-glass never opens to it (gateway.proxy.through)
    person = access_token(services, sub="bg.czt", department="czt", client_id=own_client("czt"),
                          scope="openid proxy account")
    first, second = (_admin(services, name, "secadmin") for name in ("sec.a", "sec.b"))
    assert _proxied(two, person) == 403
    r = httpx.post(f"{one.url}/api/v1/break-glass", headers=_bearer(person), timeout=10,
                   json={"system": SYSTEM, "reason": "抢修", "minutes": 30})
    assert r.status_code == 201, r.text
    bg = r.json()["break_glass"]["id"]
    for admin in (first, second):
        r = httpx.post(f"{one.url}/api/v1/break-glass/{bg}/approve", headers=admin,
                       timeout=10)
        assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, person) == 200, "break-glass approved: open in the other")
    r = httpx.post(f"{one.url}/api/v1/break-glass/{bg}/end", headers=first, timeout=10,
                   json={"reason": "抢修完毕"})
    assert r.status_code == 200, r.text
    _until(lambda: _proxied(two, person) == 403, "break-glass ended early: shut in the other")


def test_a_break_glass_that_expires_is_told_once_by_the_two(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """A break-glass that expires by itself told no audit administrator. Now the
    maintenance round of whichever process claims it first tells each covering one
    (here the platform's ``auditor``) exactly once, however many rounds of both
    processes run after (failed on the base: no notice)."""
    services, one, _ = world
    ensure_user(services, "bg.exp", "czt", ["staff"])
    person = access_token(services, sub="bg.exp", department="czt",
                          client_id=own_client("czt"), scope="openid proxy account")
    admins = [_admin(services, name, "secadmin") for name in ("sec.a", "sec.b")]
    r = httpx.post(f"{one.url}/api/v1/break-glass", headers=_bearer(person), timeout=10,
                   json={"system": SYSTEM, "reason": "抢修", "minutes": 30})
    assert r.status_code == 201, r.text
    bg = r.json()["break_glass"]["id"]
    for admin in admins:
        r = httpx.post(f"{one.url}/api/v1/break-glass/{bg}/approve", headers=admin,
                       timeout=10)
        assert r.status_code == 200, r.text

    def told() -> list[tuple[str, str]]:
        with services.engine.connect() as conn:
            rows = conn.execute(sa.select(records.c.reason, records.c.extra).where(
                records.c.event_type == "auditor_notice")).all()
        return sorted((r.reason, json.loads(r.extra)["user"]) for r in rows
                      if json.loads(r.extra)["break_glass"] == bg)

    assert told() == [("break_glass_activated", "auditor")]
    # its end reached (the processes run on the real clock: the row's end moved back)
    with services.engine.begin() as conn:
        conn.execute(break_glass.update().where(break_glass.c.id == bg)
                     .values(ends_at=services.clock() - timedelta(seconds=1)))
    _until(lambda: len(told()) == 2, "expired: the auditor told", within=4 * ROUND + 2)
    time.sleep(3 * ROUND)  # more rounds of both processes: none tells it again
    assert told() == [("break_glass_activated", "auditor"), ("break_glass_expired", "auditor")]


def test_per_caller_assertions_turned_off_in_the_state_file_stop_in_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """``assertion: per_caller`` (one signed assertion reused for a caller up to 30 s)
    turned off: the other process signs one for each request again, as its audit
    records show (``extra.assertion_jti`` names a reused one)."""
    services, _, two = world
    caller = _client_token(services, "reused")

    def reused() -> bool:
        r = httpx.get(f"{two.url}/s/{SYSTEM}/api/ping", headers=_bearer(caller), timeout=5)
        assert r.status_code == 200, r.text
        rows = audit_records(services.settings.database_url, r.headers["x-request-id"])
        return "assertion_jti" in rows[0]["extra"]

    apply_state(services, {"systems": [_entry("systems", SYSTEM, assertion="per_caller")]})
    _until(reused, "per_caller set (state file): reused in the other")
    apply_state(services, {"systems": [_entry("systems", SYSTEM)]})
    _until(lambda: not reused(), "per_caller turned off (state file): one per request in "
                                 "the other")


def test_a_delegation_revoked_through_one_stops_the_delegate_in_the_other(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """委托: user000 acts for dg.a on the system through the other process's portal
    session (the ``gg_act`` choice); dg.a revokes the delegation through one."""
    services, one, two = world
    ensure_user(services, "dg.head", "jgswj", ["staff", "dept_head"])
    ensure_user(services, "dg.a", "jgswj", ["staff"])
    giver = _bearer(access_token(services, sub="dg.a", department="jgswj",
                                 scope="openid account"))
    head = _bearer(access_token(services, sub="dg.head", department="jgswj",
                                roles=["staff", "dept_head"], scope="openid account"))
    until = (services.clock() + timedelta(days=7)).date().isoformat()
    r = httpx.post(f"{one.url}/api/v1/delegations", headers=giver, timeout=10, json={
        "delegate": "user000", "systems": [SYSTEM], "ends_at": until, "reason": "出差"})
    assert r.status_code == 201, r.text
    did = r.json()["delegation"]["id"]
    r = httpx.post(f"{one.url}/api/v1/delegations/{did}/approve", headers=head, timeout=10,
                   json={})
    assert r.status_code == 200, r.text
    person = _signed_in(two, "user000")
    with httpx.Client(base_url=two.url, cookies=person.cookies, timeout=10,
                      headers={"Origin": two.url}) as browser:
        found = _CSRF.search(browser.get("/portal/delegations").text)
        assert found is not None
        r = browser.post(f"/portal/delegations/{did}/act",
                         data={"csrf_token": found.group(1)})
        assert r.status_code in (200, 303), r.text[:300]

        def as_giver() -> int:
            return browser.get(f"/s/{SYSTEM}/api/ping").status_code

        assert as_giver() == 200
        r = httpx.post(f"{one.url}/api/v1/delegations/{did}/revoke", headers=giver,
                       timeout=10, json={})
        assert r.status_code == 200, r.text
        _until(lambda: as_giver() == 403, "delegation revoked: the delegate refused in "
                                          "the other")
