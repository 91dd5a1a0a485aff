"""What an access token may be used for: the gateway's scopes and the audiences
they put into the token.

A token a user's browser application (a relying party) received to sign the
user in (``openid profile``) must not also act for the user on every system
and API of the gateway. So each surface asks for a scope, a client gets a scope
only if it is registered for it (``clients: [{scope: ...}]``), and the token's
``aud`` names the resources its scopes open (RFC 9068 section 3, RFC 8707
resource URIs), beside the issuer (userinfo, introspection):

    scope             opens                                         aud entry
    proxy             /s/{system}/... of every system (policies and
                      the catalogue still decide) and /auth/verify  {issuer}/s/
    proxy:{system}    /s/{system}/... of that system only           {issuer}/s/{system}
    catalogue:read    GET /api/v1/catalogue/...                     {issuer}/api/v1/catalogue
    catalogue:write   every /api/v1/catalogue/... (read included)   {issuer}/api/v1/catalogue
    audit:read        /api/v1/audit/...                             {issuer}/api/v1/audit
    account           /api/v1/account/... (the user's own account)  {issuer}/api/v1/account
    stats:read        /api/v1/stats/... (real use, 实绩)             {issuer}/api/v1/stats
    admin             /api/v1/admin/... (the caller's admin role    {issuer}/api/v1/admin
                      still decides which console's endpoints)
    scim              /scim/v2/... (SCIM 2.0 provisioning, for a    {issuer}/scim/v2
                      client acting as itself within its
                      department; docs/scim.md)

Two scopes open nothing and release claims about the user (Keycloak's client scopes
``roles`` and a group/organisation one), to a client registered for them that asked:

    roles             the ``roles`` claim (ID token, userinfo, access token, introspection)
    department        the ``department`` and ``region`` claims

A relying party that asked for ``openid`` alone learns who signed in (``sub``) and
nothing of the person's roles or department; ``profile`` adds the name
(``gateway.idp.oauth2.oidc.user_claims``). The gateway's own decisions never read
these claims: they read the user as stored now (``gateway.idp.authenticator``).

A client registered for ``proxy`` may ask for any ``proxy:{system}``. A bearer
token without the scope a surface needs is refused with 403 and
``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`` (RFC 6750
section 3.1). The portal session cookie is how people act in the browser and
is not scoped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.errors import Forbidden
from gateway.idp.dpop import ALGS
from gateway.tables import SYSTEM_RE
from texts import Text

PROXY = "proxy"
CATALOGUE_READ = "catalogue:read"
CATALOGUE_WRITE = "catalogue:write"
AUDIT_READ = "audit:read"
ACCOUNT = "account"
STATS_READ = "stats:read"
ADMIN = "admin"
SCIM = "scim"
API_SCOPES = frozenset({CATALOGUE_READ, CATALOGUE_WRITE, AUDIT_READ, ACCOUNT, STATS_READ, ADMIN,
                        SCIM})
ROLES = "roles"
DEPARTMENT = "department"
#: scopes that release claims (of a client registered for them) and open nothing
CLAIM_SCOPES = frozenset({ROLES, DEPARTMENT})



def proxy_scope(system: str) -> str:
    return f"{PROXY}:{system}"


def is_gateway_scope(scope: str) -> bool:
    """A scope the gateway defines that a client must be registered for (asked for
    without the registration: ``invalid_scope``)."""
    return (scope == PROXY or scope.startswith(PROXY + ":") or scope in API_SCOPES
            or scope in CLAIM_SCOPES)


def covers(registered: Iterable[str], wanted: str) -> bool:
    """True when a client registered for ``registered`` may be granted ``wanted``: a
    registered scope, or ``proxy:{system}`` (a system code) under ``proxy``."""
    have = set(registered)
    if wanted.startswith(PROXY + ":") and not SYSTEM_RE.match(wanted[len(PROXY) + 1:]):
        return False  # proxy:, proxy:*, proxy:ASSETS, proxy:a/../b name no system
    return wanted in have or (wanted.startswith(PROXY + ":") and PROXY in have)


def audiences(issuer: str, scopes: Iterable[str]) -> list[str]:
    """The resource URIs the granted ``scopes`` open (sorted, without duplicates)."""
    base = issuer.rstrip("/")
    out = set()
    for scope in scopes:
        if scope == PROXY:
            out.add(f"{base}/s/")
        elif scope.startswith(PROXY + ":"):
            out.add(f"{base}/s/{scope[len(PROXY) + 1:]}")
        elif scope in (CATALOGUE_READ, CATALOGUE_WRITE):
            out.add(f"{base}/api/v1/catalogue")
        elif scope == AUDIT_READ:
            out.add(f"{base}/api/v1/audit")
        elif scope == ACCOUNT:
            out.add(f"{base}/api/v1/account")
        elif scope == STATS_READ:
            out.add(f"{base}/api/v1/stats")
        elif scope == ADMIN:
            out.add(f"{base}/api/v1/admin")
        elif scope == SCIM:
            out.add(f"{base}/scim/v2")
    return sorted(out)


class InsufficientScope(Forbidden):
    """RFC 6750 section 3.1: the token is valid but not for this resource."""

    code = "insufficient_scope"
    title = "The token was not issued for this"
    # the proxy and forward-auth answer it in the caller's language, as the API does
    localised = True

    def __init__(self, scope: str, *, dpop: bool = False) -> None:
        super().__init__(Text("auth.needs_scope", "this needs a token with the scope {scope}",
                              scope=scope))
        self.scope = scope
        self.dpop = dpop  # a DPoP-bound token's: the challenge in its scheme

    @property
    def www_authenticate(self) -> str:
        # RFC 9449 section 7.1: a DPoP-bound token is answered in the DPoP scheme
        said = (f'realm="govgate", error="insufficient_scope", '
                f'error_description="the token lacks the scope {self.scope}", '
                f'scope="{self.scope}"')
        return f'DPoP {said}, algs="{" ".join(ALGS)}"' if self.dpop else f"Bearer {said}"


def require(principal: Any, *accepted: str) -> None:
    """Raise InsufficientScope unless ``principal`` (a bearer token) holds one of
    ``accepted``; a portal session is not scoped."""
    if principal.via != "bearer":
        return
    held = principal.scope
    for scope in accepted:
        if scope in held:
            return
    raise InsufficientScope(accepted[-1], dpop=getattr(principal, "jkt", None) is not None)
