"""A department with a delegator (li.ming), a colleague (wang.fang), their head
(zhao.head) and someone of another department (chen.jing); the echo upstream behind
the proxy (``tests.proxy.conftest``), in process or on sockets; a clock the tests move.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from audit.writer import AuditLog
from gateway.app import create_app
from gateway.clock import utcnow
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.proxy.acting import choice
from gateway.services import Services, open_services
from gateway.settings import Settings
from tests.conftest import UNKNOWN_PASSWORD, initialised
from tests.in_process import AsgiUpstreams
from tests.proxy.conftest import (
    IN_PROCESS_ECHO,
    ORG,
    WORLD_PROXY,
    Echo,
    RecordingAudit,
    World,
    echo_app,
    served_world,
    world_systems,
)
from tests.wiring import apply_state, gateway_for

PASSWORD = "Very-long-pass-123"
PEOPLE = {  # username: (name, department, roles)
    "li.ming": ("李明", "jgswj", ["staff", "data_steward"]),
    "wang.fang": ("王芳", "jgswj", ["staff"]),
    "zhao.head": ("赵主任", "jgswj", ["staff", "dept_head"]),
    "chen.jing": ("陈静", "czt", ["staff"]),
}


class ShiftClock:
    """The real time, moved forward by hand (expiry without sleeping)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ShiftClock:
    return ShiftClock()


@pytest.fixture
def base_services(settings: Settings, clock: ShiftClock) -> Iterator[Services]:
    initialised(settings, UNKNOWN_PASSWORD)
    svc = open_services(settings, clock=clock)
    apply_state(svc, ORG)
    for username, (name, dept, roles) in PEOPLE.items():
        svc.org.add_user(username, name, dept, roles, PASSWORD, must_change=False)
    yield svc
    svc.close()


def systems_doc(echo_upstream: str) -> dict[str, Any]:
    """The world's systems, one of the other department (czt) too, and a policy line
    that opens ``down`` to the data stewards of jgswj."""
    return {"systems": [*world_systems(echo_upstream),
                        {"code": "ledger", "name": "财政台账", "department": "czt",
                         "upstream": echo_upstream}],
            "policies": [{"subject": "role:data_steward", "department": "jgswj",
                          "object": "/s/ledger/*", "action": "GET", "ungoverned": True,
                          "reason": "stewards read the ledger"}]}


@pytest.fixture
async def quick(base_services: Services) -> AsyncIterator[World]:
    """``tests.proxy.conftest.quick_world`` over these people (no sockets)."""
    echo = Echo()
    log = AuditLog(base_services.engine, writer_id="deleg-test")
    audit = RecordingAudit(log)
    base_services.audit = audit  # type: ignore[assignment]
    built = gateway_for(base_services, proxy_config=WORLD_PROXY, upstream_client=AsgiUpstreams(
        {IN_PROCESS_ECHO: echo_app(echo)}))
    built.state_applier().apply(systems_doc(f"http://{IN_PROCESS_ECHO}"))
    built.policies.refresh()
    yield World(base_services, echo, None, None, audit, built, app=create_app(built))
    await built.aclose()
    await log.close()


@pytest.fixture
async def sockets(base_services: Services) -> AsyncIterator[World]:
    """The gateway and the echo upstream, each a real server on 127.0.0.1."""
    async with served_world(base_services) as made:
        made.built.state_applier().apply(systems_doc(
            f"http://127.0.0.1:{made.upstream.port if made.upstream else 0}"))
        made.built.policies.refresh()
        yield made


def session(world: World, username: str) -> str:
    value, _ = world.built.provider.store.create_session(
        username, "active", amr="pwd", absolute_seconds=86400)
    return value


def cookies(world: World, username: str, acting: int | str | None = None) -> tuple[str, str]:
    """The Cookie header of a new portal session of ``username``, having chosen to act
    under delegation ``acting`` in it (an int: the portal's choice for this session; a
    str: that value as it is)."""
    value, row = world.built.provider.store.create_session(
        username, "active", amr="pwd", absolute_seconds=86400)
    out = f"{SESSION_COOKIE}={value}"
    if isinstance(acting, int):
        out += f"; gg_act={choice(world.services.keys, row.sid, acting)}"
    elif acting is not None:
        out += f"; gg_act={acting}"
    return ("Cookie", out)


async def api(world: World, username: str, method: str, path: str,
              body: dict[str, Any] | None = None) -> Any:
    """A call of /api/v1/delegations as ``username``'s portal session."""
    # the tests read the English of the API's refusals
    headers = [cookies(world, username), ("Accept", "application/json"),
               ("Accept-Language", "en")]
    data = None
    if method != "GET":
        headers.append(("Content-Type", "application/json"))
        data = json.dumps(body or {}).encode()
    return await world.request(method, "/api/v1/delegations" + path, headers=headers,
                               body=data)


def ask(world: World, *, systems: list[str] | None = None, roles: list[str] | None = None,
        days: float = 1) -> dict[str, Any]:
    end = (world.services.clock() + timedelta(days=days)).isoformat()
    return {"delegate": "wang.fang", "systems": systems if systems is not None else ["echo"],
            "roles": roles or [], "ends_at": end, "reason": "出差期间代为审批"}


async def approved(world: World, **kw: Any) -> int:
    """A delegation from li.ming to wang.fang, approved by zhao.head; its id."""
    r = await api(world, "li.ming", "POST", "", ask(world, **kw))
    assert r.status == 201, r.body
    number = int(json.loads(r.body)["delegation"]["id"])
    r = await api(world, "zhao.head", "POST", f"/{number}/approve")
    assert r.status == 200, r.body
    return number


def steps(world: World) -> list[SimpleNamespace]:
    """The delegation's ``admin_change`` records as stored, oldest first."""
    with world.services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).where(records.c.event_type == "admin_change")
                            .order_by(records.c.id)).all()
    out = []
    for r in rows:
        extra = json.loads(r.extra)
        if str(extra.get("change", "")).startswith("delegation_"):
            out.append(SimpleNamespace(change=extra["change"], actor_user=r.actor_user,
                                       outcome=r.outcome, status=r.status,
                                       department=r.department, extra=extra))
    return out


def claims_of(jwt: str) -> dict[str, Any]:
    """A JWS's payload, unverified (the signature is govgate_upstream's to check)."""
    body = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def header(seen: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in seen["headers"] if k == name), None)


@contextlib.contextmanager
def portal(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, base_url="http://127.0.0.1:8080") as client:
        yield client
