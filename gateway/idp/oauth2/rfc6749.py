"""The OAuth 2.0 Authorization Framework (RFC 6749,
https://www.rfc-editor.org/rfc/rfc6749): the grants the gateway offers.

- Section 4.1 authorization code (with PKCE, ``rfc7636``, and the OpenID Connect
  extension, ``oidc``). Section 4.1.2: a code is single use; a second
  presentation revokes what the first one issued (section 10.5).
- Section 6 refresh token, rotated on every use (RFC 9700 section 4.14.2): a
  refresh token presented twice revokes its whole family and is audited.
- Section 4.4 client credentials, for department systems; the scope must be
  one the client is registered for.
- Section 2.3.1 ``client_secret_basic``: the id and secret are form-urlencoded,
  then joined by a colon and base64-encoded (Appendix B); a Basic credential
  that does not decode that way is a failed client authentication (section 5.2:
  ``invalid_client``, 401), audited, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    grants,
)
from authlib.oauth2.rfc6749.util import scope_to_list

from audit import AuditRecord
from gateway.idp.dpop import bound_key
from gateway.idp.oauth2.acting import NotInForce
from gateway.idp.oauth2.rfc9068 import Subject
from gateway.idp.oauth2.store import CodeRow, Expired, KeyMismatch, RefreshRow, Replay

SECRET_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

#: longest Basic credential read (base64 of an id of 128 and a long secret, encoded)
MAX_BASIC = 4096
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: a JWK SHA-256 thumbprint (RFC 7638) as base64url: the authorization request's dpop_jkt
JKT = re.compile(r"[A-Za-z0-9_-]{43}")


class MalformedBasic(ValueError):
    """A Basic credential that is not ``form(id):form(secret)`` in base64 (the message
    says how, for the audit record; it never holds the credential)."""


def _form_decode(part: str) -> str:
    """``application/x-www-form-urlencoded`` decoding of one value (RFC 6749 Appendix B):
    ``+`` is a space, ``%XX`` a byte, and the bytes are UTF-8; anything else is refused
    rather than guessed at."""
    if "%" not in part and "+" not in part:
        return part  # nothing to decode (the usual id and secret): already UTF-8 text
    if _BAD_ESCAPE.search(part):
        raise MalformedBasic("a % not followed by two hex digits")
    try:
        return unquote_to_bytes(part.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBasic("percent-encoded bytes are not UTF-8") from None


def parse_basic(value: str) -> tuple[str, str]:
    """The client id and secret of the ``credentials`` part of an ``Authorization: Basic``
    header (section 2.3.1); MalformedBasic when they do not decode."""
    token = value.strip()
    if not token:
        raise MalformedBasic("no credentials")
    if len(token) > MAX_BASIC:
        raise MalformedBasic("credentials too long")
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedBasic("not base64") from None
    try:  # form-encoded text is ASCII; raw UTF-8 from a lax client is still read
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBasic("not UTF-8") from None
    client_id, colon, secret = text.partition(":")
    if not colon:
        raise MalformedBasic("no colon between client id and secret")
    client_id, secret = _form_decode(client_id), _form_decode(secret)
    if not client_id or not secret:
        raise MalformedBasic("empty client id or secret")
    return client_id, secret


def basic_credentials(headers: Any) -> str | None:
    """The credentials of the request's ``Authorization: Basic`` header, if it has one."""
    header = headers.get("Authorization") or ""
    scheme, _, rest = header.strip().partition(" ")
    return rest if scheme.lower() == "basic" else None


def authenticate_client_secret_basic(query_client: Callable[[str], Any], request: Any
                                     ) -> Any:
    """authlib's ``client_secret_basic``, with the section 2.3.1 decoding. A request that
    sends Basic credentials has chosen this method (section 2.3: one method per
    request): if they do not decode or do not match, the answer is ``invalid_client``
    (401) at once, and the denial is collected for the audit log."""
    value = basic_credentials(request.headers)
    if value is None:
        return None
    client_id: str | None = None
    description = "client authentication failed"
    try:
        client_id, secret = parse_basic(value)
    except MalformedBasic as exc:
        reason = f"client_secret_basic: malformed credential ({exc})"
        secret = None
    else:
        client = query_client(client_id)
        if client is not None and client.check_client_secret(secret):
            return client
        reason = "client_secret_basic: " + (
            "unknown client" if client is None else "wrong client secret")
    if _sent_unencoded(query_client, value, secret):
        # still refused (section 2.3.1 is the rule), but told why: whoever sent it
        # holds the right secret already, so saying so reveals nothing
        reason = "client_secret_basic: the secret was sent without form-encoding"
        description = NOT_FORM_ENCODED
    events = getattr(request, "events", None)
    if events is not None:
        events.append(AuditRecord(
            event_type="client_authentication", outcome="deny", status=401,
            actor_client=client_id if client_id and len(client_id) <= 128 else None,
            source_ip=getattr(request, "source_ip", None), reason=reason,
            extra={"method": "client_secret_basic"}))
    raise InvalidClientError(status_code=401, description=description)


