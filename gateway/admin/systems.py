"""The systems behind the proxy: registered and changed through the state file's
``systems`` section (``gateway.statefile``), so that the console, the API and
``govgate apply`` validate every field the same way. A change keeps every field it
does not name (TLS, CAS services, the header allow-list) as stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gateway.errors import Conflict, NotFound, ValidationError
from gateway.idp import attribute_release
from gateway.root import Gateway
from gateway.statefile import system_entry
from gateway.tables import systems
from texts import Text

ChangeHook = Callable[[str, dict[str, Any]], None]
# what the console and the API set; the rest (tls, cas_services, forward_headers, ...)
# only the state file does (a TLS key file is read from the gateway's disk), but for
# the release lists (``set_release``)
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


# -- what a system's CAS services and SAML SP receive (gateway.idp.attribute_release) --

PROTOCOLS = ("cas", "saml")


def release_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A system's release lists: ``cas`` (None: it has no CAS services), ``saml``
    (None: it registers no SAML SP), each [] for the identifier alone; and the names
    one may list."""
    sp = entry.get("saml_sp")
    return {"cas": list(entry.get("cas_attributes") or []) if entry.get("cas_services")
            else None,
            "saml": list(sp.get("attributes") or []) if isinstance(sp, Mapping) else None,
            "attributes": list(attribute_release.ATTRIBUTES)}


def release_problems(code: str, entry: Mapping[str, Any],
                     lists: Mapping[str, Any]) -> list[str]:
    """What is wrong with new release lists for the system ``entry`` (both languages:
    the CLI, the API and the console say it to a person)."""
    known = ", ".join(attribute_release.ATTRIBUTES)
    out: list[str] = []  # each a Text (its key for the other language)
    for protocol, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            out.append(Text("admin.release_list", "{protocol}: a list of attribute names "
                            "({known})", protocol=protocol, known=known))
            continue
        for name in value:
            if name not in attribute_release.ATTRIBUTES:
                out.append(Text("admin.release_unknown", "{protocol}: unknown attribute "
                                "{name!r} (one of {known})", protocol=protocol,
                                name=name[:40], known=known))
        if len(set(value)) != len(value):
            out.append(Text("admin.release_twice", "{protocol}: an attribute listed twice",
                            protocol=protocol))
    current = release_of(entry)
    if "cas" in lists and current["cas"] is None:
        out.append(Text("admin.release_no_cas", "system {code!r} has no CAS services "
                        "(cas_services, set in the state file): nothing to release to",
                        code=code))
    if "saml" in lists and current["saml"] is None:
        out.append(Text("admin.release_no_saml", "system {code!r} registers no SAML "
                        "service provider (saml_sp, set in the state file): nothing to "
                        "release to", code=code))
    return out


def set_release(gateway: Gateway, code: str, lists: Mapping[str, Any],
                record: ChangeHook | None = None) -> dict[str, Any]:
    """Replace the release lists named in ``lists`` (``cas``, ``saml``; [] for the
    identifier alone); those not named stay. Applied as the system's state-file entry
    (validated and audited as ``govgate apply`` is), so ``govgate export`` writes it and
    the next CAS validation or SAML response releases exactly it."""
    entry = get_system(gateway.services.engine, code)
    unknown = sorted(set(lists) - set(PROTOCOLS))
    if unknown:
        raise ValidationError(Text("admin.release_protocol", "unknown protocol {name!r} "
                                   "(cas or saml)", name=unknown[0][:40]))
    problems = release_problems(code, entry, lists)
    if problems:
        raise ValidationError(problems[0], problems=problems)
    if "cas" in lists:
        entry["cas_attributes"] = attribute_release.normalised(lists["cas"])
    if "saml" in lists:
        entry["saml_sp"] = {**entry["saml_sp"],
                            "attributes": attribute_release.normalised(lists["saml"])}
    _apply(gateway, entry, record)
    return release_of(get_system(gateway.services.engine, code))
