"""OAuth 2.0 Token Revocation (RFC 7009, https://www.rfc-editor.org/rfc/rfc7009).

Section 2.1: a client revokes its own tokens. Revoking a refresh token revokes
its whole family and the access tokens issued with it; revoking an access
token puts its ``jti`` on the deny list every gateway process mirrors (seen
everywhere within a second). Section 2.2: the answer is 200 whether or not the
token was valid. Audited.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from gateway.idp.oauth2.rfc7662 import AUTH_METHODS, FoundToken, find_token


class UnsupportedTokenType(OAuth2Error):
    """RFC 7009 section 2.2.1: a 400 like every other error of the endpoint. authlib's
    own is a 401 with ``WWW-Authenticate``, which tells the client its credentials
    failed when they did not."""

    error = "unsupported_token_type"
    status_code = 400


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS + ["none"]  # noqa: RUF005

    def check_params(self, request: Any, client: Any) -> None:
        if "token" not in request.form:
            raise InvalidRequestError("token is required")
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedTokenType(
                "token_type_hint: access_token or refresh_token, or none")

    def query_token(self, token_string: str, token_type_hint: str | None) -> FoundToken | None:
        found = find_token(self.server, token_string, token_type_hint, check_user=False)
        return found if found is not None and found.active else None

    def revoke_token(self, token: FoundToken, request: Any) -> None:
        store = self.server.store
        if token.kind == "refresh_token":
            row = store.find_refresh(request.form["token"])
            if row is not None:
                store.revoke_family(row[0].family_id)
        else:
            now = int(self.server.clock().timestamp())
            store.deny_jti(token.claims["jti"], int(token.claims.get("exp", now)) - now + 1)
        self.server.event(request, "token_revoked", "success",
                          actor_client=request.client.client_id,
                          actor_user=token.claims.get("sub"),
                          extra={"kind": token.kind, "jti": token.claims.get("jti")})
