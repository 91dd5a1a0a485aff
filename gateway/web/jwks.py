"""The published key sets, one per audience (key separation: docs/keys.md, "Published
key sets").

    GET /.well-known/jwks.json                     the OpenID Provider's ``jwks_uri``
    GET /.well-known/govgate-assertion-jwks.json   the keys of X-Govgate-Assertion

The OP's set holds only the ``token`` keys, which sign what the OP issues (access and
ID tokens, logout tokens). A relying party that picks a key by ``kid`` and checks no
``typ`` would otherwise take an assertion made for a system whose code equals its
client id for an ID token (attack of 2026-12-05, docs/seams.md). The systems behind the
gateway fetch the assertion keys from their own document (``govgate_upstream``). The
``audit`` keys are published nowhere: auditors check checkpoints through the gateway
(``/api/v1/audit/verify``, ``/checkpoints``) or offline against an archive's
``keys.json``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.idp.oauth2.oidc import RS256_USE
from gateway.root import gateway_of
from gateway.web.api.operation import Access, Answer, Operation

OP_PATH = "/.well-known/jwks.json"
ASSERTION_PATH = "/.well-known/govgate-assertion-jwks.json"

JWK_SET = {"type": "object", "required": ["keys"], "properties": {"keys": {
    "type": "array", "items": {"type": "object", "required": ["kty", "kid", "alg", "use"],
                               "properties": {"kid": {"type": "string"},
                                              "alg": {"type": "string"},
                                              "use": {"const": "sig"}}}}}}

ASSERTION_KEYS = Operation(
    "GET", ASSERTION_PATH, "The public keys that sign X-Govgate-Assertion", "keys",
    Access(public=True),
    {200: Answer("A JWK Set (RFC 7517): the active assertion key, the next one (pending) "
                 "and the previous ones still in their window",
                 JWK_SET, media=("application/jwk-set+json",),
                 headers={"Cache-Control": {"schema": {"type": "string"}}})},
    description="For the systems behind the gateway (govgate_upstream fetches it). The "
                "OpenID Provider's /.well-known/jwks.json does not hold these keys.")


async def op_keys(request: Request) -> Response:
    keys = gateway_of(request).services.keys
    # the RS256 ID-token key beside the token key (gateway.idp.oauth2.oidc.id_token_key)
    published = keys.jwks("token")["keys"] + keys.jwks(RS256_USE)["keys"]
    return JSONResponse({"keys": published}, headers=keys.jwks_response_headers())


async def assertion_keys(request: Request) -> Response:
    keys = gateway_of(request).services.keys
    return JSONResponse(keys.jwks("assertion"), headers=keys.jwks_response_headers())


def jwks_routes() -> list[BaseRoute]:
    return [Route(OP_PATH, op_keys), ASSERTION_KEYS.route(assertion_keys)]
