"""The admin API's plumbing (``/api/v1/admin``): authentication, the console's role
rule (``gateway.admin.console``), problem details, and reading fields of a JSON body.

Every call needs a person's bearer token with the ``admin`` scope, or a portal
session (401 otherwise). Each console's endpoints answer its own role only: a
system administrator, a security administrator and an audit administrator are
refused each other's with 403 (三员分立), and so is everybody else; every refusal is
audited. The endpoints are listed in ``gateway.web.api.admin_sys`` and
``gateway.web.api.admin_sec``; the pages under ``/portal/admin`` call the same
console operations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from gateway.admin.console import Console
from gateway.errors import ValidationError, is_problem
from gateway.i18n import accept_lang
from gateway.idp.scopes import ADMIN
from gateway.root import gateway_of
from gateway.web.admin_access import admin_of, send_logouts
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation
from gateway.web.api.problems import problem_json as problem
from texts import Text

PREFIX = "/api/v1/admin"

Handler = Callable[[Request, Any], Awaitable[Any]]


def declare(method: str, path: str, summary: str, answer: Answer, *, tag: str,
            roles: str, status: int = 200, **more: Any) -> Operation:
    """An operation under ``/api/v1/admin`` (``path`` after it) of one console."""
    return Operation(method, PREFIX + path, summary, tag,
                     Access((ADMIN,), person=True, roles=roles), {status: answer}, **more)


def endpoint(console: type[Console], op: Operation, handler: Handler
             ) -> Callable[[Request], Awaitable[Response]]:
    """``handler(request, console)`` behind authentication, the ``admin`` scope,
    ``console``'s role and the check of ``op``'s parameters and body; its answer as JSON,
    any error as problem details in the caller's language (``api_lang``)."""
    status = next(iter(op.answers))

    async def run(request: Request) -> Response:
        gateway = gateway_of(request)
        try:
            principal = await gateway.authenticator.authenticate(request)
            admin = await run_in_threadpool(admin_of, request, principal, "api")
            what = f"{request.method} {request.url.path}"
            it = await run_in_threadpool(console, gateway, admin, what)
            await op.check(request)
            result = await handler(request, it)
            send_logouts(request, it)
        except Exception as exc:
            if is_problem(exc):
                return problem(exc, api_lang(request))
            raise
        return JSONResponse(result, status_code=status)

    return run


def api_lang(request: Request) -> str:
    """The language of the admin API's problem details: ``Accept-Language``'s choice
    of zh and en, else the ``lang`` setting (why: ``gateway.web.api.problems``)."""
    return accept_lang(request.headers.get("accept-language"),
                       gateway_of(request).services.settings.lang)


def scope_lang(scope: Scope, default: str) -> str:
    """``api_lang`` of a request not yet a Starlette request (the front's refusals)."""
    return accept_lang(Headers(scope=scope).get("accept-language"), default)


def text(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    """A text field ("" when absent); another type is refused, not stored as its repr."""
    value = body.get(key)
    if value is None:
        if required:
            raise ValidationError(Text("admin.field_missing", "{field} is required",
                                       field=key))
        return ""
    if not isinstance(value, str):
        raise ValidationError(Text("admin.field_text", "{field} must be text", field=key))
    return value


def text_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(Text("admin.field_list", "{field} must be a list of texts",
                                   field=key))
    return list(value)


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ValidationError(Text("admin.field_bool", "{field} must be true or false",
                                   field=key))
    return value


def picked(body: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The fields of ``body`` named in ``fields`` (name → "text", "list" or "bool"),
    each checked; absent ones left out."""
    readers: dict[str, Callable[[dict[str, Any], str], Any]] = {
        "text": text, "list": text_list, "bool": flag}
    return {k: readers[kind](body, k) for k, kind in fields.items() if k in body}


def route(console: type[Console], op: Operation, handler: Handler) -> ApiRoute:
    return op.route(endpoint(console, op, handler))
