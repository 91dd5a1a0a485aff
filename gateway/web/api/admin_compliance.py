"""``GET /api/v1/admin/compliance?lang=zh|en``: what ``govgate compliance`` says
(gateway.compliance), for the security administrator: read-only, the same items,
statuses and evidence as ``--format json``, in the language asked for (default: the
``lang`` setting). The call is audited (``compliance_check``) before it is answered."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from audit import AuditRecord
from gateway.admin.secadmin import SecAdmin
from gateway.compliance import FAIL, State, as_json, run_checks
from gateway.i18n import render
from gateway.settings import LANGS
from gateway.web.api import shapes as s
from gateway.web.api.admin_common import declare, route
from gateway.web.api.operation import Answer, ApiRoute, Param

ITEM = s.obj({"id": s.TEXT, "title": s.TEXT,
              "status": {"enum": ["pass", "fail", "not_applicable"]}, "evidence": s.TEXT},
             ["id", "title", "status", "evidence"])

COMPLIANCE = declare(
    "GET", "/compliance", "The 等保2.0 / 密评 self-check (what `govgate compliance` prints)",
    Answer("Every item with its status and evidence", s.wrapped("items", s.array(ITEM))),
    tag="admin-sec", roles="the security administrator (安全管理员)",
    query=(Param("lang", {"enum": list(LANGS)}, "the language of titles and evidence"),))


async def compliance(request: Request, admin: SecAdmin) -> Any:
    services = admin.services
    lang = COMPLIANCE.params(request).get("lang") or services.settings.lang
    items = await run_in_threadpool(run_checks, State(
        settings=services.settings, engine=services.engine, keys=services.keys,
        now=services.clock()))
    who = admin.admin
    await services.audit.append(AuditRecord(
        event_type="compliance_check", outcome="success", actor_user=who.username,
        department=who.department, source_ip=who.source_ip, request_id=who.request_id,
        reason="compliance checked (api)",
        extra={"via": who.via, "items": len(items),
               "failed": [i.id for i in items if i.status == FAIL]}))
    return as_json(items, lambda text: render(text, lang))


def routes() -> list[ApiRoute]:
    return [route(SecAdmin, COMPLIANCE, compliance)]
