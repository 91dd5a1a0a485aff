"""The token endpoint's cheaper steps (issue #17) answer as before: the body read
without Starlette's stream (also in pieces), the JSON answer built from pre-encoded
header fields, client_secret_basic decoded only when it holds escapes, the ``scope``
and ``aud`` claims kept per granted scope string."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from starlette.testclient import TestClient

from gateway.services import Services
from tests.oauth2.helpers import FINANCE, audit_events
from tests.wiring import parts


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_token_answer_secret_decoding_and_scope_claims(client: TestClient,
                                                       idp: Services) -> None:
    issuer = idp.settings.issuer.rstrip("/")
    ok = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                     headers=_basic(*FINANCE))
    assert ok.status_code == 200
    # one field per name, the JSON type, no-store (RFC 6749 section 5.1), exact length
    names = [k.lower() for k, _ in ok.headers.items()]
    assert sorted(names) == sorted(set(names))
    assert ok.headers["content-type"] == "application/json"
    assert ok.headers["cache-control"] == "no-store" and ok.headers["pragma"] == "no-cache"
    assert int(ok.headers["content-length"]) == len(ok.content)
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "proxy catalogue:read"
    first = _claims(body["access_token"])
    assert first["aud"] == [issuer, f"{issuer}/api/v1/catalogue", f"{issuer}/s/"]

    # the same scope string again: equal claims, a list of its own in each token
    again = _claims(client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                headers=_basic(*FINANCE)).json()["access_token"])
    assert again["aud"] == first["aud"] and again["jti"] != first["jti"]
    narrow = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                                "scope": "catalogue:read"},
                         headers=_basic(*FINANCE)).json()
    assert narrow["scope"] == "catalogue:read"
    assert _claims(narrow["access_token"])["aud"] == [issuer, f"{issuer}/api/v1/catalogue"]

    # section 2.3.1: the form-encoded id and secret are still decoded when escaped...
    escaped = FINANCE[1].replace("-", "%2D")
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       headers=_basic(FINANCE[0].replace("-", "%2d"), escaped)
                       ).status_code == 200
    # ...and a secret that only looks right is refused: '+' is a space, a bad escape
    # is malformed, one character off is wrong; each a 401 JSON answer, audited
    denied_before = len(audit_events(idp, "client_authentication"))
    for secret in (FINANCE[1].replace("-", "+", 1), FINANCE[1] + "%G0", FINANCE[1][:-1] + "X"):
        refused = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                              headers=_basic(FINANCE[0], secret))
        assert refused.status_code == 401, secret
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"] == "invalid_client"
        assert refused.headers["cache-control"] == "no-store"
    reasons = [r["reason"] for r in audit_events(idp, "client_authentication")[denied_before:]]
    assert reasons == ["client_secret_basic: wrong client secret",
                       "client_secret_basic: malformed credential "
                       "(a % not followed by two hex digits)",
                       "client_secret_basic: wrong client secret"]
    assert not any(FINANCE[1][:12] in json.dumps(r) for r in audit_events(idp))


def test_body_in_pieces(idp: Services) -> None:
    """A body that arrives in several ASGI messages is read whole."""
    from gateway.app import create_app

    app = create_app(parts(idp))
    pieces = [b"grant_type=client_", b"credentials&scope=catalogue", b"%3Aread"]

    async def call() -> tuple[int, dict[str, Any]]:
        queue = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
                 for i, p in enumerate(pieces)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if queue:
                return queue.pop(0)
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await idp.audit.start()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/oauth2/token",
                 "raw_path": b"/oauth2/token", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1:8080"),
                             (b"content-type", b"application/x-www-form-urlencoded"),
                             *[(k.lower().encode(), v.encode())
                               for k, v in _basic(*FINANCE).items()]],
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}
        await app(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], json.loads(body)

    status, body = asyncio.run(call())
    assert status == 200 and body["scope"] == "catalogue:read"
