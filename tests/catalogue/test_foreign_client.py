"""A user's token issued to another department's client is a request BY that client's
system on behalf of the user (docs/seams.md, "Attack of 2026-12-05, fourth session (a
user's token through another department's client, on every path)"): allowed only
where both the user and the client would be, on every path of the proxy and
forward-auth, in ``govgate policy test --client``, in ``GET /api/v1/catalogue/allowed``;
its pseudonyms are those of the department whose system receives them.

The gateway and the demo's department systems each a real uvicorn server on
127.0.0.1; zhang.san of jgswj (which owns ``vehicles``) signs in through nn-web, the
system of nn-jgsw, with the real authorization-code flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Mount

from audit import AuditLog
from gateway.cli.main import cli
from gateway.clock import FrozenClock
from gateway.demo.apps import create_upstream
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.proxy.endpoint import ProxyConfig
from gateway.services import Services
from tests.catalogue.conftest import World, audit_rows
from tests.catalogue.test_client_changes import CLIENT, GRANT, sign_in
from tests.proxy.conftest import Served
from tests.tokens import access_token
from tests.wiring import apply_state, parts

PLATE = "/api/vehicles/%E6%A1%82A%C2%B7G1024"  # 桂A·G1024, one record, no resource
ONE = "/s/vehicles" + PLATE
INDEX = "/s/vehicles/"  # the system's own page: every record, in full
ID_NUMBER = "450102198305120031"  # that record's driver, in full
SHARED = {"code": "JG-0003", "name": "单车信息", "provider": "jgswj", "system": "vehicles",
          "share_type": "unconditional",
          "route": {"method": "GET", "path": "/api/vehicles/{plate}"},
          "items": [{"name": "plate_number", "title": "车牌号"},
                    {"name": "driver_id_number", "title": "驾驶员标识", "mask": "pseudonym"}]}


@dataclass
class Sockets(World):
    """The catalogue's world over real sockets; ``seen``: the paths the upstream
    answered."""

    seen: list[str] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http.base_url)

    def records(self, event: str = "proxy_request") -> list[dict[str, Any]]:
        return audit_rows(self.services, event)

    def token(self, department: str, client_id: str | None, sub: str | None = None,
              **more: Any) -> str:
        return access_token(self.services, sub=sub, department=department,
                            client_id=client_id, **more)

    async def get(self, path: str, token: str) -> httpx.Response:  # type: ignore[override]
        return await self.http.get(path, headers={"Authorization": f"Bearer {token}"})

    async def verify(self, uri: str, token: str) -> httpx.Response:
        return await self.http.get("/auth/verify", headers={
            "X-Original-URI": uri, "X-Original-Method": "GET",
            "Authorization": f"Bearer {token}"})


@pytest.fixture
async def sockets(services: Services, clock: FrozenClock) -> AsyncIterator[Sockets]:
    from gateway.app import create_app

    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="foreign-proxy",
                   clock=lambda: clock().timestamp())
    services.audit = log
    seen: list[str] = []

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])  # what the department system was asked
        await systems(scope, receive, send)

    systems = Starlette(routes=[Mount(f"/{code}", create_upstream(code))
                                for code in ("vehicles", "offices", "assets")])
    async with Served(upstream) as up:
        apply_state(services, {"systems": [
            {"code": code, "name": code, "department": owner,
             "upstream": f"http://127.0.0.1:{up.port}/{code}"}
            for code, owner in (("vehicles", "jgswj"), ("offices", "jgswj"),
                                ("assets", "czt"))]})
        apply_state(services, {"clients": [CLIENT | {
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile proxy catalogue:read"}]})
        built = parts(services, proxy_config=ProxyConfig(rate=1000, burst=1000,
                                                         read_timeout=5, connect_timeout=2))
        app = create_app(built)
        async with Served(app) as gw, httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{gw.port}") as http:
            yield Sockets(services, http, clock, app, seen)
        await built.proxy.aclose()
    await log.close()
    services.audit = sync_log


def _session(world: Sockets, username: str) -> dict[str, str]:
    value, _ = parts(world.services).provider.store.create_session(
        username, "active", amr="pwd", absolute_seconds=86400)
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


async def test_paths_no_resource_governs_need_both_the_user_and_the_client(
        sockets: Sockets) -> None:
    world = sockets
    zhang = (await sign_in(world, "zhang.san"))["access_token"]  # jgswj, through nn-web

    # the provider's user through nn-jgsw's system: the rest of vehicles stays shut
    for path in (ONE, INDEX, "/s/vehicles/api/export"):
        r = await world.get(path, zhang)
        assert r.status_code == 403, (path, r.text)
        assert ID_NUMBER not in r.text
        refused = world.records()[-1]
        assert refused["outcome"] == "deny" and refused["actor_client"] == "nn-web"
        assert refused["extra"]["client_department"] == "nn-jgsw"
        assert refused["reason"].startswith("client nn-web of nn-jgsw: deny by default rule")
    assert world.seen == []
    # forward-auth answers the same: nginx would have passed the raw page
    r = await world.verify(ONE, zhang)
    assert r.status_code == 403 and "x-govgate-assertion" not in r.headers
    assert world.records("forward_auth")[-1]["extra"]["client_department"] == "nn-jgsw"

    # a line opening the path to nn-web's department (ungoverned: vehicles publishes)
    # opens it to the user through nn-web, who may reach it too
    apply_state(world.services, {"policies": [{
        "subject": "client:nn-web", "department": "nn-jgsw",
        "object": "/s/vehicles/api/vehicles/*", "action": "GET", "ungoverned": True,
        "reason": "车辆台账核对"}]})
    parts(world.services).policies.refresh()
    r = await world.get(ONE, zhang)
    assert r.status_code == 200 and r.json()["driver_id_number"] == ID_NUMBER
    allowed = world.records()[-1]
    assert "user zhang.san of jgswj: allow by default rule" in allowed["reason"]
    assert "client nn-web of nn-jgsw: allow by policy line" in allowed["reason"]
    assert world.seen == ["/vehicles/api/vehicles/桂A·G1024"]
    # ... but not to a user who may not: czt's zhao.min through nn-web
    zhao = world.token("czt", "nn-web", sub="zhao.min")
    r = await world.get(ONE, zhao)
    assert r.status_code == 403
    assert world.records()[-1]["reason"].startswith("user zhao.min of czt: deny by default")
    # nor the index the line does not name
    assert (await world.get(INDEX, zhang)).status_code == 403


async def test_own_clients_client_tokens_and_sessions_decide_as_before(
        sockets: Sockets) -> None:
    world = sockets
    # the user through a client of their own department
    own = world.token("jgswj", "office-web", sub="zhang.san")
    r = await world.get(ONE, own)
    assert r.status_code == 200 and r.json()["driver_id_number"] == ID_NUMBER
    assert "client_department" not in world.records()[-1]["extra"]
    assert (await world.verify(INDEX, own)).status_code == 200
    # nn-jgsw's user through nn-jgsw's client: refused by the default rule, as before
    wang = world.token("nn-jgsw", "nn-web", sub="wang.wu")
    assert (await world.get(ONE, wang)).status_code == 403
    assert world.records()[-1]["reason"].startswith("deny by default rule")
    # nn-web's own client-credentials token: its department, as before
    assert (await world.get(ONE, world.token("nn-jgsw", "nn-web"))).status_code == 403
    # zhang.san's portal session: his department
    r = await world.http.get(INDEX, headers=_session(world, "zhang.san"))
    assert r.status_code == 200 and ID_NUMBER in r.text
    # a token naming a client nobody registered: fail closed, governed or not
    ghost = world.token("jgswj", "ghost-system", sub="zhang.san", registered=False)
    for path in (ONE, INDEX):
        assert (await world.get(path, ghost)).status_code == 403
        assert "client ghost-system of no registration" in world.records()[-1]["reason"]


def test_policy_test_reads_a_user_through_a_client_as_the_proxy_does(
        services: Services, env: dict[str, str]) -> None:
    apply_state(services, {"clients": [CLIENT]})
    runner = CliRunner(env=env)

    def says(*args: str) -> tuple[int, str]:
        r = runner.invoke(cli, ["policy", "test", *args], catch_exceptions=False)
        return r.exit_code, r.output

    obj = "/s/vehicles/api/export"
    assert says("user:zhang.san", "jgswj", obj, "GET")[1].startswith(
        "allow\tallow by default rule")
    code, out = says("user:zhang.san", "jgswj", obj, "GET", "--client", "nn-web")
    assert code == 0 and out.startswith("deny\tclient nn-web of nn-jgsw: deny by default")
    code, out = says("user:zhang.san", "jgswj", obj, "GET", "--client", "office-web")
    assert code == 0 and out.startswith("allow\tallow by default rule")
    code, out = says("user:zhang.san", "jgswj", obj, "GET", "--client", "ghost")
    assert code == 0 and "client ghost of no registration" in out
    code, out = says("role:staff", "jgswj", obj, "GET", "--client", "nn-web")
    assert code == 2 and "user:NAME" in out


async def test_allowed_lists_what_the_proxy_releases_into_the_clients_system(
        sockets: Sockets) -> None:
    world = sockets
    zhang = (await sign_in(world, "zhang.san", "openid profile proxy catalogue:read"))
    token = zhang["access_token"]

    async def listed() -> dict[str, list[str]]:
        r = await world.get("/api/v1/catalogue/allowed", token)
        assert r.status_code == 200, r.text
        return {e["resource"]: [i["name"] for i in e["items"]] for e in r.json()["allowed"]}

    # no grant for nn-jgsw: JG-0001 is not nn-web's to receive, as the proxy says
    found = await listed()
    assert "JG-0001" not in found and "JG-0002" in found
    assert (await world.get("/s/vehicles/api/vehicles", token)).status_code == 403
    # nn-jgsw's grant of two items: those two, as the proxy releases
    apply_state(world.services, {"grants": [GRANT]})
    found = await listed()
    assert found["JG-0001"] == ["plate_number", "brand"]
    r = await world.get("/s/vehicles/api/vehicles", token)
    assert r.status_code == 200 and set(r.json()["items"][0]) == {"plate_number", "brand"}
    # czt's user through nn-web: czt's grant within nn-jgsw's
    zhao = world.token("czt", "nn-web", sub="zhao.min")
    r = await world.get("/api/v1/catalogue/allowed", zhao)
    items = {e["resource"]: [i["name"] for i in e["items"]] for e in r.json()["allowed"]}
    assert items["JG-0001"] == ["plate_number", "brand"]
    assert "client nn-web of nn-jgsw" in next(
        e["reason"] for e in r.json()["allowed"] if e["resource"] == "JG-0001")


async def test_pseudonyms_are_those_of_the_receiving_systems_department(
        sockets: Sockets) -> None:
    world = sockets
    apply_state(world.services, {"catalogue": [SHARED]})

    async def pseudonym(token: str) -> str:
        r = await world.get(ONE, token)
        assert r.status_code == 200, r.text
        value = r.json()["driver_id_number"]
        assert value.startswith("p:") and value != ID_NUMBER
        return str(value)

    # everything nn-web's system receives carries nn-jgsw's pseudonym of the value,
    # whichever department's user it served: one pseudonym per value in that system
    nn_web = await pseudonym(world.token("nn-jgsw", "nn-web"))
    assert await pseudonym(world.token("nn-jgsw", "nn-web", sub="wang.wu")) == nn_web
    assert await pseudonym(world.token("czt", "nn-web", sub="zhao.min")) == nn_web
    zhang = (await sign_in(world, "zhang.san"))["access_token"]
    assert await pseudonym(zhang) == nn_web
    # czt's own system gets czt's, another: two departments still cannot join
    czt = await pseudonym(world.token("czt", "finance-system"))
    assert czt != nn_web
    # czt's user through jgswj's office-web: jgswj's system receives jgswj's
    office = await pseudonym(world.token("czt", "office-web", sub="zhao.min"))
    assert office not in (czt, nn_web)


async def test_the_security_consoles_decision_test_reads_the_client_too(
        sockets: Sockets) -> None:
    world = sockets

    def admin(username: str, department: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + access_token(
            world.services, sub=username, department=department, roles=("secadmin",),
            scope="openid admin")}

    async def decided(who: dict[str, str], **more: str) -> httpx.Response:
        return await world.http.get("/api/v1/admin/policies/test", headers=who, params={
            "subject": "user:zhang.san", "system": "vehicles", "method": "GET", **more})

    province = admin("sec.gx", "platform")
    r = await decided(province, path="/api/export")
    assert r.json()["decision"]["allowed"] is True
    r = await decided(province, path="/api/export", client="nn-web")
    assert r.status_code == 200, r.text
    decision = r.json()["decision"]
    assert decision["allowed"] is False and decision["reason"].startswith(
        "client nn-web of nn-jgsw: deny by default rule")
    # a governed route: the catalogue for both departments, as the proxy
    decision = (await decided(province, path="/api/vehicles", client="nn-web")
                ).json()["decision"]
    assert decision["allowed"] is False and decision["resource"] == "JG-0001"
    assert "client nn-web of nn-jgsw: JG-0001 is conditional" in decision["reason"]
    assert (await decided(province, path="/api/vehicles", client="office-web")
            ).json()["decision"]["allowed"] is True
    # a client with a subject that is no user; a department's admin and another's client
    r = await world.http.get("/api/v1/admin/policies/test", headers=province, params={
        "subject": "role:staff", "department": "jgswj", "system": "vehicles",
        "path": "/api/export", "method": "GET", "client": "nn-web"})
    assert r.status_code == 400 and "user:NAME" in r.text
    city = admin("sec.nn", "nn-jgsw")  # a city department's: its own clients only
    wang = {"subject": "user:wang.wu", "path": "/api/export"}
    assert (await decided(city, **wang, client="nn-web")).status_code == 200
    r = await decided(city, **wang, client="office-web")
    assert r.status_code == 403 and "jgswj" not in r.text
