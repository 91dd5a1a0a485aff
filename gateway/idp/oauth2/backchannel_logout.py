"""OpenID Connect Back-Channel Logout 1.0
(https://openid.net/specs/openid-connect-backchannel-1_0.html).

Section 2.4: the logout token is a JWT signed by the active ``token`` key, with
``iss``, ``aud``, ``iat``, ``exp``, ``jti``, ``sub``, ``sid`` and the
``events`` claim, header ``typ: logout+jwt`` (section 2.4, as recommended).
Section 2.5: it is POSTed as ``logout_token`` to every relying party that
registered a ``backchannel_logout_uri`` and received a code in the session;
retried with back-off on a network error or non-2xx answer, each outcome
audited. The transport is injectable (httpx) so tests never touch the network.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from authlib.oauth2.rfc6749 import OAuth2Error

from audit import AuditRecord
from gateway.background import BackgroundTasks
from gateway.idp.oauth2.oidc import id_token_key

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TYP = "logout+jwt"
RETRY_DELAYS = (0.5, 2.0, 5.0)


class BackchannelNotifier:
    def __init__(self, *, keys: Any, issuer: str, clock: Callable[[], Any],
                 emit: Callable[[list[AuditRecord]], Awaitable[None]],
                 transport: httpx.AsyncBaseTransport | None = None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS, timeout: float = 5.0,
                 alg_of: Callable[[str], str | None] = lambda _cid: None) -> None:
        self.keys = keys
        # the client's id_token_signed_response_alg: Back-Channel Logout 1.0 section
        # 2.4 signs the logout token with the keys of its ID tokens, and an RP that
        # verifies RS256 alone could not verify an ES256 one
        self.alg_of = alg_of
        self.issuer = issuer
        self.clock = clock
        self.emit = emit
        self.transport = transport
        self.retry_delays = retry_delays
        self.timeout = timeout
        self._background = BackgroundTasks()

    def logout_token(self, client_id: str, username: str, sid: str) -> str:
        now = int(self.clock().timestamp())
        claims = {"iss": self.issuer, "aud": client_id, "iat": now, "exp": now + 120,
                  "jti": secrets.token_urlsafe(16), "sub": username, "sid": sid,
                  "events": {EVENT: {}}}
        try:
            use, _alg = id_token_key(self.keys, self.alg_of(client_id))
        except OAuth2Error:  # an algorithm the ring no longer signs with: the token key
            use = "token"
        return str(self.keys.sign_jwt(use, claims, headers={"typ": LOGOUT_TYP}))

    def schedule(self, targets: list[tuple[str, str]], username: str, sid: str) -> None:
        """Notify ``targets`` ((client_id, uri) pairs) in the background."""
        if targets:
            self._background.start(self.notify(targets, username, sid))

    async def drain(self) -> None:
        """Wait for every scheduled notification (tests, shutdown)."""
        await self._background.drain()

    async def notify(self, targets: list[tuple[str, str]], username: str, sid: str) -> None:
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout,
                                     follow_redirects=False) as http:
            await asyncio.gather(*(self._one(http, cid, uri, username, sid)
                                   for cid, uri in targets))

    async def _one(self, http: httpx.AsyncClient, client_id: str, uri: str, username: str,
                   sid: str) -> None:
        last = ""
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                resp = await http.post(uri, data={"logout_token": self.logout_token(
                    client_id, username, sid)}, headers={"Cache-Control": "no-store"})
                if 200 <= resp.status_code < 300:
                    await self.emit([AuditRecord(
                        event_type="logout_backchannel", outcome="success", actor_user=username,
                        actor_client=client_id, status=resp.status_code,
                        extra={"sid": sid, "attempt": attempt})])
                    return
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
        await self.emit([AuditRecord(
            event_type="logout_backchannel", outcome="failure", actor_user=username,
            actor_client=client_id, reason=f"gave up after {len(self.retry_delays) + 1} "
            f"attempts: {last}", extra={"sid": sid})])
