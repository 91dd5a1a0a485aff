"""Client credentials (RFC 6749 section 4.4) issued without authlib's request object and
grant lookup: the token endpoint's busiest request (issue #17), answered by
``gateway.web.oauth2_token`` from a form it has already read.

Every rule is the one the authlib path applies, by the same code where one exists:
the client authenticates by the methods ``ClientCredentialsGrant`` accepts, in its
order, through the server's registered methods (``client_secret_basic`` with its
section 2.3.1 decoding and its audited refusal, ``client_secret_post``,
``private_key_jwt`` with its ``jti`` replay check); :func:`admit` (shared with
``ClientCredentialsGrant``) checks the grant type and the scope; the server's token
generator narrows the scope and signs the token; the ``token_issued`` record is the
one ``IdentityServer.save_token`` writes; an error is authlib's own error object
answered by the server, and :func:`refusal_record` (shared with the authlib path)
records it. ``tests/oauth2/test_token_direct.py`` sends the same good and bad
requests through both paths and compares status, headers, body and audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import OAuth2Error

from audit import AuditRecord
from gateway.idp.oauth2.rfc6749 import ClientCredentialsGrant, admit
from gateway.idp.oauth2.server import Result, refusal_record, request_refusal

if TYPE_CHECKING:
    from gateway.idp.oauth2.server import IdentityServer

GRANT_TYPE = ClientCredentialsGrant.GRANT_TYPE
#: the client authentication methods the grant accepts, in the order authlib tries them
METHODS = ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS


class DirectRequest:
    """What the client authentication methods read of a token request (authlib's
    ``OAuth2Request`` as they use it): the ``Authorization`` header, the form, and
    where the method's own audit record and the authenticated client go."""

    __slots__ = ("auth_method", "client", "events", "form", "header", "source_ip")

    def __init__(self, form: dict[str, str], header: Callable[[str], str | None],
                 source_ip: str | None) -> None:
        self.form = form
        self.header = header
        self.source_ip = source_ip
        self.client: Any = None
        self.auth_method: str | None = None
        self.events: list[AuditRecord] = []

    @property
    def headers(self) -> DirectRequest:
        return self  # ``request.headers.get(name)``, without building a mapping

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.header(name)
        return default if value is None else value


def issue(server: IdentityServer, form: dict[str, str],
          header: Callable[[str], str | None], source_ip: str | None
          ) -> tuple[Result, list[AuditRecord]]:
    """The answer to a ``grant_type=client_credentials`` request whose parameters are
    ``form`` (each named once, none in the query), and the audit records to append
    before it leaves. ``header(name)`` is the request's first header field of that
    (case-insensitive) name."""
    request = DirectRequest(form, header, source_ip)
    try:
        if refusal := request_refusal(None, header("authorization"), form):
            raise refusal
        client = server.authenticate_client(request, METHODS)
        scope = form.get("scope")
        admit(client, scope, request)
        server.validate_requested_scope(scope)
        token = server.generate_token(GRANT_TYPE, client, scope=scope,
                                      include_refresh_token=False)
    except OAuth2Error as error:
        result: Result = server.handle_error_response(request, error)
        request.events.append(refusal_record(
            "token_denied", result, request.client, form.get("client_id"), GRANT_TYPE,
            source_ip))
        return result, request.events
    claims = token.pop("_claims")
    request.events.append(AuditRecord(  # IdentityServer.save_token's, for no user
        event_type="token_issued", outcome="success", source_ip=source_ip,
        actor_client=client.client_id, department=client.department,
        extra={"grant_type": GRANT_TYPE, "jti": claims["jti"], "scope": token["scope"]}))
    return Result(200, token, list(ClientCredentialsGrant.TOKEN_RESPONSE_HEADER)), \
        request.events
