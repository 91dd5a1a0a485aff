"""Access tokens as the identity provider issues them, for tests that call the proxy
and the APIs without a sign-in: signed by the gateway's key ring, for a user who
exists with the token's department and roles (decisions read the user's current
roles, ``gateway.live_users``, so a token for a user who does not exist is refused)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from gateway.errors import NotFound
from gateway.idp.scopes import API_SCOPES, PROXY, is_gateway_scope
from gateway.services import Services
from gateway.statefile import export_state
from gateway.tables import clients
from tests.wiring import apply_state

# what tests that are not about scopes ask for: every scope a gateway surface asks
# for (gateway.idp.scopes), so a token is refused for what a test tests, not for a
# scope nobody meant to leave out (tests of the scopes themselves pass ``scope=``)
ALL_SCOPES = " ".join(["openid", PROXY, *sorted(API_SCOPES)])


def ensure_user(services: Services, username: str, department: str,
                roles: Sequence[str]) -> None:
    """``username`` exists, active, in ``department`` with exactly ``roles``."""
    try:
        user = services.org.get_user(username)
        if (user.department, sorted(user.roles), user.status) == (
                department, sorted(roles), "active"):
            return
    except NotFound:
        pass
    apply_state(services, {"users": [{
        "username": username, "name": username, "department": department,
        "roles": list(roles), "status": "active"}]})


def ensure_client(services: Services, client_id: str, department: str, scope: str) -> None:
    """``client_id`` is registered, active, in ``department``, for the gateway scopes
    of ``scope`` at least (a client-credentials token speaks for its client's current
    registration)."""
    wanted = {s for s in scope.split() if is_gateway_scope(s)}
    with services.engine.connect() as conn:
        row = conn.execute(sa.select(clients).where(clients.c.client_id == client_id)).first()
    if row is not None and row.department_code == department and row.status == "active" \
            and wanted <= set((row.scope or "").split()):
        return
    if row is None:
        entry: dict[str, Any] = {
            "client_id": client_id, "name": client_id, "grant_types": ["client_credentials"],
            "secret": secrets.token_urlsafe(24)}
        registered: set[str] = set()
    else:  # as exported (no secret: the stored one stays), moved and widened
        entry = next(c for c in export_state(services.engine)["clients"]
                     if c["client_id"] == client_id)
        registered = set((row.scope or "").split())
    entry.update(department=department, status="active",
                 scope=" ".join(sorted(registered | wanted)))
    apply_state(services, {"clients": [entry]})


def _registered(services: Services, client_id: str) -> bool:
    with services.engine.connect() as conn:
        return conn.execute(sa.select(clients.c.client_id)
                            .where(clients.c.client_id == client_id)).first() is not None


def covered_by_client(services: Services, client_id: str, scope: str) -> None:
    """A registered ``client_id`` is registered for the gateway scopes of ``scope`` at
    least (a user's token holds only what its client may have now); one not registered
    is left so (no catalogue grant naming it applies)."""
    with services.engine.connect() as conn:
        row = conn.execute(sa.select(clients).where(clients.c.client_id == client_id)).first()
    if row is None or row.status != "active":
        return
    registered = set((row.scope or "").split())
    wanted = {s for s in scope.split() if is_gateway_scope(s)}
    if wanted <= registered:
        return
    entry = next(c for c in export_state(services.engine)["clients"]
                 if c["client_id"] == client_id)
    entry["scope"] = " ".join(sorted(registered | wanted))
    apply_state(services, {"clients": [entry]})


def own_client(department: str) -> str:
    """A client of ``department`` for a user's token that means "through their own
    department's system": jgswj's ``office-web`` (the demo's), ``web-<code>`` for the
    others (registered to that department when first used, :func:`access_token`)."""
    return "office-web" if department == "jgswj" else f"web-{department}"


def access_token(services: Services, *, sub: str | None, department: str,
                 roles: Sequence[str] = ("staff",), client_id: str | None = None,
                 scope: str | None = None, typ: str = "at+jwt", registered: bool = True,
                 **claims: Any) -> str:
    """A signed access token; ``sub=None`` is a client-credentials token of ``client_id``.
    A user's token names a registered client, as the identity provider issues them: one
    nobody registered is registered to the user's department (a user through their
    own department's system), unless ``registered`` is False (a minted token naming a
    client of no registration, which the proxy refuses)."""
    # a user's token holds only what its client is registered for now: a test that
    # leaves the client or the scope to this helper gets a registered client widened to
    # the scope (one that names both is about them)
    widen = client_id is None or scope is None
    client_id = client_id or "office-web"
    scope = ALL_SCOPES if scope is None else scope
    now = int(services.clock().timestamp())
    body: dict[str, Any] = {
        "iss": services.settings.issuer, "aud": services.settings.issuer, "iat": now,
        "nbf": now, "exp": now + 600, "sub": sub or client_id, "client_id": client_id,
        "department": department, "region": "gx", "roles": list(roles), "scope": scope,
        "jti": secrets.token_hex(8),
    }
    if sub is None:
        body["gty"] = "client_credentials"
    body.update(claims)
    if body.get("gty") != "client_credentials":
        ensure_user(services, str(body["sub"]), str(body["department"]), body["roles"])
        if registered and not _registered(services, str(body["client_id"])):
            ensure_client(services, str(body["client_id"]), str(body["department"]),
                          str(body["scope"]))
        elif widen:
            covered_by_client(services, str(body["client_id"]), scope)
    else:
        ensure_client(services, str(body["client_id"]), str(body["department"]),
                      str(body["scope"]))
    return services.keys.sign_jwt("token", body, headers={"typ": typ})
