"""Who may reach an admin console, for the pages (``/portal/admin/...``) and the API
(``/api/v1/admin/...``) alike: a person (a system's client-credentials token is
refused), with the ``admin`` scope when the credential is a bearer token (a portal
session is not scoped). The role each console needs is checked by the console itself
(``gateway.admin.console``). Every refusal here is audited before it is raised."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from audit import AuditRecord
from gateway.admin.console import Console
from gateway.admin.trail import Admin
from gateway.errors import Forbidden
from gateway.idp.scopes import ADMIN, InsufficientScope
from gateway.idp.sign_out import schedule_notices
from gateway.request_id import new_request_id
from gateway.root import gateway_of
from gateway.services import Services
from texts import Text


def _refused(services: Services, request: Request, principal: Any, reason: str,
             request_id: str) -> None:
    services.audit.append_sync(AuditRecord(
        event_type="admin_change", outcome="deny", status=403,
        actor_user=principal.username, actor_client=principal.client_id,
        department=principal.department or None,
        source_ip=request.client.host if request.client else None, request_id=request_id,
        reason=reason, extra={"what": f"{request.method} {request.url.path}"}))


def admin_of(request: Request, principal: Any, via: str) -> Admin:
    """The admin behind ``principal``, or Forbidden (audited). Blocking: run it in a
    worker thread."""
    services = gateway_of(request).services
    request_id = request.headers.get("x-request-id") or new_request_id()
    if principal.via == "bearer" and ADMIN not in principal.scope:
        exc = InsufficientScope(ADMIN)
        _refused(services, request, principal, str(exc.description), request_id)
        raise exc
    if not principal.username:
        why = Text("admin.person_only",
                   "administration needs a person's sign-in, not a system's token")
        _refused(services, request, principal, why, request_id)
        raise Forbidden(why)
    return Admin(principal.username, principal.department, frozenset(principal.roles or ()),
                 source_ip=request.client.host if request.client else None, via=via,
                 request_id=request_id)


def send_logouts(request: Request, console: Console) -> None:
    """The logouts an action owes (a disabled user's sessions, ``SysAdmin.signed_out``):
    back-channel and CAS single logout, sent in the background of this event loop."""
    provider = gateway_of(request).provider
    for out in getattr(console, "signed_out", ()):
        schedule_notices(provider, out)
