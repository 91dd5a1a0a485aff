"""The one answer of every ``/api/v1`` refusal: RFC 9457 problem details, with the
``WWW-Authenticate`` challenge RFC 6750 asks for on 401 and on a token that lacks a
scope (section 3.1)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from gateway.errors import problem_body
from gateway.idp.dpop import DPoPRefused
from gateway.idp.scopes import InsufficientScope

PROBLEM_JSON = "application/problem+json"


def problem_json(exc: Exception) -> JSONResponse:
    status, body = problem_body(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="govgate"'} if status == 401 else {}
    if isinstance(exc, DPoPRefused):  # RFC 9449 section 7.1: the DPoP scheme's challenge
        headers["WWW-Authenticate"] = exc.www_authenticate
    if isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = exc.www_authenticate
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
