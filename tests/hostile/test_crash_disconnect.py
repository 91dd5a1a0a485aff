"""A client that goes away before the end of its body, on every kind of route that
reads one: a portal form, the sign-in, the OAuth endpoints (introspection,
revocation), the JSON API, SCIM, SAML's POST binding. The application is driven as
the server drives it (ASGI: a first piece of the body, then ``http.disconnect``, which uvicorn
sends when the connection closes). Before 2026-12-05 (fourth session) Starlette's
``ClientDisconnect`` left every handler for the server's error middleware: a 500 and a
traceback in the log for each such client (found with a raw socket against ``govgate
demo``). Now it is a 400 nobody reads, and nothing is written."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.types import Message

from gateway.statefile import export_state
from tests.hostile.conftest import IdpWorld
from tests.tokens import access_token

FINANCE = "Basic " + base64.b64encode(
    b"finance-system:demo-finance-secret-0123456789abcdef").decode()
FORM = "application/x-www-form-urlencoded"


def routes(world: IdpWorld) -> list[tuple[str, str, str | None]]:
    """(path, content type, Authorization) of each route that reads a body."""
    staff = "Bearer " + access_token(world.services, sub="li.si", department="jgswj")
    scim = "Bearer " + access_token(world.services, sub=None, department="jgswj",
                                    client_id="crash-scim", scope="scim")
    return [
        ("/portal/login", FORM, None),
        ("/portal/logout", FORM, None),
        ("/oauth2/introspect", FORM, FINANCE),
        ("/oauth2/revoke", FORM, FINANCE),
        ("/saml/sso", FORM, None),
        ("/api/v1/account/password", "application/json", staff),
        ("/api/v1/catalogue/applications", "application/json", staff),
        ("/scim/v2/Users", "application/scim+json", scim),
    ]


async def cut_short(app: Any, path: str, ctype: str, authorization: str | None
                    ) -> list[Message]:
    """POST ``path`` declaring 500 bytes, send 30, then the client is gone: what the
    application sent back (raises what it raised)."""
    headers = [(b"host", b"127.0.0.1:8080"), (b"content-type", ctype.encode()),
               (b"content-length", b"500")]
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 8080), "state": {}}
    pieces: list[Message] = [
        {"type": "http.request", "body": b'{"username": "li.si", "passw', "more_body": True},
        {"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return pieces.pop(0) if pieces else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.asyncio
async def test_a_client_gone_before_the_end_of_its_body_is_no_server_error(
        idp_world: IdpWorld) -> None:
    app = idp_world.client.app
    targets = routes(idp_world)  # (minting a SCIM token registers its client)
    before = export_state(idp_world.services.engine)
    for path, ctype, authorization in targets:
        sent = await cut_short(app, path, ctype, authorization)  # raised on the base
        start = next(m for m in sent if m["type"] == "http.response.start")
        assert 400 <= start["status"] < 500, (path, start["status"])
    assert export_state(idp_world.services.engine) == before
