"""CAS single logout (CAS Protocol 3.0 section 2.3.3 and appendix C): when a portal
session ends, each service that validated a ticket of that session receives a SAML
2.0 ``LogoutRequest`` POSTed as the form field ``logoutRequest``, its
``SessionIndex`` the service ticket the service holds the session under.

Best effort, as the specification allows: one attempt per service with a short
timeout, no redirects followed, each outcome audited (``cas_logout_slo``). The
transport is injectable (httpx) so tests never touch the network.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from audit import AuditRecord
from gateway.background import BackgroundTasks
from gateway.idp.cas.protocol import logout_request
from gateway.idp.cas.store import Issued


class SingleLogout:
    def __init__(self, *, emit: Callable[[list[AuditRecord]], Awaitable[None]],
                 clock: Callable[[], Any], transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 3.0) -> None:
        self.emit = emit
        self.clock = clock
        self.transport = transport
        self.timeout = timeout
        self._background = BackgroundTasks()

    def schedule(self, targets: list[Issued], username: str, sid: str) -> None:
        if targets:
            self._background.start(self.notify(targets, username, sid))

    async def drain(self) -> None:
        """Wait for every scheduled request (tests, shutdown)."""
        await self._background.drain()

    async def notify(self, targets: list[Issued], username: str, sid: str) -> None:
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout,
                                     follow_redirects=False) as http:
            await asyncio.gather(*(self._one(http, t, username, sid) for t in targets))

    async def _one(self, http: httpx.AsyncClient, target: Issued, username: str,
                   sid: str) -> None:
        body = {"logoutRequest": logout_request(target.ticket, self.clock())}
        try:
            resp = await http.post(target.service, data=body)
            ok, status = 200 <= resp.status_code < 300, resp.status_code
            why = "" if ok else f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            ok, status, why = False, None, type(exc).__name__
        # best effort; a failed append is logged by the provider's emit
        with contextlib.suppress(Exception):
            await self.emit([AuditRecord(
                event_type="cas_logout_slo", outcome="success" if ok else "failure",
                actor_user=username, system=target.system, status=status,
                reason=why or None, extra={"sid": sid, "service": target.service[:512]})])
