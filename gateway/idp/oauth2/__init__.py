"""The identity provider: OpenID Connect and OAuth 2.0 on authlib's server classes.

One module per specification:

    server.py              authlib ``AuthorizationServer`` adapted to Starlette (RFC 6749)
    rfc6749.py             the grants: authorization code, refresh token (rotation and
                           reuse detection), client credentials
    rfc7636.py             PKCE (S256 only; required for public clients)
    rfc7523.py             ``private_key_jwt`` client authentication
    rfc7662.py             token introspection
    rfc7009.py             token revocation
    rfc9068.py             JWT access tokens (``typ: at+jwt``)
    oidc.py                OpenID Connect: ID token, discovery, RFC 8414 metadata, userinfo
    backchannel_logout.py  OpenID Connect Back-Channel Logout 1.0
    store.py               codes, refresh tokens, sessions and the deny list in the database
    routes.py              the HTTP endpoints

Errors at the token, introspection and revocation endpoints are authlib's
``OAuth2Error`` tree, rendered as RFC 6749 section 5.2 JSON; everything else
is RFC 9457 problem details through ``gateway.errors``.
"""
