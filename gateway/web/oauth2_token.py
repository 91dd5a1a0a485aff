"""``POST /oauth2/token`` as a raw ASGI handler in the gateway's front dispatch (as
``/s/`` and ``/auth/verify`` are), for its busiest request: client credentials.

Starlette's middleware, router, request and response objects and authlib's grant
lookup cost about a third of that request's CPU (docs/BENCHMARKS.md, issue #17). The
front dispatch has already applied what every route gets (the NUL guard on the
target, a declared body over the limit refused and audited, the body's size limit,
read timeout and NUL guard on ``receive``); this handler reads the body through it
and answers one kind of request itself: ``POST``, no query string, a url-encoded
form naming each parameter once with ``grant_type=client_credentials``, on an issuer
authlib takes as secure transport. It answers that request as the Starlette route
would, status, header fields and body alike, good or bad
(``gateway.idp.oauth2.client_credentials``, the audit records appended before the
answer leaves: no audit, no access).

Everything else goes, unchanged, to the application behind (``fallback``): another
method (405 there), another content type, a repeated parameter, a query string,
another grant type, too many fields, a DPoP proof (RFC 9449, checked there); a body
already read is handed on as one message. An error the application's handlers would
answer (a body too large or too slow, a NUL in it, the database gone, no signing key)
gets their answer here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import AuditUnavailable, GovgateError
from gateway.idp.oauth2.client_credentials import GRANT_TYPE, issue
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.server import Result, origin_of, transport_ok
from gateway.web.api.problems import problem_json
from gateway.web.oauth2 import (
    FORM_TYPE,
    audit_unavailable,
    form_pairs,
    json_header_fields,
    json_text,
    read_whole,
    to_response,
)
from gateway.web.unavailable import HANDLED, storage_unavailable
from keys import KeyStateError

PATH = "/oauth2/token"
#: the database gone, the audit write failed: the application answers 503 (``HANDLED``)
_STORAGE: tuple[type[Exception], ...] = HANDLED


def _first(headers: list[tuple[bytes, bytes]], key: bytes) -> str | None:
    """The first field named ``key`` (lower case, as ASGI names them; what Starlette's
    ``Headers.get`` returns)."""
    for name, value in headers:
        if name == key:
            return value.decode("latin-1")
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the body already read first, as one message."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


class TokenEndpoint:
    """The raw ASGI handler of ``/oauth2/token`` (see the module)."""

    #: False hands every request to the application (the authlib path), which the
    #: equivalence test compares this one with
    direct = True

    def __init__(self, provider: Provider, fallback: ASGIApp) -> None:
        self.provider = provider
        self.fallback = fallback
        self.origin = origin_of(provider.server.issuer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope["headers"]
        if not self.direct or scope["method"] != "POST" or scope.get("query_string") \
                or scope.get("root_path") or _first(headers, b"dpop") is not None \
                or (_first(headers, b"content-type") or "").partition(";")[0].strip() \
                .lower() != FORM_TYPE:
            await self.fallback(scope, receive, send)
            return
        try:
            body = await read_whole(receive)
        except GovgateError as exc:  # the body's guards: too large, too slow, a NUL
            await problem_json(exc)(scope, receive, send)
            return
        if body is None:
            return  # nobody to answer
        try:
            pairs = form_pairs(body)
        except ValueError:  # too many fields: the route's own answer
            pairs = []
        form = dict(pairs)
        if form.get("grant_type") != GRANT_TYPE or len(form) != len(pairs) \
                or not transport_ok(self.origin):
            await self.fallback(scope, _replay(body, receive), send)
            return
        client = scope.get("client")
        source_ip = client[0] if client else None
        try:
            result, events = issue(self.provider.server, form,
                                   lambda name: _first(headers, name.lower().encode()),
                                   source_ip)
        except _STORAGE as exc:  # what the application's handlers answer
            await (await storage_unavailable(Request(scope), exc))(scope, receive, send)
            return
        except (GovgateError, KeyStateError) as exc:
            await problem_json(exc)(scope, receive, send)
            return
        try:
            await self.provider.emit(events)
        except AuditUnavailable:
            await audit_unavailable()(scope, receive, send)
            return
        await _answer(result, scope, receive, send)


async def _answer(result: Result, scope: Scope, receive: Receive, send: Send) -> None:
    """``to_response(result)``'s bytes, without the Response object for a JSON body."""
    if not isinstance(result.body, dict):
        await to_response(result)(scope, receive, send)
        return
    content = json_text(result.body).encode("utf-8")
    await send({"type": "http.response.start", "status": result.status, "headers": [
        (b"content-length", str(len(content)).encode("latin-1")),
        *json_header_fields(tuple(result.headers))]})
    await send({"type": "http.response.body", "body": content})
