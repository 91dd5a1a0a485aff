"""JSON Web Token (JWT) Profile for OAuth 2.0 Client Authentication and
Authorization Grants (RFC 7523, https://www.rfc-editor.org/rfc/rfc7523),
section 2.2 and 3: ``private_key_jwt`` client authentication (the name comes
from OpenID Connect Core section 9).

A department system registers a JWKS instead of holding a shared secret and
signs a short assertion (``iss`` = ``sub`` = client_id, ``aud`` = the token
endpoint or the issuer, ``exp``, ``jti``) with its private key. Only asymmetric
algorithms are accepted; a ``jti`` is accepted once per client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwk

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA"]


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, store: Any, audiences: list[str], leeway: int = 60) -> None:
        super().__init__(validate_jti=True, leeway=leeway)
        self.store = store
        self.audiences = audiences
        self._client_id: str | None = None

    def get_audiences(self) -> list[str]:
        return self.audiences

    def resolve_client_public_key(self, client: Any) -> jwk.KeySet:
        self._client_id = client.client_id
        if not client.jwks:
            from authlib.oauth2.rfc6749 import InvalidClientError

            raise InvalidClientError(description="client has no registered keys")
        return jwk.KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        from authlib.oauth2.rfc6749 import InvalidClientError
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASYMMETRIC)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="client assertion does not verify") from exc
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        exp = claims.get("exp")
        expires = (datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float)
                   else datetime.now(UTC)) + timedelta(seconds=self.leeway)
        return bool(self.store.remember_assertion(str(claims.get("sub")), str(jti), expires))
