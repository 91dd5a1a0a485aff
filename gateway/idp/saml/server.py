"""The SAML 2.0 identity provider of one app: the store, the registered SPs, the
pysaml2 engine (rebuilt when the SPs change), single logout hooked on the identity
provider's session end (the endpoints are ``gateway.web.saml``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import httpx
import sqlalchemy as sa

from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.store import SessionRow
from gateway.idp.saml.signing import SigningKey, active_key
from gateway.idp.saml.slo import SamlSingleLogout
from gateway.idp.saml.sps import ServiceProvider, from_column
from gateway.idp.saml.store import SamlStore
from gateway.tables import systems

if TYPE_CHECKING:
    from gateway.idp.saml.engine import SamlEngine

T = TypeVar("T")


class SamlIdp:
    """The SAML IdP of one app: the store, the registered SPs, the pysaml2 engine
    (rebuilt when the SPs change), single logout (hooked on the provider's session
    end)."""

    def __init__(self, provider: Provider, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        services = provider.services
        self.provider = provider
        self.settings = services.settings
        self.db = services.engine
        self.keys = services.keys
        self.clock = services.clock
        self.store = SamlStore(services.engine, services.keys, services.clock)
        self.base_url = services.settings.issuer.rstrip("/")
        self.entity_id = f"{self.base_url}/saml/metadata"
        self.slo = SamlSingleLogout(idp=self, emit=provider.emit, transport=transport)
        self._lock = threading.Lock()
        self._signing: SigningKey | None = None
        self._engine: tuple[frozenset[tuple[str, ServiceProvider]], SamlEngine] | None = None
        provider.on_session_end.append(self.session_ended)

    def registered(self) -> dict[str, ServiceProvider]:
        """Entity ID → the registered SP."""
        with self.db.connect() as conn:
            rows = conn.execute(sa.select(systems.c.code, systems.c.saml_sp)
                                .where(systems.c.saml_sp.is_not(None))).all()
        out = {}
        for r in rows:
            # a JSON null (the column's None as SQLAlchemy writes it) is no SP either
            sp = from_column(r.code, r.saml_sp) if isinstance(r.saml_sp, dict) else None
            if sp is not None:
                out[sp.meta.entity_id] = sp
        return out

    def run(self, work: Callable[[SamlEngine], T]) -> T:
        """``work`` on the engine of the SPs registered now, one call at a time (pysaml2's
        objects are not made for threads)."""
        # pysaml2 (imported by the engine) only when SAML work is done: the import
        # costs most of a second, and most processes that build a gateway do none
        from gateway.idp.saml.engine import SamlEngine

        sps = self.registered()
        key = frozenset(sps.items())
        with self._lock:
            if self._signing is None:
                self._signing = active_key(self.db, self.keys, self.clock, self.base_url)
            if self._engine is None or self._engine[0] != key:
                self._engine = (key, SamlEngine(
                    entity_id=self.entity_id, base_url=self.base_url, signing=self._signing,
                    sps=sps, skew=self.settings.clock_skew_seconds))
            return work(self._engine[1])

    def session_ended(self, row: SessionRow) -> None:
        self.slo.schedule(self.store.released_in(row.sid), row.sid)

    async def notify_ended(self, sid: str) -> None:
        """Single logout for a session ended elsewhere (``govgate session revoke``)."""
        released = self.store.released_in(sid)
        if released:
            await self.slo.notify(released, sid)
