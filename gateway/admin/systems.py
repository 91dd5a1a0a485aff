"""The systems behind the proxy: registered and changed through the state file's
``systems`` section (``gateway.statefile``), so that the console, the API and
``govgate apply`` validate every field the same way. A change keeps every field it
does not name (TLS, CAS services, the header allow-list) as stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gateway.errors import Conflict, NotFound
from gateway.root import Gateway
from gateway.statefile import system_entry
from gateway.tables import systems
from texts import Text

ChangeHook = Callable[[str, dict[str, Any]], None]
# what the console and the API set; the rest (tls, cas_services, forward_headers, ...)
# only the state file does (a TLS key file is read from the gateway's disk)
EDITABLE = ("name", "department", "upstream", "portal_path", "identity_headers",
            "remote_user", "assertion")


def system_entries(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [system_entry(r) for r in
                conn.execute(sa.select(systems).order_by(systems.c.code))]


def get_system(engine: sa.Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(systems).where(systems.c.code == code)).first()
    if row is None:
        raise NotFound(Text("admin.unknown_system", "unknown system {code!r}", code=code))
    return system_entry(row)


def _apply(gateway: Gateway, entry: Mapping[str, Any], record: ChangeHook | None) -> None:
    applier = gateway.state_applier()
    if record is not None:
        applier.on_change = record
    applier.apply({"systems": [dict(entry)]})


def add_system(gateway: Gateway, entry: Mapping[str, Any], record: ChangeHook | None = None
               ) -> dict[str, Any]:
    code = str(entry.get("code", ""))
    with gateway.services.engine.connect() as conn:
        if conn.execute(sa.select(systems.c.code).where(systems.c.code == code)).first():
            raise Conflict(Text("admin.system_exists", "system {code!r} exists", code=code))
    _apply(gateway, {k: v for k, v in entry.items() if k == "code" or k in EDITABLE},
           record)
    return get_system(gateway.services.engine, code)


def update_system(gateway: Gateway, code: str, changes: Mapping[str, Any],
                  record: ChangeHook | None = None) -> dict[str, Any]:
    entry = get_system(gateway.services.engine, code)
    for key in EDITABLE:
        if key in changes:
            entry[key] = changes[key]
    _apply(gateway, entry, record)
    return get_system(gateway.services.engine, code)
