"""OAuth 2.0 Token Exchange (RFC 8693, https://www.rfc-editor.org/rfc/rfc8693):
a department system holding a user's access token calls another system through
the gateway as "system X acting for user U".

Section 2.1, the request: the calling system authenticates as its client (the
methods of the other grants), ``subject_token`` is the user's access token this
gateway issued to that same client (``subject_token_type``
``urn:ietf:params:oauth:token-type:access_token``), ``audience`` or
``resource`` names the target system (its code or ``{issuer}/s/{code}``),
``scope`` is optional and may only be ``proxy:{target}``.

Section 2.2.1, the answer: an access token with ``sub`` the user, ``act``
``{"sub": "client:<id>"}`` (section 4.1), ``aud`` the target system only
(``{issuer}/s/{code}``), scope ``proxy:{code}``, a lifetime of at most
:data:`MAX_LIFETIME` seconds and never past the subject token's ``exp``,
``issued_token_type`` ``...:access_token``, no refresh token. It names the
subject token's ``jti`` (``subject_jti``): a revoked subject token (RFC 7009, the
admin console, its refresh family, its session) takes the exchanged token with it,
wherever the deny list is asked (proxy, forward-auth, introspection, every process).

Section 2.2.2, refusals: a client not registered for exchange (``token_exchange:
true`` in the state file) → ``unauthorized_client``; a subject token that is not
a valid, unrevoked user token of this client → ``invalid_grant``; one that is
itself the result of an exchange (it carries ``act``) → ``invalid_grant``:
delegation is one level only; an ``actor_token`` or another token type →
``invalid_request`` (not supported: the client's own authentication is the
actor); an audience that names no registered system → ``invalid_target``; a
scope wider than the user's token's or the client's registration →
``invalid_scope``. Each refusal is audited with its reason (``token_denied``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    grants,
)
from authlib.oauth2.rfc6749.util import scope_to_list

from gateway.idp import dpop
from gateway.idp.oauth2.clients import Client
from gateway.idp.oauth2.deny_list import SUBJECT_JTI, token_id
from gateway.idp.oauth2.descriptions import quoted
from gateway.idp.oauth2.rfc6749 import scope_names
from gateway.idp.oauth2.rfc9068 import AT_TYP, InvalidAccessToken, Subject
from gateway.idp.scopes import covers, proxy_scope
from gateway.tables import SYSTEM_RE, systems
from texts import Text

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
#: the longest an exchanged token lives (seconds): it is for one call chain, not a session
MAX_LIFETIME = 300
_SECRET_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class InvalidTargetError(OAuth2Error):
    """RFC 8693 section 2.2.2: the audience or resource is not one we issue for."""

    error = "invalid_target"


def acting_subject(client_id: str) -> str:
    """The ``act.sub`` naming a client (the form ``sub`` has in its own tokens' principals)."""
    return f"client:{client_id}"


def target_system(issuer: str, values: list[str]) -> str:
    """The system code named by the ``audience`` and ``resource`` values (its code or
    ``{issuer}/s/{code}``, a trailing slash allowed); InvalidTargetError unless they
    all name one well-formed code."""
    codes = set()
    prefix = issuer.rstrip("/") + "/s/"
    for value in values:
        code = value[len(prefix):].rstrip("/") if value.startswith(prefix) else value
        if not SYSTEM_RE.fullmatch(code):  # "$" alone would take "code\n"
            raise InvalidTargetError(f"{quoted(value)} names no system")
        codes.add(code)
    if len(codes) != 1:
        raise InvalidTargetError("name exactly one target system (audience or resource)")
    return codes.pop()


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = _SECRET_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(TOKEN_EXCHANGE):
            raise UnauthorizedClientError(
                "the client is not registered for token exchange (token_exchange: true)")
        self.request.client = client
        data = self.request.payload.data
        datalist = self.request.payload.datalist
        if "actor_token" in data or "actor_token_type" in data:
            raise InvalidRequestError("actor_token is not supported: the authenticated "
                                      "client is the actor")
        if data.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
        wanted_type = data.get("requested_token_type")
        if wanted_type not in (None, ACCESS_TOKEN_TYPE):
            raise InvalidRequestError(f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
        token = data.get("subject_token")
        if not token or len(datalist.get("subject_token", [])) != 1:
            raise InvalidRequestError("one subject_token is required")
        claims = self._subject_claims(token, client.client_id)
        code = target_system(self.server.issuer,
                             [*datalist.get("audience", []), *datalist.get("resource", [])])
        # the scope first: a client scoped to other systems gets the same refusal for a
        # code that does not exist as for one that does (no enumeration of codes, as
        # the proxy's admission); a caller in scope for it learns it does not exist
        scope = self._scope(claims, client, code)
        with self.server.services.engine.connect() as conn:
            if conn.execute(sa.select(systems.c.code)
                            .where(systems.c.code == code)).first() is None:
                raise InvalidTargetError(f"{quoted(code)} is not a registered system")
        self.request.exchange = {"claims": claims, "system": code, "scope": scope}

    def _subject_claims(self, token: str, client_id: str) -> dict[str, object]:
        """The claims of a subject token we can exchange, or InvalidGrantError."""
        server = self.server
        try:
            claims = server.verify_access_token(token)
        except InvalidAccessToken as exc:
            raise InvalidGrantError(f"subject_token is not valid ({exc.reason})") from None
        if "act" in claims:
            raise InvalidGrantError(
                f"subject_token was itself exchanged (act: {claims['act']!r}): delegation "
                "is one level only")
        if claims.get("gty") == "client_credentials":
            raise InvalidGrantError("subject_token is not a user's token")
        if claims["client_id"] != client_id:
            raise InvalidGrantError("subject_token was issued to another client")
        cnf = claims.get("cnf")
        if cnf is not None and (not isinstance(cnf, dict) or cnf.get("jkt") is None
                                or cnf.get("jkt") != dpop.bound_key()):
            # RFC 9449: a bound token is used only with a proof of its key, here too
            raise InvalidGrantError("subject_token is DPoP-bound to a key this request "
                                    "does not prove")
        if server.deny.denied("jti", token_id(claims)) or server.deny.denied(
                "sid", claims.get("sid")):
            raise InvalidGrantError("subject_token was revoked")
        return claims

    def _scope(self, claims: dict[str, object], client: Client, code: str) -> str:
        """``proxy:{code}``, when the user's token and the client's registration both
        cover it; a request for anything else is wider than the exchange gives."""
        target = proxy_scope(code)
        wanted = scope_to_list(self.request.payload.scope) or [target]
        if wider := [w for w in dict.fromkeys(wanted) if w != target]:
            raise InvalidScopeError(f"an exchanged token carries {target} only, not "
                                    f"{scope_names(wider)}")
        if not covers(str(claims.get("scope", "")).split(), target):
            raise InvalidScopeError(f"the user's token does not hold {target}")
        if not covers(scope_to_list(client.scope) or [], target):
            raise InvalidScopeError(f"the client is not registered for {target}")
        return target

    def create_token_response(self) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
        server = self.server
        client = self.request.client
        ex = self.request.exchange
        claims = ex["claims"]
        auth_time = claims.get("auth_time")
        sid = claims.get("sid")
        user: Subject | None = server.subject(
            str(claims["sub"]), sid=sid if isinstance(sid, str) else None,
            auth_time=auth_time if isinstance(auth_time, int) else 0)
        if user is None:
            raise InvalidGrantError("the subject_token's user is disabled or gone")
        now = int(server.clock().timestamp())
        expires_in = min(MAX_LIFETIME, int(claims["exp"]) - now)
        if expires_in < 1:
            raise InvalidGrantError("subject_token expires now")
        new = server.token_generator.claims(client, user, ex["scope"], TOKEN_EXCHANGE,
                                            expires_in)
        audience = f"{server.issuer}/s/{ex['system']}"
        act = {"sub": acting_subject(client.client_id)}
        # the subject token's jti: revoking it revokes this token too (deny_list.TokenId)
        new.update(aud=audience, act=act, **{SUBJECT_JTI: claims["jti"]})
        # a break-glass is the person's own: the proxy never lets a system acting for
        # them use it, and their token for that system does not claim one
        new.pop("break_glass", None)
        new["exp"] = now + expires_in  # the claim's end no longer bounds it (rfc9068)
        bound = dpop.token_claims(new)  # RFC 9449: to the acting client's proof key
        token = {
            "access_token": server.keys.sign_jwt("token", new, headers={"typ": AT_TYP}),
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "DPoP" if bound else "Bearer",
            "expires_in": expires_in,
            "scope": ex["scope"],
        }
        server.event(
            self.request, "token_issued", "success", actor_user=user.username,
            actor_client=client.client_id, department=user.department, system=ex["system"],
            extra={"grant_type": TOKEN_EXCHANGE, "jti": new["jti"], "scope": ex["scope"],
                   "aud": audience, "act": act, "subject_jti": claims["jti"],
                   "sid": user.sid, "acting_department": client.department})
        return 200, token, self.TOKEN_RESPONSE_HEADER


# -- registration: the state file's ``token_exchange: true`` ---------------------------
# stored as the grant type in the client's ``grant_types`` (what authlib checks), shown
# in the state file and the CLI as a flag of its own, so that no file names the URN


def stored_grant_types(entry: Mapping[str, Any]) -> list[str]:
    """The ``grant_types`` column of a state-file client entry."""
    kinds = {str(g) for g in entry["grant_types"]}
    if entry.get("token_exchange") is True:
        kinds.add(TOKEN_EXCHANGE)
    return sorted(kinds)


def exported_grant_types(stored: Iterable[str]) -> dict[str, Any]:
    """The ``grant_types`` (and ``token_exchange``) of a stored client's entry."""
    kinds = list(stored)
    out: dict[str, Any] = {"grant_types": [g for g in kinds if g != TOKEN_EXCHANGE]}
    if TOKEN_EXCHANGE in kinds:
        out["token_exchange"] = True
    return out


def exchange_problems(entry: Mapping[str, Any], method: str) -> list[Text]:
    """What is wrong with a client entry's ``token_exchange``."""
    flag = entry.get("token_exchange", False)
    if not isinstance(flag, bool):
        return [Text("field.bool", "{field} must be true or false", field="token_exchange")]
    if flag and method == "none":
        return [Text("state.exchange_needs_auth",
                     "token_exchange needs an authenticated client")]
    return []
