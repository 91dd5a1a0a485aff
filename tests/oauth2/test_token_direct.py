"""The token endpoint's raw ASGI handler and direct client-credentials path
(``gateway.web.oauth2_token``, ``gateway.idp.oauth2.client_credentials``; issue #17)
answer as the Starlette route and authlib's grant do.

Each case is sent to the real application twice, the second time with the raw handler
switched off (every request then goes through Starlette and authlib, as before it): the
status, every header field, the body (a token's claims but for its id and times) and
the audit records it left (but for ids, times and chain links) must be the same, and
each case's outcome is also asserted on its own. Whether the direct path answered is
asserted too, so the comparison never compares the old path with itself by accident.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.testclient import TestClient

from audit.tables import records
from gateway.app import browser_seams, create_app
from gateway.i18n import render
from gateway.root import Gateway, build_gateway
from gateway.services import Services
from gateway.web import oauth2_token
from gateway.web.oauth2 import AUDIT_UNAVAILABLE
from gateway.web.oauth2_token import TokenEndpoint
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import (
    EXTRA_CLIENTS,
    FINANCE,
    OFFICE,
    close_services,
    code_flow,
    make_services,
)

KEY = ECKey.generate_key("P-256", parameters={"kid": "direct-1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "direct-1"})
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
POSTER = ("poster", "poster-secret-0123456789abcdef0123")
GONE = ("gone-system", "gone-secret-0123456789abcdef01234")
CLIENTS = [
    *EXTRA_CLIENTS,
    {"client_id": "vehicles-sync", "name": "车辆同步", "department": "jgswj",
     "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
     "jwks": {"keys": [KEY.as_dict(private=False)]}},
    {"client_id": POSTER[0], "name": "表单认证系统", "department": "czt",
     "grant_types": ["client_credentials"], "token_endpoint_auth_method":
     "client_secret_post", "secret": POSTER[1], "scope": "catalogue:read"},
    {"client_id": GONE[0], "name": "停用系统", "department": "czt",
     "grant_types": ["client_credentials"], "secret": GONE[1], "status": "disabled"},
]
FORM = b"application/x-www-form-urlencoded"
CC = b"grant_type=client_credentials"
VOLATILE = ("id", "chain_id", "seq", "prev_hash", "hash", "ckpt", "ts")


@dataclass
class World:
    services: Services
    gateway: Gateway
    client: TestClient


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with settings_of_its_own(tmp_path_factory) as settings:
        services = make_services(replace(settings, body_timeout_seconds=0.1),
                                 extra_clients=CLIENTS)
        # the module's own (tests.wiring's would be closed after the first test)
        gateway = build_gateway(services, browser_seams())
        with TestClient(create_app(gateway), base_url="http://127.0.0.1:8080") as c:
            yield World(services, gateway, c)
        gateway.policies.close()
        close_services(services)


@dataclass
class Req:
    body: bytes | list[bytes] = CC
    headers: list[tuple[bytes, bytes]] = field(default_factory=lambda: [(b"content-type", FORM)])
    method: str = "POST"
    query: bytes = b""
    slow: bool = False  # the body's second piece never comes
    cut: bool = False  # the client goes away after the pieces


@dataclass
class Answer:
    status: int | None
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _basic(client_id: str, secret: str) -> tuple[bytes, bytes]:
    return b"authorization", b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())


def _form(**fields: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def _assertion(issuer: str, key: ECKey = KEY, **over: object) -> str:
    now = int(time.time())
    claims = {"iss": "vehicles-sync", "sub": "vehicles-sync", "aud": issuer,
              "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    claims.update(over)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def _jwt_form(assertion: str, **more: str) -> bytes:
    return _form(grant_type="client_credentials", client_assertion_type=ASSERTION,
                 client_assertion=assertion, **more)


def _basic_form(who: tuple[str, str] = FINANCE, body: bytes = CC, **over: Any) -> Req:
    return Req(body=body, headers=[(b"content-type", FORM), _basic(*who)], **over)


def _replayed(issuer: str) -> list[Req]:
    once = _assertion(issuer)
    return [Req(body=_jwt_form(once)), Req(body=_jwt_form(once))]


def _big(declared: bool) -> Req:
    body = CC + b"&pad=" + b"x" * (2 * 1024 * 1024)
    headers = [(b"content-type", FORM), _basic(*FINANCE)]
    if declared:
        return Req(body=body, headers=[*headers, (b"content-length", str(len(body)).encode())])
    return Req(body=[body[:1024], body[1024:]], headers=headers)


#: name -> (the requests, given the issuer; expected status, error code (OAuth) or
#: problem type suffix; who answers (``_run``); audit event types of the last)
CASES: dict[str, tuple[Callable[[str], list[Req]], int, str | None, str, list[str]]] = {
    "basic": (lambda i: [_basic_form()], 200, None, "direct", ["token_issued"]),
    "basic, charset parameter": (lambda i: [Req(headers=[
        (b"content-type", FORM + b"; charset=UTF-8"), _basic(*FINANCE)])],
        200, None, "direct", ["token_issued"]),
    "basic, scope narrowed": (lambda i: [_basic_form(body=CC + b"&scope=catalogue%3Aread")],
                              200, None, "direct", ["token_issued"]),
    "a system under proxy": (lambda i: [_basic_form(body=CC + b"&scope=proxy%3Aassets")],
                             200, None, "direct", ["token_issued"]),
    "standard scopes": (lambda i: [_basic_form(body=CC + b"&scope=openid+offline_access")],
                        200, None, "direct", ["token_issued"]),
    # RFC 6749 section 5.2: a scope the client may not have is refused, never dropped
    "a scope it may not have beside one it may": (lambda i: [_basic_form(
        body=CC + b"&scope=admin+proxy")], 400, "invalid_scope", "direct", ["token_denied"]),
    "only a scope it may not have": (lambda i: [_basic_form(body=CC + b"&scope=admin")],
                                     400, "invalid_scope", "direct", ["token_denied"]),
    "a malformed proxy scope": (lambda i: [_basic_form(body=CC + b"&scope=proxy%3AASSETS")],
                                400, "invalid_scope", "direct", ["token_denied"]),
    "a scope no token may quote": (lambda i: [_basic_form(body=CC + b"&scope=%E7%AE%A1")],
                                   400, "invalid_scope", "direct", ["token_denied"]),
    "client_secret_post": (lambda i: [Req(body=_form(
        grant_type="client_credentials", client_id=POSTER[0], client_secret=POSTER[1]))],
        200, None, "direct", ["token_issued"]),
    "private_key_jwt": (lambda i: [Req(body=_jwt_form(_assertion(i)))],
                        200, None, "direct", ["token_issued"]),
    "private_key_jwt replayed": (_replayed, 401, "invalid_client", "direct", ["token_denied"]),
    "private_key_jwt other key": (lambda i: [Req(body=_jwt_form(_assertion(i, OTHER_KEY)))],
                                  401, "invalid_client", "direct", ["token_denied"]),
    "private_key_jwt wrong audience": (lambda i: [Req(body=_jwt_form(
        _assertion(i, aud="https://elsewhere.example")))], 401, "invalid_client", "direct",
        ["token_denied"]),
    "wrong secret": (lambda i: [_basic_form((FINANCE[0], FINANCE[1][:-1] + "X"))],
                     401, "invalid_client", "direct", ["client_authentication", "token_denied"]),
    "wrong secret, post": (lambda i: [Req(body=_form(
        grant_type="client_credentials", client_id=POSTER[0], client_secret="nope"))],
        401, "invalid_client", "direct", ["token_denied"]),
    "unknown client": (lambda i: [_basic_form(("nobody", "whatever-secret"))],
                       401, "invalid_client", "direct", ["client_authentication", "token_denied"]),
    "unknown client, post": (lambda i: [Req(body=_form(
        grant_type="client_credentials", client_id="nobody", client_secret="x"))],
        400, "invalid_client", "direct", ["token_denied"]),
    "disabled client": (lambda i: [_basic_form(GONE)], 401, "invalid_client", "direct",
                        ["client_authentication", "token_denied"]),
    "malformed basic": (lambda i: [Req(headers=[(b"content-type", FORM),
                                                (b"authorization", b"Basic %%%")])],
                        401, "invalid_client", "direct", ["client_authentication", "token_denied"]),
    "no credentials": (lambda i: [Req()], 401, "invalid_client", "direct", ["token_denied"]),
    "basic for a client_secret_post client": (lambda i: [_basic_form(POSTER)],
                                              401, "invalid_client", "direct", ["token_denied"]),
    "grant not allowed": (lambda i: [_basic_form(OFFICE)], 400, "unauthorized_client", "direct",
                          ["token_denied"]),
    "both methods at once": (lambda i: [_basic_form(body=_form(
        grant_type="client_credentials", client_id=POSTER[0], client_secret=POSTER[1]))],
        400, "invalid_request", "direct", ["token_denied"]),  # RFC 6749 section 2.3
    # RFC 6749 section 3.2: no parameter more than once
    "duplicate grant_type": (lambda i: [_basic_form(body=CC + b"&" + CC)],
                             400, "invalid_request", "app", ["token_denied"]),
    "duplicate scope": (lambda i: [_basic_form(body=CC + b"&scope=proxy&scope=admin")],
                        400, "invalid_request", "app", ["token_denied"]),
    "missing grant_type": (lambda i: [_basic_form(body=b"scope=proxy")],
                           400, "unsupported_grant_type", "app", ["token_denied"]),
    "another grant type": (lambda i: [_basic_form(body=b"grant_type=password&username=a"
                                                       b"&password=b")],
                           400, "unsupported_grant_type", "app", ["token_denied"]),
    "grant_type in the query": (lambda i: [_basic_form(body=b"", query=CC)],
                                200, None, "app", ["token_issued"]),
    "GET": (lambda i: [_basic_form(body=b"", method="GET", query=CC)],
            405, "about:blank", "app", []),
    "JSON body": (lambda i: [Req(body=b'{"grant_type": "client_credentials"}', headers=[
        (b"content-type", b"application/json"), _basic(*FINANCE)])],
        400, "unsupported_grant_type", "app", ["token_denied"]),
    "no content type": (lambda i: [Req(headers=[_basic(*FINANCE)])],
                        400, "unsupported_grant_type", "app", ["token_denied"]),
    "multipart form": (lambda i: [Req(
        body=b'--b0\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'
             b"client_credentials\r\n--b0--\r\n",
        headers=[(b"content-type", b"multipart/form-data; boundary=b0"), _basic(*FINANCE)])],
        200, None, "app", ["token_issued"]),
    "too many fields": (lambda i: [_basic_form(body=CC + b"".join(
        b"&f%d=v" % n for n in range(1001)))], 400, "about:blank", "app", []),
    "body over the limit, declared": (lambda i: [_big(True)], 413, "content_too_large",
                                      "app", ["api_request"]),
    # refused while the body is read: audited all the same (gateway.app._audited_body)
    "body over the limit, streamed": (lambda i: [_big(False)], 413, "content_too_large",
                                      "guard", ["api_request"]),
    "NUL in the body": (lambda i: [_basic_form(body=CC + b"&scope=%00")],
                        400, "nul_character", "guard", ["api_request"]),
    "body too slow": (lambda i: [_basic_form(body=[b"grant_type=client_"], slow=True)],
                      408, "request_timeout", "guard", ["api_request"]),
}


async def _call(app: Any, req: Req) -> Answer:
    pieces = req.body if isinstance(req.body, list) else [req.body]
    unfinished = req.slow or req.cut
    queue = [{"type": "http.request", "body": p, "more_body": n < len(pieces) - 1 or unfinished}
             for n, p in enumerate(pieces)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        if req.slow:
            await anyio.sleep(30)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": req.method, "scheme": "http", "path": "/oauth2/token",
             "raw_path": b"/oauth2/token", "query_string": req.query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), *req.headers],
             "client": ("127.0.0.9", 40000), "server": ("127.0.0.1", 8080), "state": {}}
    await app(scope, receive, send)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    return Answer(start["status"] if start else None, list(start["headers"]) if start else [],
                  b"".join(m.get("body", b"") for m in sent
                           if m["type"] == "http.response.body"))


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _comparable(answer: Answer) -> tuple[Any, ...]:
    """The answer but for what differs between any two tokens (id, times, signature)."""
    headers = [(k, v) for k, v in answer.headers if k != b"content-length"]
    length = [int(v) for k, v in answer.headers if k == b"content-length"]
    assert length == [len(answer.body)]
    body: Any = answer.body
    if any(v.startswith(b"application/") and v.endswith(b"json") for k, v in headers
           if k == b"content-type"):
        body = json.loads(answer.body)
        if "access_token" in body:
            claims = _claims(body.pop("access_token"))
            assert claims["exp"] - claims["iat"] == body["expires_in"]
            body["claims"] = {k: v for k, v in claims.items()
                              if k not in ("jti", "iat", "nbf", "exp")}
    return answer.status, headers, body


def _records_after(services: Services, last: int) -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).where(records.c.id > last)
                            .order_by(records.c.id)).all()
    out = []
    for row in rows:
        kept = {k: v for k, v in row._mapping.items() if k not in VOLATILE}
        extra = json.loads(kept["extra"])
        extra.pop("jti", None)
        kept["extra"] = extra
        out.append(kept)
    return out


def _last_id(services: Services) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(records.c.id))).scalar() or 0)


def _run(world: World, reqs: list[Req], direct: bool, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[list[Answer], list[dict[str, Any]], list[str]]:
    """Send ``reqs`` one after the other; the answers, the records the last one left and
    who answered each: ``direct`` (the direct path issued or refused), ``guard`` (the raw
    handler, for a body it could not read), ``app`` (the application behind it, or the
    front dispatch before it)."""
    calls: list[str] = []

    def spy(name: str) -> None:
        real = getattr(oauth2_token, name)

        def spied(*args: Any) -> Any:
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(oauth2_token, name, spied)

    for name in ("read_whole", "_replay", "issue"):
        spy(name)
    monkeypatch.setattr(TokenEndpoint, "direct", direct)
    answers, who = [], []
    last = _last_id(world.services)
    for req in reqs:
        last = _last_id(world.services)
        calls.clear()
        answers.append(world.client.portal.call(_call, world.client.app, req))
        who.append("direct" if "issue" in calls else
                   "guard" if calls == ["read_whole"] else "app")
    return answers, _records_after(world.services, last), who


@pytest.mark.parametrize("name", list(CASES))
def test_same_answer_and_audit_as_the_authlib_path(
        world: World, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, status, code, who, events = CASES[name]
    issuer = world.services.settings.issuer.rstrip("/")
    fast, fast_records, fast_who = _run(world, make(issuer), True, monkeypatch)
    slow, slow_records, slow_who = _run(world, make(issuer), False, monkeypatch)

    assert [_comparable(a) for a in fast] == [_comparable(a) for a in slow]
    assert fast_records == slow_records
    assert set(slow_who) == {"app"} and set(fast_who) == {who}

    answer = fast[-1]
    assert answer.status == status, answer.body
    assert [r["event_type"] for r in fast_records] == events
    body = json.loads(answer.body)
    if status == 200:
        assert body["token_type"] == "Bearer" and "access_token" in body
        assert dict(answer.headers)[b"cache-control"] == b"no-store"
        issued = fast_records[-1]
        assert issued["outcome"] == "success" and issued["source_ip"] == "127.0.0.9"
        assert issued["extra"]["scope"] == body["scope"]
        assert _claims(body["access_token"])["sub"] == issued["actor_client"]
    elif code in ("invalid_client", "unauthorized_client", "unsupported_grant_type",
                  "invalid_request", "invalid_scope"):
        assert body["error"] == code and "access_token" not in body
        assert dict(answer.headers)[b"content-type"] == b"application/json"
        if status == 401:
            assert dict(answer.headers)[b"www-authenticate"].startswith(b"Basic ")
        denied = fast_records[-1]
        assert denied["outcome"] == "failure" and denied["status"] == status
        if code == "unauthorized_client":  # authenticated by Basic: named all the same
            assert denied["actor_client"] == OFFICE[0]
        if code == "invalid_scope":  # the refused scopes named, the client too
            assert denied["actor_client"] == FINANCE[0]
            assert body["error_description"].startswith("the client may not have the scope")
            assert "proxy," not in body["error_description"]
        assert denied["reason"].startswith(code)
    else:
        assert dict(answer.headers)[b"content-type"] == b"application/problem+json"
        assert body["status"] == status and body["type"].endswith(code or "")
        if who == "guard":
            refused = fast_records[-1]
            assert (refused["outcome"], refused["status"]) == ("deny", status)
            assert refused["extra"]["code"] == code and refused["extra"]["method"] == "POST"
    # no secret reaches the audit log
    assert not any(s in json.dumps(fast_records, default=str)
                   for s in (FINANCE[1], POSTER[1], GONE[1]))


def test_the_scope_each_grants(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the direct path grants, asserted on its own: the client's registered scope
    by default, what it asks for of that; a scope it may not hold refused, named."""
    issuer = world.services.settings.issuer.rstrip("/")
    granted = {}
    for scope in ("", "catalogue:read", "proxy:assets proxy", "admin proxy", "admin",
                  "proxy admin audit:read"):
        body = CC + (b"&scope=" + scope.replace(" ", "+").encode() if scope else b"")
        answers, _, issued = _run(world, [_basic_form(body=body)], True, monkeypatch)
        assert issued == ["direct"]
        token = json.loads(answers[0].body)
        if "access_token" not in token:
            assert answers[0].status == 400 and token["error"] == "invalid_scope"
            granted[scope] = token["error_description"]
            continue
        claims = _claims(token["access_token"])
        assert claims["scope"] == token["scope"] and claims["client_id"] == FINANCE[0]
        assert claims["iss"] == issuer and claims["gty"] == "client_credentials"
        granted[scope] = token["scope"]
    refused = "the client may not have the scope(s): "
    assert granted == {"": "proxy catalogue:read", "catalogue:read": "catalogue:read",
                       "proxy:assets proxy": "proxy:assets proxy",
                       "admin proxy": refused + "admin", "admin": refused + "admin",
                       "proxy admin audit:read": refused + "admin, audit:read"}


