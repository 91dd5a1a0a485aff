"""Where today's features meet: the delegation world (``tests.delegation.conftest``:
li.ming, her colleague wang.fang, their head zhao.head, chen.jing of czt; the echo
upstream behind the proxy, in process) plus two security administrators for
break-glass and a czt system ``vault`` no line opens to jgswj."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.services import Services
from gateway.tables import systems
from tests.delegation.conftest import (  # noqa: F401 (fixtures)
    PASSWORD,
    base_services,
    clock,
    quick,
    sockets,
    systems_doc,
)
from tests.in_process import Resp
from tests.proxy.conftest import IN_PROCESS_ECHO, World
from tests.tokens import access_token

SECADMINS = ("sec.a", "sec.b")


def furnish(world: World, upstream: str) -> World:
    """sec.a and sec.b (secadmin, czt), ``vault`` (czt); ``echo``, ``ledger`` (opened
    to jgswj's data stewards) and ``vault`` on ``assertion: per_caller``, all on
    ``upstream``."""
    for who in SECADMINS:
        world.services.org.add_user(who, who, "czt", ["secadmin"], PASSWORD,
                                    must_change=False)
    doc = systems_doc(upstream)
    for s in doc["systems"]:
        if s["code"] in ("echo", "ledger"):
            s["assertion"] = "per_caller"
    doc["systems"].append({"code": "vault", "name": "保密库", "department": "czt",
                           "upstream": upstream, "assertion": "per_caller"})
    world.built.state_applier().apply(doc)
    world.built.policies.refresh()
    world.built.proxy.systems.invalidate()
    return world


@pytest.fixture
def seam(quick: World) -> World:  # noqa: F811
    """``tests.delegation.conftest.quick`` (in process), :func:`furnish`ed."""
    return furnish(quick, f"http://{IN_PROCESS_ECHO}")


@pytest.fixture
def seam_sockets(sockets: World) -> World:  # noqa: F811
    """``tests.delegation.conftest.sockets`` (real servers), :func:`furnish`ed."""
    assert sockets.upstream is not None
    return furnish(sockets, f"http://127.0.0.1:{sockets.upstream.port}")


def bearer(world: World, who: str) -> tuple[str, str]:
    user = world.services.org.get_user(who)
    token = access_token(world.services, sub=who, department=user.department,
                         roles=sorted(user.roles))
    return ("Authorization", f"Bearer {token}")


async def break_glass(world: World, who: str, system: str, **more: Any) -> str:
    """An active break-glass of ``who`` on ``system`` (requested through the API,
    approved by sec.a and sec.b); its id."""
    async def post(path: str, as_who: str, body: dict[str, Any]) -> Resp:
        return await world.request(
            "POST", "/api/v1/break-glass" + path, body=json.dumps(body).encode(),
            headers=[bearer(world, as_who), ("Content-Type", "application/json")])

    r = await post("", who, {"system": system, "reason": "机房故障，需紧急处理",
                             "minutes": 60, **more})
    assert r.status == 201, r.body
    bg_id = str(json.loads(r.body)["break_glass"]["id"])
    for approver in SECADMINS:
        r = await post(f"/{bg_id}/approve", approver, {})
        assert r.status == 200, r.body
    return bg_id


async def end_break_glass(world: World, bg_id: str) -> None:
    r = await world.request(
        "POST", f"/api/v1/break-glass/{bg_id}/end",
        body=json.dumps({"reason": "故障已排除"}).encode(),
        headers=[bearer(world, "sec.a"), ("Content-Type", "application/json")])
    assert r.status == 200, r.body


def upstream_of(services: Services, code: str) -> str:
    """The upstream URL system ``code`` is registered with."""
    with services.engine.connect() as conn:
        return str(conn.execute(sa.select(systems.c.upstream)
                                .where(systems.c.code == code)).scalar_one())
