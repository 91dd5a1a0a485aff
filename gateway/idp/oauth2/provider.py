"""The identity provider of one app: the authorization server, the store, the
back-channel notifier, sessions, and the audit helper they share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from audit import AuditRecord
from gateway.break_glass.active import ActiveBreakGlass
from gateway.errors import AuditUnavailable
from gateway.idp.oauth2.backchannel_logout import BackchannelNotifier
from gateway.idp.oauth2.consent import Consents
from gateway.idp.oauth2.server import IdentityServer
from gateway.idp.oauth2.store import SessionRow, Store
from gateway.services import Services

log = logging.getLogger("govgate.idp")

# what an administrative change is reported to (default: the services' audit hook)
ChangeHook = Callable[[str, dict[str, Any]], None]

#: the portal session's and the CSRF token's cookies by their plain names: what an
#: http:// gateway (the demo on 127.0.0.1) sets; over https they carry ``HOST_PREFIX``
SESSION_COOKIE = "gg_session"
CSRF_COOKIE = "gg_csrf"
HOST_PREFIX = "__Host-"


def cookie_name(name: str, issuer: str) -> str:
    """The name the gateway's cookie ``name`` goes by: ``__Host-{name}`` when the
    gateway is served over https (its issuer says so). A browser keeps a ``__Host-``
    cookie only if it came Secure, ``Path=/`` and without ``Domain`` from this very
    host (RFC 6265bis section 4.1.3.2), so a sibling subdomain or a plain-http answer
    forged on the way can no longer set or overwrite it (cookie tossing, session
    fixation). Browsers refuse Secure cookies from http:// (Chromium accepts them
    from http://localhost only), so a plain-http gateway keeps the plain name."""
    return HOST_PREFIX + name if issuer.startswith("https://") else name


class Provider:
    def __init__(self, services: Services, *,
                 backchannel_transport: httpx.AsyncBaseTransport | None = None,
                 break_glass: ActiveBreakGlass | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.clock = services.clock
        self.store = Store(services.engine, services.keys, services.clock,
                           deny_grace=services.settings.clock_skew_seconds)
        self.server = IdentityServer(services, self.store, break_glass)
        # a client disabled or changed here is seen by this process's cache at once
        services.on_admin_change(self.server.clients.invalidate)
        self.consents = Consents(services.engine, services.clock)
        self.notifier = BackchannelNotifier(
            keys=services.keys, issuer=self.server.issuer, clock=services.clock,
            emit=self.emit, transport=backchannel_transport, alg_of=self._id_token_alg,
        )
        #: called with each session ``end_session`` ends, after the back-channel
        #: notices are scheduled (CAS single logout, gateway.idp.cas)
        self.on_session_end: list[Callable[[SessionRow], None]] = []

    def _id_token_alg(self, client_id: str) -> str | None:
        client = self.server.clients.get(client_id, include_disabled=True)
        return client.id_token_signed_response_alg if client is not None else None

    @property
    def secure_cookies(self) -> bool:
        return self.settings.issuer.startswith("https://")

    # -- the session cookie: its name decided here, for every reader and writer ----------

    @property
    def session_cookie(self) -> str:
        return cookie_name(SESSION_COOKIE, self.settings.issuer)

    @property
    def csrf_cookie(self) -> str:
        return cookie_name(CSRF_COOKIE, self.settings.issuer)

    def session_token(self, cookies: Mapping[str, str]) -> str | None:
        """The portal session a request's cookies carry, under this gateway's name only:
        a plain ``gg_session`` left from before https (or tossed by a sibling) is no
        session (its holder signs in again)."""
        return cookies.get(self.session_cookie)

    def set_session_cookie(self, response: Any, token: str) -> None:
        """Set the session cookie on a Starlette ``response`` (host-only, ``Path=/``,
        HttpOnly, Lax; Secure over https), and, under the ``__Host-`` name, delete the
        plain one a browser may still hold."""
        response.set_cookie(self.session_cookie, token, httponly=True, samesite="lax",
                            secure=self.secure_cookies, path="/")
        if self.session_cookie != SESSION_COOKIE:
            response.delete_cookie(SESSION_COOKIE, path="/")

    def clear_session_cookie(self, response: Any) -> None:
        """Delete the session cookie (a ``__Host-`` cookie is deleted only by a Set-Cookie
        that is itself Secure, ``Path=/``), and the plain one left from before."""
        response.delete_cookie(self.session_cookie, path="/", secure=self.secure_cookies,
                               httponly=True, samesite="lax")
        if self.session_cookie != SESSION_COOKIE:
            response.delete_cookie(SESSION_COOKIE, path="/")

    async def emit(self, records: list[AuditRecord]) -> None:
        """Append ``records`` durably; AuditUnavailable when the log fails."""
        log_ = self.services.audit
        if not records:
            return
        try:
            for record in records:
                await log_.append(record)
        except Exception as exc:
            log.error("audit append failed: %s", exc)
            raise AuditUnavailable(str(exc)) from None

    def emit_sync(self, records: list[AuditRecord]) -> None:
        log_ = self.services.audit
        for record in records:
            log_.append_sync(record)

    # -- sessions ----------------------------------------------------------------------

    def valid_session(self, cookie: str | None, *, stage: str | None = "active",
                      ) -> SessionRow | None:
        """The live session a cookie names: not revoked, within the idle and absolute
        timeouts and (by default) fully authenticated."""
        if not cookie:
            return None
        row = self.store.find_session(cookie)
        if row is None or row.revoked_at is not None:
            return None
        now = self.clock()
        if now >= row.expires_at:
            return None
        if (now - row.last_seen_at).total_seconds() > self.settings.session_idle_timeout:
            return None
        if stage is not None and row.stage != stage:
            return None
        if (now - row.last_seen_at).total_seconds() > 60:
            self.store.touch_session(row.sid)
        return row

    async def end_session(self, row: SessionRow, *, reason: str,
                          source_ip: str | None = None) -> None:
        """Revoke a session everywhere and tell the relying parties (back-channel)."""
        ttl = max(self.settings.access_token_lifetime, self.settings.refresh_token_lifetime)
        self.store.revoke_session(row.sid, ttl_seconds=ttl)
        await self.emit([AuditRecord(event_type="logout", outcome="success",
                                     actor_user=row.username, source_ip=source_ip,
                                     reason=reason, extra={"sid": row.sid})])
        targets = []
        for cid in self.store.session_clients(row.sid):
            client = self.server.clients.get(cid)
            if client is not None and client.backchannel_logout_uri:
                targets.append((cid, client.backchannel_logout_uri))
        self.notifier.schedule(targets, row.username, row.sid)
        for hook in self.on_session_end:
            hook(row)

    def end_client_tokens(self, client_id: str, record: ChangeHook | None = None) -> int:
        """Stop every token of a (just disabled) client: revoke its refresh-token families
        and put the client on the deny list, so each process refuses its access tokens
        issued until now within the deny list's refresh (under a second). The entry
        outlives the longest access token issued before it (lifetime + clock skew), then
        lapses; tokens issued after a re-enable are not affected. Audited as an admin
        change. Returns the number of refresh-token families revoked."""
        settings = self.settings
        ttl = settings.access_token_lifetime + settings.clock_skew_seconds + 1
        families = self.store.revoke_client(client_id, ttl_seconds=ttl)
        self.server.clients.invalidate()
        (record or self.services.record_admin_change)("client_tokens_revoked", {
            "client": client_id, "families": families, "access_tokens_denied_seconds": ttl})
        return families
