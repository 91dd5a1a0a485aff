"""The CAS server of one app: the ticket store, the registered services, single
logout hooked on the identity provider's session end (the endpoints are
``gateway.web.cas``)."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from gateway.idp import attribute_release
from gateway.idp.cas import services as cas_services
from gateway.idp.cas.slo import SingleLogout
from gateway.idp.cas.store import TicketStore
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.store import SessionRow
from gateway.tables import systems


class CasServer:
    """The CAS server of one app: the ticket store, the registered services, single
    logout (hooked on the provider's session end)."""

    def __init__(self, provider: Provider, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        services = provider.services
        self.provider = provider
        self.settings = services.settings
        self.engine = services.engine
        self.clock = services.clock
        self.store = TicketStore(services.engine, services.keys, services.clock)
        self.slo = SingleLogout(emit=provider.emit, clock=services.clock, transport=transport)
        provider.on_session_end.append(self.session_ended)

    def registered(self) -> dict[str, list[str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(systems.c.code, systems.c.cas_services)
                                .where(systems.c.cas_services.is_not(None))).all()
        return {r.code: list(r.cas_services or []) for r in rows}

    def system_for(self, service: str) -> str | None:
        return cas_services.match(self.registered(), service)

    def released_to(self, system: str) -> list[str]:
        """The attributes ``system`` is registered for now (``cas_attributes``): a
        validation releases what the registration says at that moment."""
        with self.engine.connect() as conn:
            listed = conn.execute(sa.select(systems.c.cas_attributes)
                                  .where(systems.c.code == system)).scalar()
        return attribute_release.normalised(listed)

    def session_ended(self, row: SessionRow) -> None:
        self.slo.schedule(self.store.validated_in(row.sid), row.username, row.sid)

    async def notify_ended(self, sid: str, username: str) -> None:
        """Single logout for a session ended elsewhere (``govgate session revoke``)."""
        targets = self.store.validated_in(sid)
        if targets:
            await self.slo.notify(targets, username, sid)
