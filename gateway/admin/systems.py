"""The systems behind the proxy: registered and changed through the state file's
``systems`` section (``gateway.statefile``), so that the console, the API and
``govgate apply`` validate every field the same way. A change keeps every field it
does not name (TLS, CAS services, the header allow-list) as stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gateway.clock import utcnow
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.idp import attribute_release
from gateway.idp.cas import services as cas_services
from gateway.idp.saml import encryption
from gateway.idp.saml import sps as saml_sps
from gateway.root import Gateway
from gateway.statefile import system_entry
from gateway.tables import systems
from texts import Text

ChangeHook = Callable[[str, dict[str, Any]], None]
# what the console and the API set; the rest (tls, cas_services, forward_headers, ...)
# only the state file does (a TLS key file is read from the gateway's disk), but for
# the release lists (``set_release``) and the sign-on (``set_sign_on``). ``launch_url``
# "" removes it (the launcher's own rule again)
EDITABLE = ("name", "department", "upstream", "portal_path", "identity_headers",
            "remote_user", "assertion", "launch_url")


def _editable(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` without an empty ``launch_url`` (the state file's "absent")."""
    return {k: v for k, v in entry.items() if not (k == "launch_url" and v == "")}


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
    _apply(gateway, _editable({k: v for k, v in entry.items()
                               if k == "code" or k in EDITABLE}), record)
    return get_system(gateway.services.engine, code)


def update_system(gateway: Gateway, code: str, changes: Mapping[str, Any],
                  record: ChangeHook | None = None) -> dict[str, Any]:
    entry = get_system(gateway.services.engine, code)
    for key in EDITABLE:
        if key in changes:
            entry[key] = changes[key]
    _apply(gateway, _editable(entry), record)
    return get_system(gateway.services.engine, code)


# -- what a system's CAS services and SAML SP receive (gateway.idp.attribute_release) --

PROTOCOLS = ("cas", "saml", "forward_auth")
# the names each list may hold: forward-auth's answer carries department and roles always
ALLOWED = {"cas": attribute_release.ATTRIBUTES, "saml": attribute_release.ATTRIBUTES,
           "forward_auth": attribute_release.FORWARD_AUTH}


