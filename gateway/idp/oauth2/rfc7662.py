"""OAuth 2.0 Token Introspection (RFC 7662, https://www.rfc-editor.org/rfc/rfc7662).

Section 2.1: any authenticated confidential client may introspect an access
token (department systems act as resource servers); a refresh token only by the
client it was issued to. Section 2.2: an invalid, expired or revoked token, or
one of a client disabled since it was issued, or of a user no longer active
(disabled or gone: the token would be refused everywhere else), is
``{"active": false}`` and nothing else. An active token's ``scope``, and the claims
a claim scope released (``roles``; ``department``, ``region``), are narrowed to what
its client is registered for now. Every call is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from gateway.idp.oauth2.acting import NotInForce
from gateway.idp.oauth2.deny_list import token_id
from gateway.idp.oauth2.rfc9068 import InvalidAccessToken
from gateway.idp.scopes import DEPARTMENT, ROLES

#: the claims a claim scope releases (gateway.idp.scopes); introspection shows them
#: only while the token's client may still hold the scope
CLAIMS_OF = {ROLES: ("roles",), DEPARTMENT: ("department", "region")}

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


@dataclass
class FoundToken:
    kind: str  # "access_token" | "refresh_token"
    client_id: str
    claims: dict[str, Any]
    active: bool
    reason: str = ""

    def check_client(self, client: Any) -> bool:
        return bool(client.client_id == self.client_id)

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return not self.active

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))


def find_token(server: Any, token: str, hint: str | None, *, check_user: bool = True
               ) -> FoundToken | None:
    """The access or refresh token ``token`` is, active or not; None if neither.
    ``check_user=False`` leaves the user's state out (revocation: a token of a user
    disabled now is still revoked, so that enabling them again does not bring it
    back)."""
    if not isinstance(token, str) or not token or len(token) > 8192:
        return None
    # the hint does not decide (RFC 7009 section 2.1, RFC 7662 section 2.1: a server
    # that does not find the token under it MUST search the other types): an access
    # token is a JWT, a refresh token has no dot (``new_secret``), so the shape tells
    if token.count(".") == 2:
        try:
            claims = server.verify_access_token(token)
        except InvalidAccessToken as exc:
            return FoundToken("access_token", "", {}, False, exc.reason)
        deny = server.deny
        iat = claims.get("iat")
        if deny.denied_client(claims["client_id"],
                              float(iat) if isinstance(iat, int | float) else None):
            return FoundToken("access_token", claims["client_id"], claims, False,
                              "client disabled")
        if check_user and (gone := _user_gone(server, claims)):
            return FoundToken("access_token", claims["client_id"], claims, False, gone)
        denied = deny.denied("jti", token_id(claims)) or deny.denied("sid", claims.get("sid"))
        if not denied and "delegation" in claims and (ended := _delegation_ended(server,
                                                                                  claims)):
            return FoundToken("access_token", claims["client_id"], claims, False, ended)
        return FoundToken("access_token", claims["client_id"], claims, not denied,
                          "revoked" if denied else "")
    found = server.store.find_refresh(token)
    if found is None:
        return None
    row, usable = found
    claims = {"scope": row.scope, "client_id": row.client_id, "sub": row.username,
              "exp": int(row.expires_at.timestamp()), "token_type": "refresh_token"}
    if row.sid:
        claims["sid"] = row.sid
    if usable and check_user and (gone := _user_gone(server, claims)):
        return FoundToken("refresh_token", row.client_id, claims, False, gone)
    if usable and check_user and row.sid and (
            ended := server.session_ended(row.sid, touch=False)):
        return FoundToken("refresh_token", row.client_id, claims, False, ended)
    return FoundToken("refresh_token", row.client_id, claims, usable,
                      "" if usable else "used, revoked or expired")


def _user_gone(server: Any, claims: dict[str, Any]) -> str:
    """Why a user's token is no longer active because of the user (or, under a
    delegation, the delegate acting for them: RFC 8693's ``act`` of an exchanged token
    names a client instead): disabled or gone, as bearer authentication reads them
    (``live_users``, current within a second); "" for an active user or a client's
    own token."""
    if claims.get("gty") == "client_credentials":
        return ""
    act = claims.get("act") if "delegation" in claims else None
    for who in (claims.get("sub"), act.get("sub") if isinstance(act, dict) else None):
        if not isinstance(who, str):
            continue
        user = server.services.live_users.get(who)
        if user is None or not user.active:
            return f"user not active: {who[:64]}"
    return ""


def _delegation_ended(server: Any, claims: dict[str, Any]) -> str:
    """Why a token acted for by a delegate (委托, ``acting``) is no longer active, or
    "" while its delegation still names the client's system."""
    act, client = claims.get("act"), server.clients.get(claims["client_id"])
    delegate = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(delegate, str) or not isinstance(claims["delegation"], int):
        return "malformed act or delegation claim"
    try:
        server.acting.in_force(claims["delegation"], delegate,
                               client.system if client is not None else None)
    except NotInForce as exc:
        return f"delegation no longer in force: {exc}"
    return ""


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        """An unknown ``token_type_hint`` is ignored (RFC 7662 section 2.1: the hint is
        OPTIONAL and the server MAY ignore it; ``find_token`` never reads it): authlib
        answered it ``unsupported_token_type`` with 401, as if the resource server's
        credentials had failed."""
        if "token" not in request.form:
            raise InvalidRequestError("token is required")

    def query_token(self, token_string: str, token_type_hint: str | None) -> FoundToken | None:
        return find_token(self.server, token_string, token_type_hint)

    def check_permission(self, token: FoundToken, client: Any, request: Any) -> bool:
        allowed = token.kind == "access_token" or token.check_client(client)
        self.server.event(
            request, "token_introspected", "success" if allowed else "deny",
            actor_client=client.client_id,
            reason=("active" if token.active else f"inactive: {token.reason}")
            if allowed else "refresh token of another client",
            extra={"jti": token.claims.get("jti"), "kind": token.kind,
                   "subject": token.claims.get("sub")},
        )
        return allowed

    def authenticate_token(self, request: Any, client: Any) -> FoundToken | None:
        found = super().authenticate_token(request, client)
        if found is None and not any(e.event_type == "token_introspected"
                                     for e in request.events):
            self.server.event(request, "token_introspected", "success",
                              actor_client=client.client_id, reason="unknown token")
        return found

    def introspect_token(self, token: FoundToken) -> dict[str, Any]:
        c = token.claims
        scope = self._narrowed(c.get("client_id"), str(c.get("scope", "")))
        out: dict[str, Any] = {"active": True, "scope": scope,
                               "client_id": c.get("client_id"), "sub": c.get("sub"),
                               "exp": c.get("exp"), "token_type": (
                                   "DPoP" if "cnf" in c else "Bearer")
                               if token.kind == "access_token" else "refresh_token"}
        if token.kind == "access_token":
            out["username"] = None if c.get("gty") == "client_credentials" else c.get("sub")
            granted = set(scope.split())
            released = {name for claim_scope, names in CLAIMS_OF.items()
                        if claim_scope in granted for name in names}
            for name in ("iat", "nbf", "aud", "iss", "jti", *sorted(released),
                         "sid", "act", "delegation", "cnf"):
                if name in c:
                    out[name] = c[name]
        else:
            out["username"] = c.get("sub")
        return {k: v for k, v in out.items() if v is not None}

    def _narrowed(self, client_id: object, scope: str) -> str:
        """The token's scope without what its client is no longer registered for (as
        userinfo and bearer authentication read it): a token issued with ``roles``
        before its client lost that scope no longer shows the roles. No registration
        found: nothing the client may hold is known, so no scope."""
        client = self.server.clients.get(client_id, include_disabled=True)
        if client is None:
            return ""
        return " ".join(w for w in scope.split() if client.may_have(w))