#: ``invalid_client`` for a secret that holds '+' or '%' sent as it is (``curl -u``)
NOT_FORM_ENCODED = (
    "client authentication failed: the secret was sent without form-encoding (RFC 6749 "
    "section 2.3.1: a + reads as a space, a % starts an escape); send + as %2B and % as "
    "%25, or send client_id and client_secret in the body (client_secret_post)")


def _sent_unencoded(query_client: Callable[[str], Any], value: str,
                    decoded: str | None) -> bool:
    """Whether the Basic credential ``value``'s secret, taken as sent rather than
    form-decoded (``decoded``; None when it did not decode), is its client's: an HTTP
    client that does not encode it (curl's ``-u``, most libraries) with a secret holding
    '+' or '%'."""
    if len(value) > MAX_BASIC:
        return False
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        client_id, colon, secret = raw.partition(":")
        client_id = _form_decode(client_id)
    except (binascii.Error, ValueError):  # MalformedBasic is a ValueError
        return False
    if not colon or not client_id or not secret or secret == decoded or (
            "+" not in secret and "%" not in secret):
        return False
    client = query_client(client_id)
    return client is not None and bool(client.check_client_secret(secret))


def _replayed(grant: Any, exc: Replay) -> None:
    grant.server.event(
        grant.request, f"token_{exc.kind}_reuse", "deny", actor_user=exc.username,
        actor_client=exc.client_id,
        reason=f"{exc.kind} presented again: family {exc.family_id or '-'} revoked",
    )


def acted_for(grant: Any, user: Subject | None, key: str | None) -> Subject | None:
    """``user`` acted for by the delegate the grant ``key`` was issued under (委托), if
    any; invalid_grant once that delegation no longer lets the delegate act on the
    client's system (revoked, expired, no longer naming it)."""
    if user is None or not key:
        return user
    try:
        return grant.server.acting.acted_for(key, user, grant.request.client.system)
    except NotInForce as exc:
        raise InvalidGrantError(f"issued under a delegation no longer in force: {exc}"
                                ) from None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_METHODS, "none"]  # noqa: RUF012

    def validate_requested_scope(self) -> None:
        """authlib calls this once the client and its redirect URI are validated, and
        sends the error to that redirect URI (RFC 6749 section 4.1.2.1)."""
        super().validate_requested_scope()
        check_scope(self.request.client, self.request.payload.scope)
        # RFC 9449 section 10: the key the code is bound to, a JWK SHA-256 thumbprint
        jkt = self.request.payload.data.get("dpop_jkt")
        if jkt is not None and not JKT.fullmatch(jkt):
            raise InvalidRequestError("dpop_jkt is not a JWK SHA-256 thumbprint "
                                      "(43 base64url characters)")

    def save_authorization_code(self, code: str, request: Any) -> None:
        user: Subject = request.user
        data = request.payload.data
        self.server.store.save_code(
            code, client_id=request.client.client_id, username=user.username,
            sid=user.sid or "", redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "", nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=user.auth_time, amr=user.amr, dpop_jkt=data.get("dpop_jkt"),
        )
        if user.act and user.delegation is not None:  # 委托 (gateway.idp.oauth2.acting)
            self.server.acting.remember("code:" + self.server.store.hash("code", code),
                                        user.delegation, user.act)

    def query_authorization_code(self, code: str, client: Any) -> CodeRow | None:
        try:
            row = self.server.store.consume_code(code, client.client_id, bound_key())
        except KeyMismatch:
            # RFC 9449 section 10: the code is bound to the key its request named
            raise InvalidGrantError("the authorization code is bound to a DPoP key this "
                                    "request does not prove (dpop_jkt)") from None
        except Replay as exc:
            _replayed(self, exc)
            raise InvalidGrantError("authorization code was already used") from None
        except Expired:
            raise InvalidGrantError("authorization code expired") from None
        if row is not None:
            self.request.family_id = row.family_id
            self.request.acting_key = "code:" + self.server.store.hash("code", code)
        return row

    def delete_authorization_code(self, authorization_code: CodeRow) -> None:
        """Codes stay (marked used) until purged, so a replay is recognised."""

    def authenticate_user(self, authorization_code: CodeRow) -> Subject | None:
        """The code's user; ``invalid_grant`` once the sign-in session it was issued in
        has ended (an ID token then would sign the user in to the relying party after
        they signed out of the portal)."""
        if authorization_code.sid and self.server.store.is_denied("sid",
                                                                    authorization_code.sid):
            raise InvalidGrantError("the code's sign-in session has ended")
        user = self.server.subject(authorization_code.username, sid=authorization_code.sid,
                                   auth_time=authorization_code.auth_time,
                                   amr=authorization_code.amr or "pwd")
        return acted_for(self, user, getattr(self.request, "acting_key", None))


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_METHODS, "none"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRow | None:
        client = self.request.client
        wanted = scope_to_list(self.request.payload.scope) or []
        granted = self.server.store.refresh_scope(refresh_token, client.client_id) \
            if wanted else None
        if granted is not None:
            # RFC 6749 section 6: no scope beyond the original grant. Checked before a
            # usable token is used up, so that asking too much is an error, not a
            # replay; a token used already is a replay whatever it asks (RFC 9700
            # section 4.14.2: its family is revoked), authlib checks the scope after
            if not set(wanted) <= set(granted.split()):
                wider = [s for s in wanted if s not in granted.split()]
                raise InvalidScopeError(f"beyond the original grant: {scope_names(wider)}")
            check_scope(client, self.request.payload.scope)
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
        """The token's user; ``invalid_grant`` (RFC 6749 section 5.2: the grant is no
        longer valid, which relying-party libraries answer by signing in again) once
        its session ended or the user is no longer active, where authlib would say
        ``invalid_request``."""
        if refresh_token.sid and self.server.store.is_denied("sid", refresh_token.sid):
            raise InvalidGrantError("the refresh token's sign-in session has ended")
        # bound to the session: not past its timeouts either, which end no session row
        # (a rotation's new expiry would otherwise carry the grant on without end)
        if refresh_token.sid and (ended := self.server.session_ended(refresh_token.sid)):
            raise InvalidGrantError(f"refresh token: {ended}")
        user = self.server.subject(refresh_token.username, sid=refresh_token.sid,
                                   auth_time=refresh_token.auth_time,
                                   amr=refresh_token.amr or "pwd")
        if user is None:
            raise InvalidGrantError("the refresh token's user is no longer active")
        return acted_for(self, user, "family:" + refresh_token.family_id)

    def revoke_old_credential(self, refresh_token: RefreshRow) -> None:
        """Already consumed atomically in ``authenticate_refresh_token``."""