def release_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A system's release lists: ``cas`` (None: it has no CAS services), ``saml``
    (None: it registers no SAML SP), each [] for the identifier alone; ``forward_auth``
    (what forward-auth's 200 adds to the identity it always carries: any system may sit
    behind a front proxy, so never None); and the names one may list."""
    sp = entry.get("saml_sp")
    return {"cas": list(entry.get("cas_attributes") or []) if entry.get("cas_services")
            else None,
            "saml": list(sp.get("attributes") or []) if isinstance(sp, Mapping) else None,
            "forward_auth": list(entry.get("forward_auth_attributes") or []),
            "attributes": list(attribute_release.ATTRIBUTES),
            "forward_auth_attributes": list(attribute_release.FORWARD_AUTH)}


def release_problems(code: str, entry: Mapping[str, Any],
                     lists: Mapping[str, Any]) -> list[str]:
    """What is wrong with new release lists for the system ``entry`` (both languages:
    the CLI, the API and the console say it to a person)."""
    out: list[str] = []  # each a Text (its key for the other language)
    for protocol, value in lists.items():
        known = ", ".join(ALLOWED.get(protocol, attribute_release.ATTRIBUTES))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            out.append(Text("admin.release_list", "{protocol}: a list of attribute names "
                            "({known})", protocol=protocol, known=known))
            continue
        for name in value:
            if protocol == "forward_auth" and name in attribute_release.ATTRIBUTES \
                    and name not in attribute_release.FORWARD_AUTH:
                out.append(Text("admin.release_always", "{protocol}: {name!r} is in every "
                                "forward-auth answer already (one of {known})",
                                protocol=protocol, name=name, known=known))
            elif name not in ALLOWED.get(protocol, attribute_release.ATTRIBUTES):
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
                                   "(cas, saml or forward_auth)", name=unknown[0][:40]))
    problems = release_problems(code, entry, lists)
    if problems:
        raise ValidationError(problems[0], problems=problems)
    if "cas" in lists:
        entry["cas_attributes"] = attribute_release.normalised(lists["cas"])
    if "saml" in lists:
        entry["saml_sp"] = {**entry["saml_sp"],
                            "attributes": attribute_release.normalised(lists["saml"])}
    if "forward_auth" in lists:
        entry["forward_auth_attributes"] = attribute_release.normalised(
            lists["forward_auth"])
    _apply(gateway, entry, record)
    return release_of(get_system(gateway.services.engine, code))


# -- how a system's users sign on to it: its CAS service addresses, its SAML SP -------

SIGN_ON_FIELDS = ("cas_services", "cas_services_add", "cas_services_remove", "saml_metadata",
                  "saml_name_id", "saml_release_username", "saml_encryption")
ONE_BY_ONE = ("cas_services_add", "cas_services_remove")
#: saml_encryption as the sign-on API, the CLI and the console say it: as the SP's
#: metadata says, or saml_sp.encrypt_assertions true or false
ENCRYPTIONS = {"metadata": None, "always": True, "never": False}


def _encryption_name(setting: Any) -> str:
    return next(k for k, v in ENCRYPTIONS.items() if v is (
        setting if isinstance(setting, bool) else None))


def _one_by_one(code: str, entry: Mapping[str, Any], changes: Mapping[str, Any]
                ) -> tuple[dict[str, Any], list[str]]:
    """``changes`` with ``cas_services_add``/``cas_services_remove`` turned into the
    whole list (``cas_services``) they make of the stored one, so an operator adds or
    removes one address without sending the others (and without undoing another's
    change made meanwhile to the rest); the problems of those two fields."""
    if not set(ONE_BY_ONE) & set(changes):
        return dict(changes), []
    out: list[str] = []
    if "cas_services" in changes:
        out.append(Text("admin.cas_whole_or_one", "cas_services (the whole list) or "
                        "cas_services_add/cas_services_remove, not both"))
    lists: dict[str, list[str]] = {}
    for key in ONE_BY_ONE:
        value = changes.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            out.append(Text("admin.field_list", "{field} must be a list of texts",
                            field=key))
            value = []
        lists[key] = [v.strip() for v in value if v.strip()]
    current = list(entry.get("cas_services") or [])
    for address in lists["cas_services_remove"]:
        if address not in current:
            out.append(Text("admin.cas_not_registered", "{address!r} is not one of system "
                            "{code!r}'s CAS service addresses", address=address[:100],
                            code=code))
    for address in lists["cas_services_add"]:
        if address in current:
            out.append(Text("admin.cas_registered", "{address!r} is already one of system "
                            "{code!r}'s CAS service addresses", address=address[:100],
                            code=code))
    kept = [a for a in current if a not in lists["cas_services_remove"]]
    added = [a for a in dict.fromkeys(lists["cas_services_add"]) if a not in current]
    rest = {k: v for k, v in changes.items() if k not in ONE_BY_ONE}
    return {**rest, "cas_services": kept + added}, out


def sign_on_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A system's CAS service addresses ([]: it speaks no CAS) and its SAML SP (None:
    it registers none): the entity ID its metadata names, the NameID format, whether
    its assertions are encrypted (``encryption`` the setting, ``encrypted`` what it
    comes to with the metadata) and the metadata itself."""
    sp = entry.get("saml_sp")
    saml = None
    if isinstance(sp, Mapping) and isinstance(sp.get("metadata"), str):
        setting = sp.get("encrypt_assertions")
        try:
            keys = saml_sps.parse_metadata(sp["metadata"]).encryption_keys
        except ValueError:
            keys = ()
        saml = {"entity_id": saml_sps.entity_id_of({"metadata": sp["metadata"]}),
                "name_id": str(sp.get("name_id", "persistent")),
                "release_username": bool(sp.get("release_username", False)),
                "encryption": _encryption_name(setting),
                "encrypted": encryption.wanted(
                    keys, setting if isinstance(setting, bool) else None),
                "metadata": sp["metadata"]}
    return {"cas_services": list(entry.get("cas_services") or []), "saml": saml,
            "name_ids": list(saml_sps.NAME_IDS), "encryptions": list(ENCRYPTIONS)}


