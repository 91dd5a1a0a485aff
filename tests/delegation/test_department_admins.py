"""A department's system administrator and the delegations of other departments (the
attack of 2026-12-05, docs/seams.md): a city's or a sub-department's sysadmin listed
and revoked every department's delegations; now only those of their departments
(``gateway.department_scope``), as at their console."""

from __future__ import annotations

import json

from tests.delegation.conftest import PASSWORD, World, api, approved, steps
from tests.wiring import apply_state

BELOW = {"departments": [{"code": "czt-it", "name": "信息中心", "region": "gx",
                          "parent": "czt"}],
         "users": [{"username": "it.admin", "name": "信息中心系统管理员",
                    "department": "czt-it", "roles": ["sysadmin"], "password": PASSWORD,
                    "must_change": False}]}


async def test_a_department_sysadmin_neither_sees_nor_revokes_anothers(quick: World) -> None:
    apply_state(quick.services, BELOW)
    number = await approved(quick)  # 机关事务管理局's (jgswj)
    listed = json.loads((await api(quick, "it.admin", "GET", "")).body)["delegations"]
    assert number not in [d["id"] for d in listed]
    r = await api(quick, "it.admin", "POST", f"/{number}/revoke")
    assert r.status == 403, r.body
    assert json.loads(r.body)["detail"].startswith("only the delegator")
    refused = steps(quick)[-1]
    assert (refused.change, refused.actor_user, refused.outcome) == (
        "delegation_refused", "it.admin", "deny")
    # still approved; the head of its department revokes it
    r = await api(quick, "zhao.head", "POST", f"/{number}/revoke")
    assert r.status == 200, r.body
