"""The SAML 2.0 identity provider of one app: the store, the registered SPs, the
pysaml2 engine (rebuilt when the SPs change), single logout hooked on the identity
provider's session end (the endpoints are ``gateway.web.saml``)."""

from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

import httpx
import sqlalchemy as sa

from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.store import SessionRow
from gateway.idp.saml import names
from gateway.idp.saml.signing import SigningKey, active_key
from gateway.idp.saml.slo import SamlSingleLogout
from gateway.idp.saml.sps import ServiceProvider, from_column
from gateway.idp.saml.store import Released, SamlStore
from gateway.tables import systems

if TYPE_CHECKING:
    from gateway.idp.saml.engine import SamlEngine

T = TypeVar("T")

#: the sessions whose front-channel SPs the browser at hand tells next (a sign-out with
#: a browser sets it around ending the session): the back channel leaves those SPs to
#: it, rather than auditing a failure ("no SOAP SingleLogoutService") for SPs told
_BROWSER_TELLS: ContextVar[frozenset[str]] = ContextVar("govgate_saml_browser_tells",
                                                        default=frozenset())


def front_only(sp: ServiceProvider) -> bool:
    """The SP is told through the browser: an HTTP-Redirect SingleLogoutService and no
    SOAP one (which the back channel uses)."""
    return (sp.meta.slo_for(names.BINDING_SOAP) is None
            and sp.meta.slo_for(names.BINDING_HTTP_REDIRECT) is not None)


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

    # -- front-channel single logout, from the portal's sign-out -------------------------

    def _relay(self, sid: str) -> str:
        tag = base64.urlsafe_b64encode(self.keys.mac("saml-front-logout", sid.encode()))
        return f"{sid}.{tag[:22].decode()}"

    def sid_of_relay(self, relay_state: str | None) -> str | None:
        """The signed-out session a front-channel chain's RelayState names (None: not
        one this IdP made)."""
        relay = relay_state or ""
        sid = relay.partition(".")[0]
        ok = bool(sid) and len(relay) <= 80 and hmac.compare_digest(
            self._relay(sid).encode(), relay.encode("utf-8", "replace"))
        return sid if ok else None

    def front_channel_next(self, sid: str) -> tuple[Released, str] | None:
        """The next SP of the ended session ``sid`` to tell through the browser (one
        with an HTTP-Redirect SingleLogoutService and no SOAP one, which the back
        channel tells) and the URL of its signed LogoutRequest; None when none is left.
        The SP is marked told before the browser goes, so a chain that breaks at one
        SP (it never answers) is not sent there again."""
        registered = self.registered()
        found = None
        for r in self.store.released_in(sid):
            sp = registered.get(r.sp_entity_id)
            endpoint = sp.meta.slo_for(names.BINDING_HTTP_REDIRECT) if sp else None
            if sp is not None and endpoint is not None and front_only(sp):
                found = (r, sp, endpoint.location)
                break
        if found is None:
            return None
        told, sp, at = found
        self.store.logged_out(sid, told.sp_entity_id)
        relay = self._relay(sid)

        def request(e: SamlEngine) -> str:
            return e.front_logout_request(
                sp=sp, destination=at, name_id=told.name_id, name_id_format=told.name_id_format,
                session_index=told.session_index, relay_state=relay)

        return told, self.run(request)

    @contextmanager
    def browser_tells(self, sid: str) -> Iterator[None]:
        """Around ending session ``sid`` in a request whose browser runs the
        front-channel chain (``gateway.web.saml.front_channel``) next."""
        token = _BROWSER_TELLS.set(_BROWSER_TELLS.get() | {sid})
        try:
            yield
        finally:
            _BROWSER_TELLS.reset(token)

    def session_ended(self, row: SessionRow) -> None:
        released = self.store.released_in(row.sid)
        if released and row.sid in _BROWSER_TELLS.get():
            registered = self.registered()
            released = [r for r in released if not (
                (sp := registered.get(r.sp_entity_id)) is not None and front_only(sp))]
        self.slo.schedule(released, row.sid)

    async def notify_ended(self, sid: str) -> None:
        """Single logout for a session ended elsewhere (``govgate session revoke``)."""
        released = self.store.released_in(sid)
        if released:
            await self.slo.notify(released, sid)