#: how many refused scopes an ``invalid_scope`` names, and how long each may be
_NAMED_SCOPES = 8
_NAMED_CHARS = 64
#: RFC 6749 section 3.3 scope-token: what an error description may quote of a scope
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def scope_names(scopes: list[str]) -> str:
    """``scopes`` as an error description may quote them: the first few, each one a
    well-formed scope token or said to be malformed (authlib refuses a description
    holding ``"``, ``\\``, controls or non-ASCII)."""
    named = ", ".join(s if len(s) <= _NAMED_CHARS and _SCOPE_TOKEN.fullmatch(s)
                      else "(a malformed scope)" for s in scopes[:_NAMED_SCOPES])
    extra = len(scopes) - _NAMED_SCOPES
    return named + (f" and {extra} more" if extra > 0 else "")


def check_scope(client: Any, scope: str | None) -> None:
    """RFC 6749 section 5.2 ``invalid_scope``, naming them, when the requested ``scope``
    holds a gateway scope the client is not registered for, or nothing the client
    may have (``Client.refused_scopes``). Section 3.3 would let the server issue less
    than asked, but a token without the scope it was asked for (or for nothing) hides
    the client's mistake until a resource refuses it; refused at once instead, as
    Keycloak does. Every grant and the authorization endpoint ask this."""
    refused = client.refused_scopes(scope)
    if refused:
        raise InvalidScopeError(
            f"the client may not have the scope(s): {scope_names(refused)}")


def admit(client: Any, scope: str | None, request: Any) -> None:
    """What an authenticated client must have to be issued a client-credentials token:
    the grant type registered, and a requested ``scope`` it may have all of
    (:func:`check_scope`). Sets ``request.client`` first: a refusal
    record names the client that authenticated, even one refused the grant type
    (authlib's grant sets it after that check; with Basic the form names nobody)."""
    request.client = client
    if not client.check_grant_type(ClientCredentialsGrant.GRANT_TYPE):
        raise UnauthorizedClientError(
            f"The client is not authorized to use "
            f"'grant_type={ClientCredentialsGrant.GRANT_TYPE}'")
    check_scope(client, scope)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Also issued without this class by ``gateway.idp.oauth2.client_credentials`` (the
    token endpoint's direct path): a rule added here goes into :func:`admit`."""

    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        admit(client, self.request.payload.scope, self.request)
        self.validate_requested_scope()