def sign_on_problems(code: str, entry: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``changes`` to the system ``entry``'s sign-on (each a Text:
    the CLI, the API and the console say it in the reader's language)."""
    out: list[str] = []
    unknown = sorted(set(changes) - set(SIGN_ON_FIELDS))
    if unknown:
        out.append(Text("admin.sign_on_field", "unknown field {name!r} (one of {known})",
                        name=unknown[0][:40], known=", ".join(SIGN_ON_FIELDS)))
    services = changes.get("cas_services")
    if "cas_services" in changes and services != []:
        out.extend(cas_services.list_problems(services))
    metadata = changes.get("saml_metadata")
    if metadata is not None and not isinstance(metadata, str):
        out.append(Text("admin.saml_metadata_text", "saml_metadata: the metadata's XML text"))
    elif metadata:
        try:
            saml_sps.parse_metadata(metadata)
        except ValueError as exc:
            out.append(Text("admin.saml_metadata_bad",
                            "the SAML metadata cannot be used: {reason}",
                            reason=str(exc)[:300]))
    name_id = changes.get("saml_name_id")
    no_sp = metadata == "" or (metadata is None and not entry.get("saml_sp"))
    if "saml_name_id" in changes and name_id not in saml_sps.NAME_IDS:
        out.append(Text("admin.saml_name_id", "saml_name_id must be persistent or transient"))
    elif name_id is not None and no_sp:
        out.append(Text("admin.saml_name_id_alone", "system {code!r} registers no SAML "
                        "service provider: give its metadata with the NameID format",
                        code=code))
    username = changes.get("saml_release_username")
    if "saml_release_username" in changes and not isinstance(username, bool):
        out.append(Text("field.bool", "{field} must be true or false",
                        field="saml_release_username"))
    elif username is not None and no_sp:
        out.append(Text("admin.saml_username_alone", "system {code!r} registers no SAML "
                        "service provider: give its metadata with the username's release",
                        code=code))
    wanted = changes.get("saml_encryption")
    if "saml_encryption" in changes and wanted not in ENCRYPTIONS:
        out.append(Text("admin.saml_encryption", "saml_encryption must be metadata, always "
                        "or never"))
    elif wanted is not None and no_sp:
        out.append(Text("admin.saml_encryption_alone", "system {code!r} registers no SAML "
                        "service provider: give its metadata with saml_encryption",
                        code=code))
    elif not out and not no_sp and (
            "saml_metadata" in changes or "saml_encryption" in changes):
        # a change that leaves the SP's metadata and setting as registered is not
        # refused for a key that expired since (as the state file's unchanged entry)
        out.extend(_encryption_problems(entry, changes))
    return out


def _encryption_problems(entry: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    """Whether the SP's assertions can be encrypted as the changed sign-on asks."""
    sp = entry.get("saml_sp") or {}
    xml = changes.get("saml_metadata") or sp.get("metadata")
    setting = (ENCRYPTIONS[changes["saml_encryption"]] if "saml_encryption" in changes
               else sp.get("encrypt_assertions"))
    if not isinstance(xml, str):
        return []
    try:
        meta = saml_sps.parse_metadata(xml)
    except ValueError:
        return []
    problem = saml_sps.encryption_problem(
        meta, setting if isinstance(setting, bool) else None, utcnow())
    return [Text("admin.saml_encryption_bad", "the SP's assertions cannot be encrypted: "
                 "{reason}", reason=problem[:300])] if problem else []


def set_sign_on(gateway: Gateway, code: str, changes: Mapping[str, Any],
                record: ChangeHook | None = None) -> dict[str, Any]:
    """Set what ``changes`` names: ``cas_services`` (the addresses that may receive a
    CAS ticket; [] removes CAS, and with it the CAS release list), or instead
    ``cas_services_add``/``cas_services_remove`` (addresses added to or removed from
    the stored list; removing the last removes CAS), ``saml_metadata``
    (the SP's metadata XML; "" removes the SP), ``saml_name_id`` (persistent or
    transient), ``saml_release_username`` (true: its assertions also carry ``uid``, the
    username; the state file's ``saml_sp.release_username``), ``saml_encryption``
    (metadata, always or never: see ``ENCRYPTIONS``). Applied as the system's state-file
    entry, so the state file's own checks (an address or an entity ID another system
    registers) hold too."""
    entry = get_system(gateway.services.engine, code)
    if not changes:
        raise ValidationError(Text("admin.sign_on_empty", "name cas_services, "
                                   "saml_metadata, saml_name_id, saml_release_username "
                                   "or saml_encryption"))
    changes, problems = _one_by_one(code, entry, changes)
    problems = problems or sign_on_problems(code, entry, changes)
    if problems:
        raise ValidationError(problems[0], problems=problems)
    if "cas_services" in changes:
        if changes["cas_services"]:
            entry["cas_services"] = list(changes["cas_services"])
        else:
            entry.pop("cas_services", None)
            entry.pop("cas_attributes", None)
    if changes.get("saml_metadata") == "":
        entry.pop("saml_sp", None)
    elif {"saml_metadata", "saml_name_id", "saml_release_username",
          "saml_encryption"} & set(changes):
        sp = {k: v for k, v in dict(entry.get("saml_sp") or {}).items()
              if k != "metadata_file"}
        if changes.get("saml_metadata"):
            sp["metadata"] = changes["saml_metadata"]
        if changes.get("saml_name_id"):
            sp["name_id"] = changes["saml_name_id"]
        if "saml_release_username" in changes:
            sp["release_username"] = changes["saml_release_username"]
        if changes.get("saml_encryption"):
            sp.pop("encrypt_assertions", None)
            if (setting := ENCRYPTIONS[changes["saml_encryption"]]) is not None:
                sp["encrypt_assertions"] = setting
        entry["saml_sp"] = sp
    _apply(gateway, entry, record)
    return sign_on_of(get_system(gateway.services.engine, code))
