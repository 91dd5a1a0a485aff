"""JWT Profile for OAuth 2.0 Access Tokens (RFC 9068,
https://www.rfc-editor.org/rfc/rfc9068).

Section 2.1: the header carries ``typ: at+jwt``; section 2.2: the claims are
``iss``, ``aud``, ``exp``, ``iat``, ``sub``, ``client_id``, ``jti`` and ``scope``,
plus the gateway's own ``department`` and ``region`` (a user's under the
``department`` scope; a client-credentials token's always, its client's own) and
``roles`` (under the ``roles`` scope; section 2.2.3.1 allows them) and ``nbf``. The
relying party that holds a user's token can read it, so it carries no more of the
person than the ID token; the gateway decides on the user as stored now. Signed by
the active ``token`` key of the key ring; verification is :func:`verify_access_token`
(section 4).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749.util import scope_to_list

from gateway.idp import dpop
from gateway.idp.scopes import DEPARTMENT, ROLES, audiences

AT_TYP = "at+jwt"
#: granted scope strings whose ``scope`` and ``aud`` claims are kept (a scope string is
#: at most what a client may ask for; past this many the cache starts again)
SCOPE_CACHE = 1024
#: what a token acted for by a delegate (委托) may hold: the person's own sign-in, never
#: the proxy or the API (the delegation names a system, whose client this is)
ACTING_SCOPES = frozenset({"openid", "profile", "email", "phone", "address",
                           "offline_access", ROLES, DEPARTMENT})


@dataclass(frozen=True)
class Subject:
    """The resource owner a token is issued for (authlib's ``user``)."""

    username: str
    name: str
    department: str
    region: str
    roles: frozenset[str]
    sid: str | None = None
    auth_time: int = 0
    amr: str = "pwd"
    email: str | None = None
    email_verified: bool = False
    phone_number: str | None = None
    phone_number_verified: bool = False
    #: a delegation (委托): the person acting for this user (``act.sub``), and its id
    act: str | None = None
    delegation: int | None = None

    def get_user_id(self) -> str:
        return self.username


class AccessTokenGenerator:
    """authlib token generator: a signed RFC 9068 access token (+ a refresh token)."""

    def __init__(self, keys: Any, *, issuer: str, lifetime: int, clock: Callable[[], datetime],
                 new_refresh_token: Callable[[], str],
                 marks: Callable[[str], Any] | None = None) -> None:
        self.keys = keys
        # the user's active break-glass, marked in every token issued meanwhile
        self.marks = marks
        self.issuer = issuer
        self.lifetime = lifetime
        self.clock = clock
        self.new_refresh_token = new_refresh_token
        self._scopes: dict[str, tuple[str, str | tuple[str, ...]]] = {}

    def claims(self, client: Any, user: Subject | None, scope: str, grant_type: str,
               expires_in: int) -> dict[str, Any]:
        now = int(self.clock().timestamp())
        granted, aud = self._scope_claims(scope)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": list(aud) if isinstance(aud, tuple) else aud,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "client_id": client.client_id,
            "scope": granted,
            "jti": secrets.token_urlsafe(16),
        }
        if user is None:
            claims.update(sub=client.client_id, department=client.department,
                          region=client.region, roles=[], gty="client_credentials")
        else:
            claims.update(sub=user.username, auth_time=user.auth_time)
            held = granted.split()
            if DEPARTMENT in held:
                claims.update(department=user.department, region=user.region)
            if ROLES in held:
                claims["roles"] = sorted(user.roles)
            if user.sid:
                claims["sid"] = user.sid
            # a break-glass is the person's own: never on a token B holds acting for A
            if self.marks is not None and not user.act \
                    and (mark := self.marks(user.username)):
                claims["break_glass"] = mark
                # never announcing an emergency past its end: the token ends with the
                # first to end (an early end: refused where read, ActiveBreakGlass.over)
                claims["exp"] = max(now, min(claims["exp"], *(int(m["exp"]) for m in mark)))
            if user.act:  # RFC 8693 section 4.1, the person as the actor
                claims.update(act={"sub": user.act}, delegation=user.delegation)
        return claims

    def _scope_claims(self, scope: str) -> tuple[str, str | tuple[str, ...]]:
        """``scope`` and ``aud`` of a token granted ``scope``: the issuer (userinfo,
        introspection) and the resources the scopes open. A pure function of the
        granted scope string, of which a gateway has a few: kept per string (bounded)."""
        hit = self._scopes.get(scope)
        if hit is None:
            scopes = scope_to_list(scope) or []
            resources = audiences(self.issuer, scopes)
            hit = (" ".join(scopes),
                   (self.issuer, *resources) if resources else self.issuer)
            if len(self._scopes) >= SCOPE_CACHE:
                self._scopes.clear()
            self._scopes[scope] = hit
        return hit

    def __call__(self, grant_type: str, client: Any, user: Subject | None = None,
                 scope: str | None = None, expires_in: int | None = None,
                 include_refresh_token: bool = True) -> dict[str, Any]:
        expires_in = expires_in or self.lifetime
        # what the client may hold now: a requested scope is narrowed to it (authlib
        # hands the client-credentials and refresh requests' scope over as asked)
        if scope is None:
            scope = client.default_scope(grant_type)
        elif scope:
            scope = client.get_allowed_scope(scope)
        if user is not None and user.act:
            scope = " ".join(s for s in (scope or "").split() if s in ACTING_SCOPES)
        claims = self.claims(client, user, scope, grant_type, expires_in)
        token: dict[str, Any] = {
            # RFC 9449 section 5: bound to the request's DPoP key, when it has a proof
            "token_type": "DPoP" if dpop.token_claims(claims) else "Bearer",
            "access_token": self.keys.sign_jwt("token", claims, headers={"typ": AT_TYP}),
            "expires_in": claims["exp"] - claims["iat"],
            "scope": claims["scope"],
            # popped by save_token before the response leaves
            "_claims": claims,
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = self.new_refresh_token()
        return token


class InvalidAccessToken(Exception):
    """The one error for every way an access token can be bad; ``reason`` is for audit."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid token")
        self.reason = reason


def verify_access_token(keys: Any, token: str, *, issuer: str, now: datetime,
                        skew: int, audience: str | None = None) -> dict[str, Any]:
    """RFC 9068 section 4: typ, signature (asymmetric algorithms of our own key ring
    only, so ``alg: none`` and HS256-with-public-key fail), iss, exp/nbf, aud."""
    import base64
    import json

    try:
        head = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeError, AttributeError) as exc:
        raise InvalidAccessToken(f"malformed: {type(exc).__name__}") from None
    if not isinstance(header, dict) or str(header.get("typ", "")).lower() not in (
            AT_TYP, "application/at+jwt"):
        raise InvalidAccessToken("typ is not at+jwt")
    try:
        claims = keys.verify_jwt("token", token, at=now)
    except Exception as exc:  # keys raises InvalidSignature; anything else is as bad
        raise InvalidAccessToken(f"signature: {exc}") from None
    if claims.get("iss") != issuer:
        raise InvalidAccessToken(f"issuer {claims.get('iss')!r} is not ours")
    t = now.timestamp()
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float) or exp + skew <= t:
        raise InvalidAccessToken("expired")
    if isinstance(nbf, int | float) and nbf - skew > t:
        raise InvalidAccessToken("not yet valid")
    for name in ("sub", "jti", "client_id"):
        if not isinstance(claims.get(name), str):
            raise InvalidAccessToken(f"claim {name} missing")
    if audience is not None:
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if audience not in auds:
            raise InvalidAccessToken("audience mismatch")
    return dict(claims)
