"""OAuth clients of department systems: register, change, disable and enable, and
replace a secret. ``govgate client`` and the system administrator's console both
call these; every change goes through the state file's ``clients`` section
(``gateway.statefile``), so it is validated exactly as ``govgate apply`` validates.

A client secret is generated here (256 bits), returned once and stored only as a
keyed hash (HMAC-SHA-256, or HMAC-SM3 under the gm profile)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gateway.errors import Conflict, NotFound
from gateway.root import Gateway
from gateway.services import Services
from gateway.statefile import StateApplier, client_entry
from gateway.tables import clients
from texts import Text

ChangeHook = Callable[[str, dict[str, Any]], None]
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
# what a change may set (the rest of the entry is kept as stored)
EDITABLE = ("name", "redirect_uris", "post_logout_redirect_uris", "scope",
            "backchannel_logout_uri", "require_pkce", "dpop_bound",
            "lenient_assertion_audience", "static_credential", "id_token_signed_response_alg",
            "consent_required")


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def _applier(gateway: Gateway, record: ChangeHook | None) -> StateApplier:
    applier = gateway.state_applier()
    if record is not None:
        applier.on_change = record
    return applier


def _record(gateway: Gateway, record: ChangeHook | None) -> ChangeHook:
    return record or gateway.services.record_admin_change


def client_entries(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every client as its state-file entry (no secret)."""
    with engine.connect() as conn:
        return [client_entry(r) for r in
                conn.execute(sa.select(clients).order_by(clients.c.client_id))]


def get_client(engine: sa.Engine, client_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(clients).where(clients.c.client_id == client_id)).first()
    if row is None:
        raise NotFound(Text("admin.unknown_client", "unknown client {client!r}",
                            client=client_id))
    return client_entry(row)


def add_client(gateway: Gateway, entry: Mapping[str, Any], record: ChangeHook | None = None
               ) -> str | None:
    """Register the client of the state-file ``entry`` (without a secret: one is
    generated for the secret methods); returns that secret, to be shown once."""
    client_id = str(entry.get("client_id", ""))
    with gateway.services.engine.connect() as conn:
        if conn.execute(sa.select(clients.c.client_id)
                        .where(clients.c.client_id == client_id)).first():
            raise Conflict(Text("admin.client_exists", "client {client!r} exists",
                                client=client_id))
    full = dict(entry)
    method = full.get("token_endpoint_auth_method") or (
        "private_key_jwt" if full.get("jwks") else "client_secret_basic")
    full["token_endpoint_auth_method"] = method
    # a new client sends PKCE unless told otherwise, as Keycloak 26's new clients do
    # (RFC 9700 section 2.1.1); the state file keeps what it says
    full.setdefault("require_pkce", True)
    secret = None
    if method in SECRET_METHODS:
        secret = full["secret"] = new_client_secret()
    _applier(gateway, record).apply({"clients": [full]})
    detail: dict[str, Any] = {"client": client_id, "method": method}
    if full.get("token_exchange"):
        detail["exchange"] = True  # not "token_…": the audit log redacts such keys
    _record(gateway, record)("client_added", detail)
    return secret


def update_client(gateway: Gateway, client_id: str, changes: Mapping[str, Any],
                  record: ChangeHook | None = None) -> dict[str, Any]:
    """Change the ``EDITABLE`` fields of a client; returns its entry after."""
    entry = get_client(gateway.services.engine, client_id)
    for key in EDITABLE:
        if key in changes:
            if isinstance(changes[key], bool):
                entry[key] = changes[key]
            elif changes[key] in (None, [], ""):
                entry.pop(key, None)
            else:
                entry[key] = changes[key]
    _applier(gateway, record).apply({"clients": [entry]})
    return get_client(gateway.services.engine, client_id)


def _set(services: Services, client_id: str, **values: object) -> None:
    with services.engine.begin() as conn:
        n = conn.execute(clients.update().where(clients.c.client_id == client_id)
                         .values(**values)).rowcount
    if n == 0:
        raise NotFound(Text("admin.unknown_client", "unknown client {client!r}",
                            client=client_id))


def rotate_secret(gateway: Gateway, client_id: str, record: ChangeHook | None = None) -> str:
    """Replace a client's secret; returns the new one, to be shown once."""
    secret = new_client_secret()
    services = gateway.services
    _set(services, client_id, secret_hash=services.hash_client_secret(secret))
    _record(gateway, record)("client_secret_rotated", {"client": client_id})
    return secret


def disable_client(gateway: Gateway, client_id: str, record: ChangeHook | None = None) -> None:
    """No new tokens, its refresh tokens revoked, and its access tokens refused by every
    gateway process within a second."""
    _set(gateway.services, client_id, status="disabled")
    _record(gateway, record)("client_disabled", {"client": client_id})
    gateway.provider.end_client_tokens(client_id, record)


def enable_client(gateway: Gateway, client_id: str, record: ChangeHook | None = None) -> None:
    """Tokens issued before the disable stay dead; new ones work (a process that has
    not yet seen the change may refuse them for up to two seconds)."""
    _set(gateway.services, client_id, status="active")
    _record(gateway, record)("client_enabled", {"client": client_id})


def set_token_exchange(gateway: Gateway, client_id: str, allowed: bool,
                       record: ChangeHook | None = None) -> None:
    """Allow or forbid ``client_id`` to exchange its users' tokens (RFC 8693,
    docs/delegation.md); forbidding ends its delegated tokens at the proxy (within the
    client registry's second)."""
    entry = get_client(gateway.services.engine, client_id)
    entry.pop("token_exchange", None)
    if allowed:
        entry["token_exchange"] = True
    _applier(gateway, record).apply({"clients": [entry]})
    _record(gateway, record)("client_token_exchange",
                             {"client": client_id, "allowed": allowed})


def set_dpop_bound(gateway: Gateway, client_id: str, required: bool,
                   record: ChangeHook | None = None) -> None:
    """Require (or no longer require) a DPoP proof on ``client_id``'s token requests
    (RFC 9449, gateway.idp.dpop); takes effect within the client registry's second."""
    entry = get_client(gateway.services.engine, client_id)
    entry["dpop_bound"] = required  # said either way: left out, the stored value stays
    _applier(gateway, record).apply({"clients": [entry]})
    _record(gateway, record)("client_dpop_bound", {"client": client_id, "required": required})


def new_api_key(client_id: str) -> str:
    """``<client_id>.<256 random bits>``: the key names its client, so it is checked
    against that one client's hash (gateway.proxy.static_credentials)."""
    return f"{client_id}.{secrets.token_urlsafe(32)}"


def set_static_credential(gateway: Gateway, client_id: str, kind: str,
                          record: ChangeHook | None = None) -> str | None:
    """Let ``client_id`` call ``/s/`` with a fixed credential: ``basic`` (its client id
    and secret), ``api_key`` (a new key each time, returned to be shown once; the one
    before stops working) or ``off``. Validated as the state file's ``clients``
    section; takes effect within the client registry's second."""
    entry = get_client(gateway.services.engine, client_id)
    entry["static_credential"] = kind
    _applier(gateway, record).apply({"clients": [entry]})
    key = None
    if kind == "api_key":
        key = new_api_key(client_id)
        _set(gateway.services, client_id, api_key_hash=gateway.services.hash_api_key(key))
    # the kind only: never the key (nor "key" in a name, which the audit log redacts)
    _record(gateway, record)("client_static_credential", {"client": client_id,
                                                          "kind": kind})
    return key
