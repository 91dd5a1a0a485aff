"""The auditors' HTTP API on a tiny app with a fake authenticator and the real AuditLog."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request

from audit import AuditLog
from audit.query import parse_filters, query_records
from gateway.errors import Unauthorized
from gateway.tables import departments, regions
from gateway.web.api.audit import routes
from tests.audit.conftest import rec


@dataclass(frozen=True)
class P:
    username: str
    department: str
    roles: frozenset[str]
    client_id: str | None = None
    via: str = "bearer"
    scope: frozenset[str] = frozenset({"openid", "audit:read"})


USERS = {
    "auditor": P("shen.ji", "jgswj", frozenset({"auditor"})),
    "admin": P("xi.tong", "jgswj", frozenset({"sysadmin"})),
    # the auditor's token from a relying party that signed them in, and nothing more
    "auditor-rp": P("shen.ji", "jgswj", frozenset({"auditor"}), "office-web",
                    scope=frozenset({"openid", "profile"})),
    "auditor-portal": P("shen.ji", "jgswj", frozenset({"auditor"}), via="session",
                        scope=frozenset()),
}


class Parts:
    """The two collaborators the audit API takes from the app's gateway: its services
    (engine, audit log) and its authenticator, here one fake for both."""

    def __init__(self, engine: sa.Engine, log: AuditLog) -> None:
        self.engine, self.audit = engine, log
        self.services = self.authenticator = self
        # the ``lang`` setting: an operator's who wants the API's refusals in English
        self.settings = SimpleNamespace(lang="en")

    def settle_audit(self) -> None:  # as Services.settle_audit
        if self.audit.indexer is not None:
            self.audit.indexer.run_once()

    async def authenticate(self, request: Request) -> P:
        who = request.headers.get("authorization", "").removeprefix("Bearer ")
        if who not in USERS:
            raise Unauthorized("invalid or missing credentials")
        return USERS[who]


def province_auditors(engine: sa.Engine) -> None:
    """The auditors' department, at the top of the province: they read every record
    (a department's auditor reads its departments' part: gateway.web.audit_console.Reach)."""
    with engine.begin() as conn:
        conn.execute(sa.insert(regions), [{"code": "gx", "name": "某省"}])
        conn.execute(sa.insert(departments),
                     [{"code": "jgswj", "name": "机关事务管理局", "region_code": "gx"}])


@pytest.fixture
async def client(make_log: Callable[..., AuditLog], audit_engine: sa.Engine
                 ) -> AsyncIterator[httpx.AsyncClient]:
    log = make_log()
    log.append_many_sync([rec(i) for i in range(5)])
    province_auditors(audit_engine)
    app = Starlette(routes=routes())
    app.state.gateway = Parts(audit_engine, log)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as c:
        yield c
    await log.close()


def audit_queries(engine: sa.Engine) -> list[dict[str, Any]]:
    return query_records(engine, parse_filters({"event_type": "audit_query"})).records


async def test_auditor_queries_and_is_audited(client: httpx.AsyncClient,
                                              audit_engine: sa.Engine) -> None:
    r = await client.get("/api/v1/audit/records", params={"user": "user1", "limit": "1"},
                         headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 200
    body = r.json()
    assert len(body["records"]) == 1 and body["next_cursor"]
    r2 = await client.get("/api/v1/audit/records",
                          params={"user": "user1", "cursor": body["next_cursor"]},
                          headers={"Authorization": "Bearer auditor"})
    assert r2.json()["records"][0]["seq"] < body["records"][0]["seq"]
    logged = audit_queries(audit_engine)
    assert len(logged) == 2 and logged[0]["actor_user"] == "shen.ji"
    assert logged[1]["extra"]["filters"]["user"] == "user1"


async def test_only_auditors(client: httpx.AsyncClient, audit_engine: sa.Engine) -> None:
    r = await client.get("/api/v1/audit/records", headers={"Authorization": "Bearer admin"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    denied = audit_queries(audit_engine)
    assert [(d["actor_user"], d["outcome"]) for d in denied] == [("xi.tong", "deny")]
    r = await client.get("/api/v1/audit/records")
    assert r.status_code == 401
    r = await client.get("/api/v1/audit/stats", headers={"Authorization": "Bearer admin"})
    assert r.status_code == 403


@pytest.mark.parametrize("params,field", [
    ({"since": "last tuesday"}, "since"), ({"limit": "5000"}, "limit"), ({"who": "x"}, "who"),
])
async def test_malformed_filter_is_400(client: httpx.AsyncClient, params: dict,
                                       field: str) -> None:
    r = await client.get("/api/v1/audit/records", params=params,
                         headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field and field in r.json()["detail"]


async def test_stats(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/audit/stats", params={"by": "system,department"},
                         headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 200
    assert r.json()["rows"] == [{"system": "vehicles", "department": "czt", "count": 5}]
    r = await client.get("/api/v1/audit/stats", params={"by": "nope"},
                         headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 400 and r.json()["field"] == "by"
    r = await client.get("/api/v1/audit/stats", params={"since": "2026-02-01",
                                                        "until": "2026-01-01"},
                         headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 400 and r.json()["field"] == "until"


async def test_no_audit_no_access(client: httpx.AsyncClient, make_log: Callable[..., AuditLog],
                                  audit_engine: sa.Engine) -> None:
    closed = make_log(writer_id="closed")
    await closed.close()
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.gateway.audit = closed
    r = await client.get("/api/v1/audit/records", headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 503


async def test_a_token_without_audit_read_is_refused_and_audited(
        client: httpx.AsyncClient, audit_engine: sa.Engine) -> None:
    r = await client.get("/api/v1/audit/records", headers={"Authorization": "Bearer auditor-rp"})
    assert r.status_code == 403
    assert r.json()["type"] == "urn:govgate:error:insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="audit:read"' in r.headers["www-authenticate"]
    refused = audit_queries(audit_engine)[-1]
    assert refused["outcome"] == "deny" and refused["actor_client"] == "office-web"
    assert "lacks the scope audit:read" in refused["reason"]
    # the portal session is how people act in the browser: not scoped
    r = await client.get("/api/v1/audit/records",
                         headers={"Authorization": "Bearer auditor-portal"})
    assert r.status_code == 200
