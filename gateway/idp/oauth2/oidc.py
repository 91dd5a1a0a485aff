"""OpenID Connect: the ID token (OpenID Connect Core 1.0 section 2 and 3.1.3.6,
https://openid.net/specs/openid-connect-core-1_0.html), discovery (OpenID
Connect Discovery 1.0 section 3, https://openid.net/specs/openid-connect-discovery-1_0.html),
OAuth 2.0 Authorization Server Metadata (RFC 8414, https://www.rfc-editor.org/rfc/rfc8414)
and the UserInfo claims (Core section 5.3).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from authlib.oidc.core.grants import OpenIDToken as _OpenIDToken
from authlib.oidc.core.util import create_half_hash

from gateway.idp.oauth2.rfc7523 import ASYMMETRIC
from gateway.idp.oauth2.rfc9068 import Subject
from gateway.idp.scopes import API_SCOPES, CLAIM_SCOPES, DEPARTMENT, PROXY, ROLES
from keys import GM, InvalidSignature

# every client may ask for these without registering them (Core section 5.4, 11); a
# scope with no data for the user is granted and yields no claim
STANDARD_SCOPES = ("openid", "profile", "email", "phone", "address", "offline_access")
SCOPES = [*STANDARD_SCOPES, *sorted(CLAIM_SCOPES), PROXY, *sorted(API_SCOPES)]
#: the ``prompt`` values the authorization endpoint knows (Core 3.1.2.1); any other is
#: ``invalid_request`` (gateway.web.oauth2._must_sign_in)
PROMPT_VALUES = ("none", "login", "consent", "select_account")
CLAIMS = ["sub", "name", "preferred_username", "department", "roles", "region", "sid",
          "auth_time", "amr", "nonce", "at_hash", "email", "email_verified", "phone_number",
          "phone_number_verified", "act", "delegation"]


def user_claims(user: Subject, scope: str = "") -> dict[str, Any]:
    """UserInfo / ID token claims of ``user`` under the granted ``scope`` (Core
    section 5.4: a scope requests a set of claims): ``sub`` always; ``profile`` the
    name and username, ``email``/``phone`` those claims when the user has them,
    ``roles`` the roles, ``department`` the department and region; ``act`` and
    ``delegation`` always (whoever signs in acting for another must be seen so). A
    scope reaches here only granted, so only for a client registered for it."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": user.username}
    if "profile" in scopes:
        claims.update(name=user.name, preferred_username=user.username)
    if DEPARTMENT in scopes:
        claims.update(department=user.department, region=user.region)
    if ROLES in scopes:
        claims["roles"] = sorted(user.roles)
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=user.email_verified)
    if "phone" in scopes and user.phone_number:
        claims.update(phone_number=user.phone_number,
                      phone_number_verified=user.phone_number_verified)
    if user.act:  # 委托: A, acted for by B (RFC 8693 section 4.1; docs/delegation.md)
        claims.update(act={"sub": user.act}, delegation=user.delegation)
    return claims


class OpenIDCode(_OpenIDCode):
    """authlib's OpenID Connect code-flow extension, signing with the key ring."""

    def __init__(self, server: Any) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # a nonce is bound to one code, which is single use

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        return user_claims(user, scope)

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        code = request.authorization_code
        return signed_id_token(self.server, token, request,
                               nonce=code.nonce if code is not None else None)


class OpenIDRefresh(_OpenIDToken):
    """A refresh of a grant that holds ``openid`` answers a new ID token (Core section
    12.2): the same ``iss``, ``sub``, ``aud``, ``azp``, ``auth_time`` and ``amr`` (kept
    on the refresh token's row), no ``nonce``.
    Relying-party libraries keep the newest token response and build the logout
    (``id_token_hint``) from it: pyoidc's ``construct_EndSessionRequest`` found no ID
    token after a refresh and raised."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        return user_claims(user, scope)

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        # the refresh token's row keeps how the person signed in (the code's amr); a
        # row from before it did says nothing: no ``amr`` rather than a guess
        row = getattr(request, "refresh_token", None)
        return signed_id_token(self.server, token, request, nonce=None,
                               amr=bool(getattr(row, "amr", None)))


def signed_id_token(server: Any, token: dict[str, Any], request: OAuth2Request, *,
                    nonce: str | None, amr: bool = True) -> str:
    """The ID token for ``token`` issued to ``request``'s client and user, signed with the
    ring's ``token`` key (Core section 2)."""
    user: Subject = request.user
    now = int(server.clock().timestamp())
    claims: dict[str, Any] = {
        "iss": server.issuer,
        "aud": request.client.client_id,
        "azp": request.client.client_id,
        "iat": now,
        "exp": now + server.settings.id_token_lifetime,
        "jti": secrets.token_urlsafe(12),
        "auth_time": user.auth_time,
    }
    if amr:
        claims["amr"] = (user.amr or "pwd").split()
    if nonce:
        claims["nonce"] = nonce
    if user.sid:
        claims["sid"] = user.sid
    use, alg = id_token_key(server.keys, getattr(request.client,
                                                 "id_token_signed_response_alg", None))
    at_hash = half_hash(token["access_token"], alg)
    if at_hash is not None:
        claims["at_hash"] = at_hash
    claims.update(user_claims(user, str(token.get("scope", ""))))
    return str(server.keys.sign_jwt(use, claims))