def test_no_audit_no_token(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit log that cannot append: 503 problem, as the authlib path answers, and
    no token leaves."""
    async def failing(record: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(world.services.audit, "append", failing)
    fast, _, issued = _run(world, [_basic_form()], True, monkeypatch)
    slow, _, _ = _run(world, [_basic_form()], False, monkeypatch)
    assert issued == ["direct"]
    assert _comparable(fast[0]) == _comparable(slow[0])
    assert fast[0].status == 503 and b"access_token" not in fast[0].body
    assert json.loads(fast[0].body)["type"] == "urn:govgate:error:audit_unavailable"


def test_database_gone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client registry meeting a dead database: 503 ``storage`` from both paths."""
    registry = world.gateway.provider.server.clients
    registry.invalidate()

    def gone(client_id: str) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(registry, "_load", gone)
    fast, _, issued = _run(world, [_basic_form()], True, monkeypatch)
    slow, _, _ = _run(world, [_basic_form()], False, monkeypatch)
    assert issued == ["direct"]
    assert _comparable(fast[0]) == _comparable(slow[0])
    assert fast[0].status == 503
    assert json.loads(fast[0].body)["type"] == "urn:govgate:error:storage"


def test_a_client_that_goes_away_gets_nothing(world: World,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A disconnect before the body is complete: no answer, no token, no error."""
    monkeypatch.setattr(TokenEndpoint, "direct", True)
    before = _last_id(world.services)
    answer = world.client.portal.call(_call, world.client.app, _basic_form(
        body=[b"grant_type=client_"], cut=True))
    assert answer.status is None and answer.body == b""
    assert _last_id(world.services) == before


def test_an_issuer_on_plain_http_is_left_to_the_application(world: World) -> None:
    """A non-loopback ``http://`` issuer is authlib's ``insecure_transport`` refusal,
    which the application answers: the raw handler hands such a request on, read."""
    handed: list[bytes] = []

    async def application(scope: Any, receive: Any, send: Any) -> None:
        handed.append((await receive())["body"])

    provider = SimpleNamespace(server=SimpleNamespace(issuer="http://gw.example/idp"))
    endpoint = TokenEndpoint(provider, application)  # type: ignore[arg-type]
    world.client.portal.call(_call, endpoint, _basic_form())
    assert handed == [CC]


AUDIT_SAID = {"type": "urn:govgate:error:audit_unavailable", "title": "audit unavailable",
              "status": 503, "detail": "the audit log is unavailable; try again"}


def test_every_idp_endpoint_says_the_audit_log_is_unavailable_alike(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """No audit, no answer: the token endpoint and the others of the identity provider
    (userinfo, authorize, logout) answer the same 503 in the same words, one text key
    (``oauth2.audit_unavailable``) with its Chinese. Here for this module's world."""
    client, services = world.client, world.services
    signed_in = code_flow(client)  # zhang.san's session and ID token (its sid)

    async def failing(record: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.audit, "append", failing)
    answers = {
        "token": client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             auth=FINANCE),
        "userinfo, a bad token": client.get("/oauth2/userinfo",
                                            headers={"Authorization": "Bearer nope"}),
        "authorize, an unknown client": client.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": "nobody", "scope": "openid"},
            follow_redirects=False),
        "logout, another client's hint": client.get("/oauth2/logout", params={
            "client_id": "finance-system", "id_token_hint": signed_in["id_token"]},
            follow_redirects=False),
        "logout, the session's end": client.get("/oauth2/logout", params={
            "id_token_hint": signed_in["id_token"]}, follow_redirects=False),
    }
    for what, r in answers.items():
        assert (r.status_code, r.json()) == (503, AUDIT_SAID), what
        assert r.headers["content-type"] == "application/problem+json", what
        assert "access_token" not in r.text and "location" not in r.headers, what
    assert AUDIT_UNAVAILABLE.key == "oauth2.audit_unavailable"
    assert render(AUDIT_UNAVAILABLE, "zh") == "审计日志暂不可用，请稍后重试"
