"""SAML single logout from the IdP, on the back channel: when a portal session ends,
each SP it released an assertion to receives a signed ``LogoutRequest`` (its NameID
and SessionIndex) over the SOAP binding at the SP's SOAP ``SingleLogoutService``
(SAML Profiles section 4.4, Bindings section 3.2). The back channel is what works
whatever ended the session: the portal's sign-out, an SP's own logout, an expiry,
``govgate session revoke`` from a terminal with no browser at all.

Best effort, as CAS single logout: one attempt per SP with a short timeout, no
redirects followed, each outcome audited (``saml_logout_slo``). An SP with no SOAP
endpoint in its metadata cannot be told: that is audited too (``failure``, "no SOAP
SingleLogoutService"), and its own session lasts until it ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from audit import AuditRecord
from gateway.background import BackgroundTasks
from gateway.idp.saml import names
from gateway.idp.saml.store import Released

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": "http://www.oasis-open.org/committees/security"}


class SamlSingleLogout:
    def __init__(self, *, idp: Any, emit: Callable[[list[AuditRecord]], Awaitable[None]],
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 3.0
                 ) -> None:
        self.idp = idp  # gateway.idp.saml.routes.SamlIdp: the registered SPs, run()
        self.emit = emit
        self.transport = transport
        self.timeout = timeout
        self._background = BackgroundTasks()

    def schedule(self, released: list[Released], sid: str) -> None:
        if released:
            self._background.start(self.notify(released, sid))

    async def drain(self) -> None:
        """Wait for every scheduled notice (tests, shutdown)."""
        await self._background.drain()

    async def notify(self, released: list[Released], sid: str) -> None:
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout,
                                     follow_redirects=False) as http:
            await asyncio.gather(*(self._one(http, r, sid) for r in released))

    async def _one(self, http: httpx.AsyncClient, r: Released, sid: str) -> None:
        ok, status, why = False, None, ""
        try:
            sp = (await asyncio.to_thread(self.idp.registered)).get(r.sp_entity_id)
            endpoint = sp.meta.slo_for(names.BINDING_SOAP) if sp is not None else None
            if sp is None:
                why = "the SP is no longer registered"
            elif endpoint is None:
                why = ("no SOAP SingleLogoutService in the SP's metadata" + (
                    " (told through the browser only at a sign-out with one)"
                    if sp.meta.slo_for(names.BINDING_HTTP_REDIRECT) else ""))
            else:
                envelope = await asyncio.to_thread(self.idp.run, lambda e: e.soap_logout_request(
                    sp=sp, destination=endpoint.location, name_id=r.name_id,
                    name_id_format=r.name_id_format, session_index=r.session_index))
                resp = await http.post(endpoint.location, content=envelope.encode("utf-8"),
                                       headers=SOAP_HEADERS)
                status = resp.status_code
                ok = resp.status_code == 200 and await asyncio.to_thread(
                    self.idp.run, lambda e: e.soap_logout_succeeded(resp.text))
                why = "" if ok else (f"HTTP {resp.status_code}" if resp.status_code != 200
                                     else "the SP's LogoutResponse is not Success")
        except httpx.HTTPError as exc:
            why = type(exc).__name__
        except Exception as exc:  # best effort: a notice that cannot be made is audited
            why = f"{type(exc).__name__}: {str(exc)[:200]}"
        # best effort; a failed append is logged by the provider's emit
        with contextlib.suppress(Exception):
            await self.emit([AuditRecord(
                event_type="saml_logout_slo", outcome="success" if ok else "failure",
                actor_user=r.username, system=r.system, status=status, reason=why or None,
                extra={"sid": sid, "sp": r.sp_entity_id[:512]})])
