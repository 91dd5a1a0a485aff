"""The OAuth 2.0 Authorization Framework (RFC 6749,
https://www.rfc-editor.org/rfc/rfc6749): the grants the gateway offers.

- Section 4.1 authorization code (with PKCE, ``rfc7636``, and the OpenID Connect
  extension, ``oidc``). Section 4.1.2: a code is single use; a second
  presentation revokes what the first one issued (section 10.5).
- Section 6 refresh token, rotated on every use (RFC 9700 section 4.14.2): a
  refresh token presented twice revokes its whole family and is audited.
- Section 4.4 client credentials, for department systems; the scope must be
  one the client is registered for.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidScopeError,
    UnauthorizedClientError,
    grants,
)

from gateway.oauth2.rfc9068 import Subject
from gateway.oauth2.store import CodeRow, Expired, RefreshRow, Replay

SECRET_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def _replayed(grant: Any, exc: Replay) -> None:
    grant.server.event(
        grant.request, f"token_{exc.kind}_reuse", "deny", actor_user=exc.username,
        actor_client=exc.client_id,
        reason=f"{exc.kind} presented again: family {exc.family_id or '-'} revoked",
    )


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_METHODS, "none"]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: Any) -> None:
        user: Subject = request.user
        data = request.payload.data
        self.server.store.save_code(
            code, client_id=request.client.client_id, username=user.username,
            sid=user.sid or "", redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "", nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=user.auth_time, amr=user.amr,
        )

    def query_authorization_code(self, code: str, client: Any) -> CodeRow | None:
        try:
            row = self.server.store.consume_code(code, client.client_id)
        except Replay as exc:
            _replayed(self, exc)
            raise InvalidGrantError("authorization code was already used") from None
        except Expired:
            raise InvalidGrantError("authorization code expired") from None
        if row is not None:
            self.request.family_id = row.family_id
        return row

    def delete_authorization_code(self, authorization_code: CodeRow) -> None:
        """Codes stay (marked used) until purged, so a replay is recognised."""

    def authenticate_user(self, authorization_code: CodeRow) -> Subject | None:
        return self.server.subject(authorization_code.username, sid=authorization_code.sid,
                                   auth_time=authorization_code.auth_time,
                                   amr=authorization_code.amr or "pwd")


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_METHODS, "none"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRow | None:
        client = self.request.client
        try:
            row = self.server.store.consume_refresh(refresh_token, client.client_id)
        except Replay as exc:
            _replayed(self, exc)
            raise InvalidGrantError("refresh token was already used") from None
        except Expired:
            raise InvalidGrantError("refresh token expired") from None
        if row is not None:
            self.request.family_id = row.family_id
            self.request.refresh_sid = row.sid
        return row

    def authenticate_user(self, refresh_token: RefreshRow) -> Subject | None:
        if refresh_token.sid and self.server.store.is_denied("sid", refresh_token.sid):
            return None
        return self.server.subject(refresh_token.username, sid=refresh_token.sid,
                                   auth_time=refresh_token.auth_time)

    def revoke_old_credential(self, refresh_token: RefreshRow) -> None:
        """Already consumed atomically in ``authenticate_refresh_token``."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'")
        self.request.client = client
        scope = self.request.payload.scope
        if scope and client.get_allowed_scope(scope) is None:
            raise InvalidScopeError()
        self.validate_requested_scope()
