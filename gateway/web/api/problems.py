"""The one answer of every ``/api/v1`` refusal: RFC 9457 problem details, with the
``WWW-Authenticate`` challenge RFC 6750 asks for on 401 and on a token that lacks a
scope (section 3.1).

Every ``/api/v1`` group (admin, catalogue, account, audit, break-glass, stats,
delegations, steward) answers ``title`` and ``detail`` (and each of
``errors``) in the caller's language, Chinese or English by ``Accept-Language``,
with ``Content-Language`` saying which. A request that names neither gets the
gateway's ``lang`` setting (Chinese by default), as the proxy's and forward-auth's
refusals and the portal already do: the people reading a refusal of the admin API
are an agency's operators, and one gateway answering them in two default languages
by which door they came through would be a surprise. Programs do not read the
words: ``type`` (``urn:govgate:error:CODE``) and ``status`` stay the same in both
languages, as do the other members (``field``, ``request_id``). Keycloak's admin
API does the opposite (its ``errorMessage`` is English, or a message key its own
console translates); govgate's console renders its own messages, so a key alone
would serve no client we know of, and the ``lang`` setting is what an operator who
wants English everywhere already sets.

The groups' handlers answer a refusal with ``problem_json(exc)`` at some fifty places,
many in helpers that never see the request; rather than thread the request through
each, the declared route (``ApiRoute.handle``) sets the caller's language for the
request (``ANSWER_LANG``) and ``problem_json`` without a ``lang`` takes it. Outside an
``/api/v1`` route (the token endpoint, the unavailable answer) it stays unset and the
answer is as before, English without ``Content-Language``. The proxy and forward-auth
answer their titles in the caller's language with ``title_in``."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from starlette.responses import JSONResponse

from gateway.errors import GovgateError, TooManyRequests, problem_body
from gateway.i18n import render
from gateway.idp.dpop import DPoPRefused, refusal_headers
from gateway.idp.scopes import InsufficientScope
from gateway.problem_titles import title_in
from texts import Text, message_of

PROBLEM_JSON = "application/problem+json"
LANGUAGE_TAGS = {"zh": "zh-CN", "en": "en"}

#: the caller's language while an ``/api/v1`` route answers (set by ``ApiRoute``)
ANSWER_LANG: ContextVar[str | None] = ContextVar("govgate_answer_lang", default=None)


def localise(body: dict[str, Any], exc: Exception, lang: str) -> None:
    """``body`` (``problem_body(exc)``) with its words in ``lang``; nothing else changes."""
    code = body["type"].rsplit(":", 1)[-1]
    english_title = body["title"]
    body["title"] = title_in(code, english_title, lang)
    said = message_of(exc) if isinstance(exc, GovgateError) or body["detail"] == str(exc) \
        else body["detail"]
    if isinstance(exc, GovgateError) and not isinstance(said, Text) \
            and exc.description == english_title:
        body["detail"] = body["title"]  # raised without words of its own: its title
    else:
        body["detail"] = render(said, lang)
    if isinstance(body.get("errors"), list):
        body["errors"] = [render(p, lang) if isinstance(p, str) else p
                          for p in body["errors"]]


def problem_json(exc: Exception, lang: str | None = None) -> JSONResponse:
    """``exc`` as problem details; with ``lang`` (or the ``/api/v1`` route's
    ``ANSWER_LANG``), its words in that language."""
    if lang is None:
        lang = ANSWER_LANG.get()
    status, body = problem_body(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="govgate"'} if status == 401 else {}
    if isinstance(exc, DPoPRefused):  # RFC 9449 section 7.1: the DPoP scheme's challenge
        headers.update(refusal_headers(exc))  # and section 9: a nonce asked for
    if isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = exc.www_authenticate
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = exc.retry_after
    if lang is not None:
        localise(body, exc, lang)
        headers["Content-Language"] = LANGUAGE_TAGS[lang]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
