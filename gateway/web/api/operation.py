"""One ``/api/v1`` operation declared once, beside its handler: method and path, who may
call it, its path and query parameters, its JSON body, its answers. The same
declaration

* builds the route (:class:`ApiRoute`, :meth:`Operation.route`),
* checks the request before the handler runs (:meth:`Operation.check_params`,
  :meth:`Operation.read_body`: 400 problem details naming every field that does not
  match, through ``gateway.web.api.schema_check``), and
* is the operation's entry in the OpenAPI 3.1 description that
  ``gateway.web.api.openapi`` serves at ``/api/v1/openapi.json``,

so what the description promises and what the handler accepts cannot drift apart.
Schemas are plain JSON Schema dicts (Draft 2020-12, the dialect of OpenAPI 3.1).

Query and path parameters arrive as text: a parameter declared ``integer`` takes
digits (``-`` allowed), ``boolean`` takes ``true`` or ``false``; a parameter given
twice is refused. Query parameters a declaration does not name are left to the
handler (most ignore them; the audit API refuses them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.errors import NotFound, ValidationError
from gateway.i18n import accept_lang
from gateway.root import gateway_of
from gateway.web.api.body import read_object
from gateway.web.api.problems import ANSWER_LANG, PROBLEM_JSON
from gateway.web.api.schema_check import JSON, field_of, problems
from texts import Text, joined

#: the answers every refusal of the API may carry, described once
REFUSALS: dict[int, str] = {
    400: "The request does not match this description, or breaks a rule of the data "
         "(problem details name each field)",
    401: "No valid bearer token or portal session",
    403: "The token lacks the scope, or the caller's role or department may not do this",
    404: "What the path names does not exist (or the caller may not know it does)",
    409: "The object's current state does not allow this",
    413: "The body is larger than 1 MiB",
    415: "A call that changes state must send application/json",
    503: "The database or the audit log is unavailable: nothing was done",
}

PROBLEM: JSON = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "urn:govgate:error:{code}"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"},
                   "description": "every problem found, for a 400"},
    },
}

_INTEGER = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    schema: JSON
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """A successful answer: its JSON body (or other media types) and headers."""

    description: str
    schema: JSON | None = None
    media: tuple[str, ...] = ("application/json",)
    headers: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class Access:
    """Who may call: a bearer token holding any one of ``scopes`` (a person's token when
    ``person``), or the portal session cookie when ``session``; nobody is asked when
    ``public``."""

    scopes: tuple[str, ...] = ()
    session: bool = True
    person: bool = False
    public: bool = False
    roles: str = ""  # who among the callers, in words (the handler decides)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the full path, Starlette's {name} templates
    summary: str
    tag: str
    access: Access
    answers: Mapping[int, Answer]
    refusals: tuple[int, ...] = ()  # besides those implied (see :meth:`statuses`)
    path_params: tuple[Param, ...] = ()
    query: tuple[Param, ...] = ()
    body: JSON | None = None
    body_required: bool = False
    description: str = ""
    #: the rules of the data that no schema says (a date not in the past, the current
    #: password): what breaks one is answered 400 although it matches the description
    rules: str = ""

    # -- the route --------------------------------------------------------------------

    def route(self, endpoint: Callable[..., Any]) -> ApiRoute:
        return ApiRoute(self, endpoint)

    @property
    def operation_id(self) -> str:
        words = re.findall(r"[A-Za-z0-9]+", self.path.removeprefix("/api/v1"))
        return "_".join([self.method.lower(), *words])

    # -- the checks -------------------------------------------------------------------

    def check_params(self, request: Request) -> None:
        """NotFound (404) unless the path parameters match (the path names nothing),
        ValidationError (400) unless the query parameters do."""
        for p in self.path_params:
            value = request.path_params[p.name]
            if _param_problems(p, [value]):  # names nothing there can be
                raise NotFound(Text("api.nothing_at", "no {name} {value!r}", name=p.name,
                                    value=value[:64]))
        found: list[Text] = []
        for p in self.query:
            found += _param_problems(p, request.query_params.getlist(p.name))
        if found:
            raise refusal(found)

    def params(self, request: Request) -> dict[str, Any]:
        """The declared query parameters given, as their declared types (checked first
        by :meth:`check_params`)."""
        out: dict[str, Any] = {}
        for p in self.query:
            raw = request.query_params.get(p.name)
            if raw is not None:
                out[p.name] = _typed(p.schema, raw)
        return out

    async def read_body(self, request: Request) -> dict[str, Any]:
        """The JSON body (``gateway.web.api.body.read_object``), checked against the
        declared schema; ValidationError (400) naming each field that does not match."""
        body = await read_object(request)
        if self.body is not None:
            found = problems(self.body, body)
            if found:
                raise refusal(found)
        return body

    async def check(self, request: Request) -> None:
        """Parameters, then the body when one is declared."""
        self.check_params(request)
        if self.body is not None:
            await self.read_body(request)

    # -- the description --------------------------------------------------------------

    def statuses(self) -> list[int]:
        """Every status this operation may answer with problem details."""
        implied = {503}
        if not self.access.public:
            implied |= {401, 403}
        if self.path_params:
            implied.add(404)
        if self.query or self.body is not None or self.rules:
            implied.add(400)  # rules: what breaks one is a 400, body or not
        if self.method == "POST":
            implied |= {413, 415} if self.body is not None else {415}
        return sorted(implied | set(self.refusals))

    def describe(self, security_scheme: str, session_scheme: str) -> JSON:
        """The OpenAPI 3.1 operation object."""
        op: JSON = {"operationId": self.operation_id, "summary": self.summary,
                    "tags": [self.tag]}
        text = self.description
        if self.access.person:
            text = (f"{text}\n\nA person's token or session: a system's client-credentials "
                    "token is refused (403).").strip()
        if self.access.roles:
            text = f"{text}\n\nWho: {self.access.roles}.".strip()
        if self.rules:
            text = f"{text}\n\nBeyond this description, 400 when {self.rules}.".strip()
        if text:
            op["description"] = text
        params = [_describe_param(p, "path", True) for p in self.path_params]
        params += [_describe_param(p, "query", p.required) for p in self.query]
        if params:
            op["parameters"] = params
        if self.body is not None:
            op["requestBody"] = {"required": self.body_required, "content": {
                "application/json": {"schema": self.body}}}
        if self.access.public:
            op["security"] = []
        else:
            alternatives: list[JSON] = [{security_scheme: [s]} for s in self.access.scopes]
            if self.access.session:
                alternatives.append({session_scheme: []})
            op["security"] = alternatives
        responses: JSON = {}
        for status, answer in sorted(self.answers.items()):
            responses[str(status)] = _describe_answer(answer)
        for status in self.statuses():
            if str(status) in responses:
                continue
            refusal: JSON = {"description": REFUSALS.get(status, "Refused"),
                             "content": {PROBLEM_JSON: {"schema": PROBLEM}}}
            if status == 401:
                refusal["headers"] = {"WWW-Authenticate": {
                    "required": True, "schema": {"type": "string"},
                    "description": "RFC 6750: the bearer challenge"}}
            responses[str(status)] = refusal
        op["responses"] = responses
        return op


class ApiRoute(Route):
    """A Starlette route built from, and carrying, its operation's declaration."""

    def __init__(self, operation: Operation, endpoint: Callable[..., Any]) -> None:
        super().__init__(operation.path, endpoint, methods=[operation.method])
        self.operation = operation

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route's answer, its refusals in the caller's language (``ANSWER_LANG``,
        why: ``gateway.web.api.problems``)."""
        default = gateway_of(HTTPConnection(scope)).services.settings.lang
        token = ANSWER_LANG.set(accept_lang(Headers(scope=scope).get("accept-language"),
                                            default))
        try:
            await super().handle(scope, receive, send)
        finally:
            ANSWER_LANG.reset(token)


def refusal(found: list[Text]) -> ValidationError:
    """The 400 naming every problem found, and (``field``) the first one's field."""
    return ValidationError(joined(found), problems=list(found), field=field_of(found[0]))


def _typed(schema: JSON, raw: str) -> Any:
    """A parameter's text as its declared type (unchanged when it is not one)."""
    kinds = schema.get("type")
    if kinds == "integer" and _INTEGER.fullmatch(raw):
        return int(raw)
    if kinds == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _param_problems(p: Param, values: list[str]) -> list[Text]:
    at = p.name
    if not values:
        return [Text("api.missing_param", "{at} is required", at=at)] if p.required else []
    if len(values) > 1:
        return [Text("api.repeated_param", "{at} is given more than once", at=at)]
    return problems(p.schema, _typed(p.schema, values[0]), at)


def _describe_param(p: Param, where: str, required: bool) -> JSON:
    out: JSON = {"name": p.name, "in": where, "required": required, "schema": p.schema}
    if p.description:
        out["description"] = p.description
    return out


def _describe_answer(answer: Answer) -> JSON:
    out: JSON = {"description": answer.description}
    if answer.media:
        out["content"] = {m: ({"schema": answer.schema} if answer.schema is not None else {})
                          for m in answer.media}
    if answer.headers:
        out["headers"] = dict(answer.headers)
    return out
