"""The consent page of the authorization endpoint (gateway.idp.oauth2.consent says who
is asked). The page posts the person's answer to ``/oauth2/consent``, which remembers
a yes, audits either answer and sends the browser back to ``/oauth2/authorize`` with
a proof of the answer (``gg_consent``: bound to the session, the client and the
scopes, ten minutes): that is what lets ``prompt=consent`` through once, and what
turns a no into ``access_denied`` at the client's validated redirect URI."""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from audit import AuditRecord
from gateway.errors import AuditUnavailable, NotFound
from gateway.idp.oauth2 import consent
from gateway.idp.oauth2.provider import Provider
from gateway.root import gateway_of
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import csrf_ok, page_lang, render, render_message

CONSENT_PARAM = "gg_consent"
CONSENT_WINDOW = 600
CONSENT_PATH = "/oauth2/consent"


def _tag(p: Provider, ms: str, answer: str, sid: str, client_id: str, scope: str) -> str:
    return p.store.hash("consent", "\x00".join((ms, answer, sid, client_id, scope)))[:32]


def marker(p: Provider, answer: str, sid: str, client_id: str, scope: str) -> str:
    ms = str(int(p.clock().timestamp() * 1000))
    return f"{ms}.{answer}.{_tag(p, ms, answer, sid, client_id, scope)}"


def answered(p: Provider, value: str | None, sid: str, client_id: str, scope: str
             ) -> str | None:
    """"yes" or "no" when ``value`` proves this session answered this client's asking
    for ``scope`` within the window; None otherwise (not ours, stale, another ask)."""
    if not value or len(value) > 64:
        return None
    ms, _, rest = value.partition(".")
    answer, _, tag = rest.partition(".")
    if answer not in ("yes", "no") or not ms.isascii() or not ms.isdigit():
        return None
    if not hmac.compare_digest(tag.encode(), _tag(p, ms, answer, sid, client_id,
                                                  scope).encode()):
        return None
    age = p.clock().timestamp() - int(ms) / 1000
    return answer if 0 <= age <= CONSENT_WINDOW else None


def asked_scope(oreq: Any) -> str:
    """The scopes this request would grant (the client's own of those asked), sorted."""
    client = oreq.client
    allowed = client.get_allowed_scope(oreq.payload.scope) or ""
    return " ".join(sorted(set(allowed.split())))


def consent_due(p: Provider, oreq: Any, grant: Any, session: Any, subject: Any) -> bool:
    """True when the consent page is to be shown before a code is issued; an
    OAuth2Error for the client (``consent_required`` under prompt=none, Core section
    3.1.2.6; ``access_denied`` when the person said no)."""
    client = oreq.client
    subtree = p.services.org.department_subtree
    if not consent.needed(client, subject.department, subtree):
        return False
    where = {"redirect_uri": grant.redirect_uri, "state": oreq.payload.state}
    scope = asked_scope(oreq)
    answer = answered(p, oreq.payload.data.get(CONSENT_PARAM), session.sid,
                      client.client_id, scope)
    if answer == "no":
        raise AccessDeniedError(description="the user did not consent", **where)
    if answer == "yes":
        return False
    prompts = set((oreq.payload.data.get("prompt") or "").split(" "))
    remembered = p.consents.granted(subject.username, client.client_id)
    if "consent" not in prompts and set(scope.split()) <= remembered:
        return False
    if "none" in prompts:
        raise ConsentRequiredError(**where)
    return True


def consent_page(request: Request, p: Provider, oreq: Any, subject: Any) -> Response:
    client = oreq.client
    try:
        department = p.services.org.get_department(client.department)["name"]
    except NotFound:  # the code names it as well
        department = client.department
    query = [(k, v) for k, v in [*parse_qsl(request.url.query, keep_blank_values=True),
                                 *oreq.form.items()] if k != CONSENT_PARAM]
    return render(request, "consent.html", client_name=client.name,
                  client_id=client.client_id, department=department,
                  scope=asked_scope(oreq), person=subject.name or subject.username,
                  query=urlencode(query))


async def consent_submit(request: Request) -> Response:
    """The person's answer: remembered (yes), audited (either), back to the
    authorization endpoint with its proof."""
    g = gateway_of(request)
    p = g.provider
    t = Translator(page_lang(request))
    form = await request.form()
    if not csrf_ok(request, form):
        return render_message(request, "error", t("csrf"), status=400)
    session = p.valid_session(p.session_token(request.cookies))
    query = str(form.get("query") or "")
    params = dict(parse_qsl(query, keep_blank_values=True))
    client = p.server.clients.get(params.get("client_id"))
    if session is None or client is None or len(query) > 8192:
        return render_message(request, "error", t("consent_expired"), status=400)
    answer = "yes" if form.get("answer") == "yes" else "no"
    allowed = client.get_allowed_scope(params.get("scope")) or ""
    scope = " ".join(sorted(set(allowed.split())))
    user = await run_in_threadpool(p.server.subject, session.username, sid=session.sid)
    if answer == "yes":
        kept = await run_in_threadpool(p.consents.grant, session.username,
                                       client.client_id, set(scope.split()))
    try:
        await p.emit([AuditRecord(
            event_type="consent_granted" if answer == "yes" else "consent_denied",
            outcome="success" if answer == "yes" else "deny",
            actor_user=session.username, actor_client=client.client_id,
            department=user.department if user is not None else None,
            source_ip=request.client.host if request.client else None,
            reason="consent given on the consent page" if answer == "yes"
            else "consent refused on the consent page",
            extra={"scope": scope, "sid": session.sid,
                   **({"consented": kept} if answer == "yes" else {})})])
    except AuditUnavailable:
        return render_message(request, "error", t("audit_down"), status=503)
    back = [*parse_qsl(query, keep_blank_values=True),
            (CONSENT_PARAM, marker(p, answer, session.sid, client.client_id, scope))]
    return RedirectResponse("/oauth2/authorize?" + urlencode(back), status_code=303)