#: what a client may register as id_token_signed_response_alg (OpenID Connect Dynamic
#: Client Registration section 2), those the profile offers of them: RS256 always (Core
#: section 15.1), ES256 under the standard profile, SM2SM3 under gm (each the ``token``
#: key's default); None, the default, is the ``token`` key's algorithm
ID_TOKEN_ALGS = ("RS256", "ES256", "SM2SM3")
#: the key use that signs RS256 ID tokens when the ``token`` key is of another algorithm
RS256_USE = "token_rs256"


def id_token_algs(keys: Any) -> list[str]:
    """The algorithms an ID token of this provider may be signed with (discovery's
    ``id_token_signing_alg_values_supported``): the ``token`` key's (active first, then
    a pending one of another algorithm), and RS256 (its key is made when a client is
    registered for it, or at its first ID token)."""
    return list(dict.fromkeys([*keys.published_algs("token"), "RS256"]))


def id_token_key(keys: Any, wanted: str | None) -> tuple[str, str]:
    """(key use, algorithm) that sign an ID token for a client asking ``wanted`` (None:
    the ``token`` key's). A client registered for an algorithm the ring no longer signs
    with (the ``token`` key rotated to another) gets no ID token rather than one its
    library cannot verify: ``server_error`` at the token endpoint (a configuration to
    mend, which govgate client id-token-alg or the client's page does)."""
    alg = keys.signing_alg("token")
    if wanted is None or wanted == alg:
        return "token", alg
    if wanted == "RS256":
        keys.ensure_active(RS256_USE)  # made on first need (keys.ring.ON_DEMAND)
        return RS256_USE, "RS256"
    raise OAuth2Error(error="server_error", status_code=500, description=(
        f"the client asks for ID tokens signed with {wanted}, which this provider no "
        f"longer signs with (its token key is {alg})"))


def id_token_claims(keys: Any, issuer: str, token: str | None) -> dict[str, Any] | None:
    """The claims of ``token`` when it is an ID token of this provider (signed with its
    ``token`` key, its issuer, one audience that is also ``azp``), expired or not (Core
    section 3.1.2.1 and RP-Initiated Logout section 2 take an expired one as a hint);
    None for anything else: an access token of the same key (RFC 9068 ``client_id``),
    a logout token (``events``), a token of another issuer or no JWT at all."""
    if not token or not isinstance(token, str):
        return None
    try:
        claims = keys.verify_jwt("token", token)
    except (InvalidSignature, ValueError):
        try:  # an RS256 ID token of a client that asked for one
            claims = keys.verify_jwt(RS256_USE, token)
        except (InvalidSignature, ValueError):
            return None
    aud = claims.get("aud")
    if (claims.get("iss") != issuer or not isinstance(aud, str) or claims.get("azp") != aud
            or "client_id" in claims or "events" in claims
            or not isinstance(claims.get("sub"), str)):
        return None
    return dict(claims)


def half_hash(value: str, alg: str) -> str | None:
    """``at_hash`` (Core section 3.1.3.6): the left half of the hash the ID token's
    ``alg`` uses, base64url; SM3 for SM2SM3 (docs/keys.md, "SM2")."""
    if alg != "SM2SM3":
        half = create_half_hash(value, alg)
        return None if half is None else half.decode("ascii")
    digest = GM.hash(value.encode("ascii"))
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def metadata(issuer: str, signing_algs: list[str]) -> dict[str, Any]:
    """RFC 8414 / OpenID Connect Discovery metadata."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        # RFC 9207: every authorization response carries iss (gateway.web.oauth2)
        "authorization_response_iss_parameter_supported": True,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  # rfc8693.TOKEN_EXCHANGE (that module needs this one's)
                                  "urn:ietf:params:oauth:grant-type:token-exchange"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        # RFC 8414 section 2: present wherever private_key_jwt is offered, and what the
        # assertion's check accepts (gateway.idp.oauth2.rfc7523), no more and no fewer:
        # one PrivateKeyJWT authenticates at all three endpoints
        "token_endpoint_auth_signing_alg_values_supported": list(ASYMMETRIC),
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASYMMETRIC),
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASYMMETRIC),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 section 5.1 (gateway.idp.dpop.ALGS)
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"],
        "claims_supported": CLAIMS,
        # the ``claims`` parameter is not read: RFC 6749 section 3.1 has the server ignore
        # a parameter it does not recognise; the scopes decide the claims
        "claims_parameter_supported": False,
        # Initiating User Registration via OpenID Connect 1.0 section 4.2
        "prompt_values_supported": list(PROMPT_VALUES),
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "ui_locales_supported": ["zh-CN", "en"],
    }
