"""The identity provider: OAuth 2.0 / OpenID Connect (oauth2/), CAS (cas/), bearer
and session authentication, passwords, sign-in throttling, scopes, live users."""
