"""``X-Govgate-Assertion``: who is calling, signed by the gateway for one system.

A JWT (RFC 7519) signed with the key ring's ``assertion`` key; the upstream
verifies it against the gateway's assertion key set
(``/.well-known/govgate-assertion-jwks.json``, ``govgate_upstream``). Claims:
``iss`` the gateway, ``aud`` the system code (an assertion for one system is
useless at another), ``iat``/``nbf``/``exp`` with a lifetime of at most 60 s,
``jti`` and ``request_id`` the request id, ``sub``, ``username``,
``department``, ``region``, ``roles``, ``client_id``, ``via`` (bearer or
session), ``act`` (a delegated token's: ``{"sub": "client:<id>"}``, the system
acting for the user; a delegation's: ``{"sub": "<username>"}``, the colleague acting
for the user, with ``delegation`` its id), and the request it was made for: ``htm``
the method and ``htu`` the path (as DPoP, RFC 9449, binds a proof), so that an
assertion forward-auth handed out for one request does not serve another at the system
(``govgate_upstream`` checks them). Header ``typ`` is
``govgate-assertion+jwt`` so that no other token type can be replayed as an
assertion.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

TYP = "govgate-assertion+jwt"
MAX_LIFETIME = 60
HEADER = "X-Govgate-Assertion"
# a system's ``assertion`` setting: one signed per request (the default), or one per
# caller and system reused up to 30 s (gateway.proxy.caller_assertion)
PER_REQUEST = "per_request"
PER_CALLER = "per_caller"
REUSE_MODES = (PER_REQUEST, PER_CALLER)


def assertion_claims(
    principal: Any, *, issuer: str, system: str, request_id: str, now: datetime,
    lifetime: int = MAX_LIFETIME, method: str | None = None, path: str | None = None,
) -> dict[str, Any]:
    lifetime = max(1, min(int(lifetime), MAX_LIFETIME))
    t = int(now.timestamp())
    bound = {"htm": method, "htu": path} if method is not None and path is not None else {}
    return {
        "iss": issuer,
        "aud": system,
        "iat": t,
        "nbf": t,
        "exp": t + lifetime,
        "jti": request_id,
        "request_id": request_id,
        **bound,
        "sub": principal.subject,
        "username": principal.username,
        "department": principal.department,
        "region": getattr(principal, "region", None),
        "roles": sorted(principal.roles),
        "client_id": principal.client_id,
        "via": getattr(principal, "via", None),
        # a delegated token (RFC 8693 section 4.1): the system acting for the user
        **({"act": {"sub": f"client:{actor.client_id}"}}
           if (actor := getattr(principal, "actor", None)) is not None else {}),
        # a delegation (委托): the colleague acting for the user, and which delegation
        **({"act": {"sub": delegate}, "delegation": getattr(principal, "delegation", None)}
           if (delegate := getattr(principal, "delegate", None)) is not None else {}),
    }


def mint_assertion(
    keys: Any, principal: Any, *, issuer: str, system: str, request_id: str, now: datetime,
    lifetime: int = MAX_LIFETIME,
) -> str:
    """The signed assertion for ``principal`` calling ``system``."""
    claims = assertion_claims(principal, issuer=issuer, system=system, request_id=request_id,
                              now=now, lifetime=lifetime)
    return str(keys.sign_jwt("assertion", claims, headers={"typ": TYP}))


class AssertionSigner:
    """Mints assertions faster than ``keys.sign_jwt`` by building the compact JWS here
    and signing with the public ``keys.sign`` recipe. It remembers the active key id
    and algorithm; when ``keys.sign`` answers with another key id (a rotation), it
    looks the new key up in the ring and signs again."""

    def __init__(self, keys: Any) -> None:
        self.keys = keys
        self._kid: str | None = None
        self._alg: str | None = None
        self._head_b64 = b""
        self._fixed: dict[tuple[Any, ...], tuple[str, str]] = {}

    def _learn(self, kid: str) -> None:
        # the key's own row, not the JWKS: that is cached apart from the active key,
        # and may not know yet a key another process (`keys rotate --now`) made active
        alg = self.keys.public_jwk(kid).get("alg")
        if alg is None:
            raise RuntimeError(f"assertion key {kid} has no alg")
        self._kid, self._alg = kid, alg
        header = {"alg": alg, "kid": kid, "typ": TYP}
        self._head_b64 = _b64(json.dumps(header, separators=(",", ":")).encode())

    def sign(self, claims: dict[str, Any]) -> str:
        return self._sign_body(
            _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()))

    def _sign_body(self, body: bytes) -> str:
        for _attempt in range(3):
            if self._kid is None:
                kid, _sig = self.keys.sign("assertion", b"probe")
                self._learn(kid)
            signing_input = self._head_b64 + b"." + body
            kid, sig = self.keys.sign("assertion", signing_input)
            if kid == self._kid:
                return (signing_input + b"." + _b64(sig)).decode("ascii")
            self._learn(kid)
        raise RuntimeError("assertion key keeps changing")

    def mint(self, principal: Any, *, issuer: str, system: str, request_id: str,
             now: datetime, lifetime: int = MAX_LIFETIME, method: str | None = None,
             path: str | None = None, marks: dict[str, Any] | None = None) -> str:
        """The assertion for ``principal`` calling ``system``; with ``method`` and
        ``path``, bound to that request (``htm``, ``htu``); ``marks``: claims a decider
        added for this request (a break-glass), never cached."""
        if marks:
            return self.sign({**assertion_claims(
                principal, issuer=issuer, system=system, request_id=request_id, now=now,
                lifetime=lifetime, method=method, path=path), **marks})
        try:
            # what the claims say of the caller, not the principal itself: a principal
            # is one token's (its jti), and a key per token would fill the cache with
            # every token ever seen instead of one entry per caller and system
            key = claims_key(principal, issuer, system)
            fixed = self._fixed.get(key)
        except TypeError:  # an unhashable field: no cache
            return self.sign(assertion_claims(principal, issuer=issuer, system=system,
                                              request_id=request_id, now=now,
                                              lifetime=lifetime, method=method, path=path))
        if fixed is None:
            if len(self._fixed) >= 10_000:
                self._fixed.clear()
            fixed = self._fixed[key] = _fixed_parts(principal, issuer, system)
        # the same JSON assertion_claims() would give, without re-encoding the claims
        # that do not change from one request of this caller to the next
        t = int(now.timestamp())
        rid = _json_string(request_id)
        lifetime = max(1, min(int(lifetime), MAX_LIFETIME))
        bound = "" if method is None or path is None else (
            f'"htm":{_json_string(method)},"htu":{_json_string(path)},')
        body = (f'{fixed[0]},"iat":{t},"nbf":{t},"exp":{t + lifetime},"jti":{rid},'
                f'"request_id":{rid},{bound}{fixed[1]}')
        return self._sign_body(_b64(body.encode("utf-8")))


def claims_key(principal: Any, issuer: str, system: str) -> tuple[Any, ...]:
    """Everything an assertion states of its caller and system, hashable: two
    principals with the same key get assertions that say the same (``act`` included:
    a delegated call and the user's own through the same client differ, and so do a
    委托 delegate's call for A and A's own)."""
    actor = getattr(principal, "actor", None)
    return (principal.subject, principal.username, principal.department,
            getattr(principal, "region", None), tuple(sorted(principal.roles)),
            principal.client_id, getattr(principal, "via", None),
            None if actor is None else actor.client_id, issuer, system,
            getattr(principal, "delegate", None), getattr(principal, "delegation", None))


def _fixed_parts(principal: Any, issuer: str, system: str) -> tuple[str, str]:
    """The JSON text before ``iat`` and after ``request_id`` in an assertion."""
    claims = assertion_claims(principal, issuer=issuer, system=system, request_id="",
                              now=datetime.fromtimestamp(0, UTC))
    head = json.dumps({"iss": claims["iss"], "aud": claims["aud"]}, separators=(",", ":"),
                      ensure_ascii=False)
    rest = {k: v for k, v in claims.items()
            if k not in ("iss", "aud", "iat", "nbf", "exp", "jti", "request_id")}
    tail = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
    return head[:-1], tail[1:]


def _json_string(value: str) -> str:
    """``json.dumps(value, ensure_ascii=False)``; a printable ASCII string without a quote
    or backslash (a request id, a method, a canonical path) needs no escaping, and
    checking that costs a third of the encoder's call."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
