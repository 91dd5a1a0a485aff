"""JSON Web Token (JWT) Profile for OAuth 2.0 Client Authentication and
Authorization Grants (RFC 7523, https://www.rfc-editor.org/rfc/rfc7523),
section 2.2 and 3: ``private_key_jwt`` client authentication (the name comes
from OpenID Connect Core section 9).

A department system registers a JWKS instead of holding a shared secret and
signs a short assertion (``iss`` = ``sub`` = client_id, ``aud`` = the issuer,
``exp``, ``jti``) with its private key. Only asymmetric algorithms are accepted; a
``jti`` is accepted once per client.

The audience is the issuer identifier alone: a string, or an array whose only value
it is (draft-ietf-oauth-rfc7523bis, after the OpenID Foundation's advisory of January 2025 on
audience injection: an assertion a client made for another server, or for one of
this server's endpoints with extra audiences, must not authenticate it here). The
client flag ``lenient_assertion_audience`` (a client not yet changed) restores the rule
before it (any value naming the issuer or the token endpoint) for that client alone;
the setting ``client_assertion_audience = "issuer_or_token_endpoint"`` does it for
every client, and ``govgate compliance`` reports each client either lets off. The same
instance authenticates the client at the token endpoint (every grant, token exchange
included), introspection and revocation: one rule everywhere.

The assertion's ``typ`` (draft-ietf-oauth-rfc7523bis section 4; RFC 8725 section
3.11): ``client-authentication+jwt`` (with or without ``application/``), the legacy
``JWT`` or none are taken; any other value names another kind of JWT (an access
token ``at+jwt``, a DPoP proof, a logout token, a security event) signed by the
client's key, and is refused, so no such token is ever taken for a client assertion.

``exp``, ``iat`` and ``nbf`` must be NumericDates, and ``exp`` at most
``MAX_LIFETIME`` (one hour, plus the clock-skew leeway) ahead: RFC 7523 section 3
item 4 lets the server refuse an ``exp`` unreasonably far in the future, and the
``jti`` is remembered until ``exp``. Every failure is ``invalid_client`` with 401,
as a failed client secret is, so the token endpoint audits it (``token_denied``).
"""

from __future__ import annotations

import copy
import math
import time
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwk
from joserfc.jws import JWSRegistry

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA", "Ed25519"]
#: the longest an assertion may be valid from now (seconds), before the leeway
MAX_LIFETIME = 3600
#: the ``typ`` values of a client assertion, lower-cased (media types are compared
#: without case, and RFC 7515 section 4.1.9 lets ``application/`` be left out)
ASSERTION_TYPES = frozenset({"jwt", "client-authentication+jwt",
                             "application/jwt", "application/client-authentication+jwt"})
# joserfc warns on every "EdDSA" (RFC 9864 names it "Ed25519", also taken); clients
# still sign with it (RFC 8037): a registry whose copy does not warn, as
# keys._primitives and gateway.idp.dpop keep one. A warning on each assertion filled
# the log, and where warnings are errors (the test suite) made it a 500
_quiet_eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
_quiet_eddsa.security_warning = None


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _quiet_eddsa}  # noqa: RUF012


_REGISTRY = _Registry(algorithms=ASYMMETRIC)
# the client whose assertion is being verified: authlib resolves its key and then
# checks the claims in one call, on one thread or task (the instance is shared)
_asserting: ContextVar[Any] = ContextVar("asserting_client", default=None)


def _numeric_date(value: object) -> TypeGuard[int | float]:
    return not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)))


def assertion_type_refused(header: Any) -> str | None:
    """Why the JOSE ``header`` is not a client assertion's, or None: a ``typ`` that
    names another kind of JWT."""
    typ = header.get("typ") if isinstance(header, dict) else None
    if typ is None or (isinstance(typ, str) and typ.lower() in ASSERTION_TYPES):
        return None
    return "Invalid header: 'typ' must be client-authentication+jwt (or JWT)"


def sole_audience(aud: object, issuer: str) -> bool:
    """Whether ``aud`` names ``issuer`` and nothing else: the string, or an array of
    that one string (draft-ietf-oauth-rfc7523bis; compared as strings, RFC 3986 section
    6.2.1)."""
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    return isinstance(aud, str) and aud == issuer


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, store: Any, issuer: str, token_endpoint: str, *,
                 lenient_audience: bool = False, leeway: int = 60) -> None:
        super().__init__(validate_jti=True, leeway=leeway)
        self.store = store
        self.issuer = issuer
        self.lenient_audience = lenient_audience
        # authlib's check: an overlap with these; the strict rule is ours (verify_claims)
        self.audiences = [issuer, token_endpoint]

    def __call__(self, query_client: Any, request: Any) -> Any:
        started = _asserting.set(None)
        try:
            return super().__call__(query_client, request)
        except InvalidClientError as exc:
            # authlib answers a failed secret 401 but its own assertion errors 400
            exc.status_code = 401
            raise
        finally:
            _asserting.reset(started)

    def get_audiences(self) -> list[str]:
        return self.audiences

    def resolve_client_public_key(self, client: Any) -> jwk.KeySet:
        _asserting.set(client)
        if not client.jwks:
            raise InvalidClientError(description="client has no registered keys")
        return jwk.KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            token = jwt.decode(assertion, resolve_key, registry=_REGISTRY)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="client assertion does not verify") from exc
        if refused := assertion_type_refused(token.header):
            raise InvalidClientError(description=refused)
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        """authlib's checks (joserfc's clock: the system time), after two of ours: the
        three times are NumericDates, and ``exp`` is not past ``MAX_LIFETIME``. An ``exp``
        of 10**20 passed joserfc (any finite number does) and then overflowed the jti
        store's ``datetime``."""
        for name in ("exp", "iat", "nbf"):
            if name in claims and not _numeric_date(claims[name]):
                raise InvalidClientError(description=f"Invalid claim: {name!r}")
        exp = claims.get("exp")
        if exp is not None and exp > time.time() + MAX_LIFETIME + self.leeway:
            raise InvalidClientError(
                description=f"Invalid claim: 'exp' is more than {MAX_LIFETIME} s ahead")
        if not self.lenient_for(_asserting.get()) and \
                not sole_audience(claims.get("aud"), self.issuer):
            raise InvalidClientError(
                description=f"Invalid claim: 'aud' must be the issuer {self.issuer} alone")
        super().verify_claims(claims)

    def lenient_for(self, client: Any) -> bool:
        """Whether ``client`` may still name the token endpoint or several audiences:
        the gateway's setting, or the client's own flag."""
        return self.lenient_audience or bool(getattr(client, "lenient_assertion_audience",
                                                     False))

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        exp = claims.get("exp")
        try:
            expires = (datetime.fromtimestamp(exp, UTC) if _numeric_date(exp)
                       else datetime.now(UTC)) + timedelta(seconds=self.leeway)
        except (OverflowError, ValueError, OSError):  # verify_claims bounds it: never
            raise InvalidClientError(description="Invalid claim: 'exp'") from None
        return bool(self.store.remember_assertion(str(claims.get("sub")), str(jti), expires))
