"""``X-Govgate-Assertion``: who is calling, signed by the gateway for one system.

A JWT (RFC 7519) signed with the key ring's ``assertion`` key; the upstream
verifies it against the gateway's JWKS (``gateway.upstream_helper``). Claims:
``iss`` the gateway, ``aud`` the system code (an assertion for one system is
useless at another), ``iat``/``nbf``/``exp`` with a lifetime of at most 60 s,
``jti`` and ``request_id`` the request id, ``sub``, ``username``,
``department``, ``region``, ``roles``, ``client_id``, ``via`` (bearer or
session). Header ``typ`` is ``govgate-assertion+jwt`` so that no other token
type can be replayed as an assertion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

TYP = "govgate-assertion+jwt"
MAX_LIFETIME = 60
HEADER = "X-Govgate-Assertion"


def assertion_claims(
    principal: Any, *, issuer: str, system: str, request_id: str, now: datetime,
    lifetime: int = MAX_LIFETIME,
) -> dict[str, Any]:
    lifetime = max(1, min(int(lifetime), MAX_LIFETIME))
    t = int(now.timestamp())
    return {
        "iss": issuer,
        "aud": system,
        "iat": t,
        "nbf": t,
        "exp": t + lifetime,
        "jti": request_id,
        "request_id": request_id,
        "sub": principal.subject,
        "username": principal.username,
        "department": principal.department,
        "region": getattr(principal, "region", None),
        "roles": sorted(principal.roles),
        "client_id": principal.client_id,
        "via": getattr(principal, "via", None),
    }


def mint_assertion(
    keys: Any, principal: Any, *, issuer: str, system: str, request_id: str, now: datetime,
    lifetime: int = MAX_LIFETIME,
) -> str:
    """The signed assertion for ``principal`` calling ``system``."""
    claims = assertion_claims(principal, issuer=issuer, system=system, request_id=request_id,
                              now=now, lifetime=lifetime)
    return str(keys.sign_jwt("assertion", claims, headers={"typ": TYP}))
