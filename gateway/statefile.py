"""The declarative state file: ``govgate apply -f FILE.yaml`` and ``govgate export``.

Apply is a pure validation, then a plan (what differs from the database), then
one transaction. Every problem in the file is reported at once, with its place
(section, index and line); when any exists nothing is written. Applying the same
file twice plans nothing the second time.

Passwords in the file are initial passwords: they are set when the user is
created and never overwrite a password the user has since changed. Client
secrets are operator-managed: a changed secret in the file replaces the stored
hash. Objects absent from the file are left alone (apply never deletes).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Engine

from gateway import passwords
from gateway.clock import Clock, utcnow
from gateway.errors import StateFileError
from gateway.idp import attribute_release
from gateway.idp.cas import services as cas_services
from gateway.idp.oauth2.oidc import ID_TOKEN_ALGS
from gateway.idp.oauth2.rfc8693 import exchange_problems, exported_grant_types, stored_grant_types
from gateway.idp.saml import sps as saml_sps
from gateway.limits import org_too_long
from gateway.org import (
    CODE_RE,
    USERNAME_RE,
    insert_user,
    replace_roles,
    role_problems,
    users_changed,
)
from gateway.proxy import upstream_tls
from gateway.proxy.assertion import PER_REQUEST, REUSE_MODES
from gateway.proxy.headers import forward_header_problems, normalise_forward_headers
from gateway.proxy.identity_headers import ASSERTION
from gateway.proxy.identity_headers import MODES as IDENTITY_MODES
from gateway.storage import write_transaction
from gateway.tables import clients, departments, regions, systems, user_roles, users
from statedoc import Change, load_yaml, read_bounded
from texts import Text, os_reason
from texts import where as placed

MAX_BYTES = 1024 * 1024
MIN_CLIENT_SECRET = 24
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
USER_SOURCES = ("local", "directory")
# a fixed credential at /s/ (gateway.proxy.static_credentials)
STATIC_CREDENTIALS = ("off", "basic", "api_key")
AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post", "private_key_jwt", "none"})

SECTIONS: dict[str, tuple[set[str], set[str]]] = {
    # section: (required keys, optional keys)
    "regions": ({"code", "name"}, {"parent"}),
    "departments": ({"code", "name", "region"}, {"parent"}),
    "users": (
        {"username", "name", "department"},
        {"roles", "password", "must_change", "status", "email", "email_verified",
         "phone_number", "phone_number_verified", "source"},
    ),
    "systems": ({"code", "name", "department", "upstream"},
                {"portal_path", "forward_headers", "case_sensitive_paths",
                 "identity_headers", "remote_user", "tls", "cas_services", "cas_attributes",
                 "saml_sp",
                 "identity_over_tls_only", "assertion", "launch_url",
                 "forward_auth_attributes"}),
    "clients": (
        {"client_id", "name", "department", "grant_types"},
        {
            "secret",
            "jwks",
            "redirect_uris",
            "post_logout_redirect_uris",
            "scope",
            "token_endpoint_auth_method",
            "backchannel_logout_uri",
            "status",
            "token_exchange",
            "system",
            "require_pkce",
            "dpop_bound",
            "lenient_assertion_audience",
            "static_credential",
            "id_token_signed_response_alg",
            "consent_required",
        },
    ),
}
KEY_FIELD = {
    "regions": "code",
    "departments": "code",
    "users": "username",
    "systems": "code",
    "clients": "client_id",
}


class SectionHandler(Protocol):
    """A state-file section owned by another package (policies, catalogue, ...).

    ``validate`` is pure apart from reading ``conn``; ``apply`` plans (and with
    ``write`` performs) the changes inside the apply transaction; ``export``
    returns the section's entries for ``govgate export``.
    """

    name: str
    order: int  # sections apply in ascending order after the built-in ones

    def validate(
        self, entries: list[Any], doc: Mapping[str, Any], conn: Connection
    ) -> list[str]: ...

    def apply(self, conn: Connection, entries: list[Any], write: bool) -> list[Change]: ...

    def export(self, conn: Connection) -> list[dict[str, Any]]: ...


SecretHasher = Callable[[str], str]
SecretVerifier = Callable[[str, str], bool]


# ---------------------------------------------------------------------------
# reading


def load_text(text: str, source: str = "<state>") -> dict[str, Any]:
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise StateFileError(Text("state.too_large", "{path}: larger than {n} bytes",
                                  path=source, n=MAX_BYTES))
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise StateFileError(placed(source, Text(
            "field.not_yaml", "not valid YAML: {detail}",
            detail=str(exc).replace("\n", " ")))) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise StateFileError(placed(source, Text("state.top_level",
                                                 "the top level must be a mapping of sections")))
    return doc


def load_file(path: str | Path) -> dict[str, Any]:
    try:
        data = read_bounded(path, MAX_BYTES)
    except OSError as exc:  # missing, a directory, unreadable, a name too long
        raise StateFileError(placed(str(path), os_reason(exc))) from None
    if data is None:
        raise StateFileError(Text("state.too_large", "{path}: larger than {n} bytes",
                                  path=path, n=MAX_BYTES))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StateFileError(Text("field.not_utf8", "{path}: not UTF-8 text", path=path)) from None
    return load_text(text, str(path))


# ---------------------------------------------------------------------------
# validation (pure: the database only supplies the codes that already exist)


def nul_problems(doc: Any, at: str = "") -> list[str]:
    """A problem for each text of ``doc`` that holds a NUL: PostgreSQL stores none (a
    write of one fails), and no name or text of govgate has one. A document read from
    YAML has none (``statedoc``); one built by a program may."""
    if isinstance(doc, str):
        return [placed(at or "<state>", Text("state.nul", "a NUL character"))] \
            if "\x00" in doc else []
    if isinstance(doc, Mapping):
        return [p for k, v in doc.items() for p in nul_problems(k, at) + nul_problems(
            v, f"{at}.{k}" if at else str(k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in nul_problems(v, f"{at}[{i}]")]
    return []


@dataclass
class Known:
    """What already exists in the database, for reference checks."""

    regions: set[str] = field(default_factory=set)
    departments: dict[str, str] = field(default_factory=dict)  # code -> region
    clients: set[str] = field(default_factory=set)
    # client id -> (system, department) as stored: a pairing the file leaves as it is
    client_systems: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    saml_entities: dict[str, str] = field(default_factory=dict)  # SP entity ID -> system
    # system -> its stored saml_sp: an entry the file leaves as it is keeps what was
    # accepted when it was registered
    saml_sps: dict[str, dict[str, Any]] = field(default_factory=dict)
    cas_services: dict[str, list[str]] = field(default_factory=dict)  # system -> patterns
    systems: dict[str, str] = field(default_factory=dict)  # code -> department


def _where(section: str, index: int, entry: Any) -> str:
    line = getattr(entry, "line", 0)
    at = f"{section}[{index}]"
    return Text("at_line", "{where} (line {line})", where=at, line=line) if line else at


def _check_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return Text("state.url_string", "must be a URL string")
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[" (an IPv6 literal left open) is no URL at all
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Text("state.url_scheme", "bad URL {url!r} (needs http:// or https:// and a host)",
                    url=value)
    try:
        _ = parts.port
    except ValueError:
        return Text("state.url_port", "bad URL {url!r} (bad port)", url=value)
    if parts.username or parts.password:
        return Text("state.url_credentials", "bad URL {url!r} (no credentials in URLs)", url=value)
    return None


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+\Z")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,30}\Z")



def _contact(e: Mapping[str, Any]) -> dict[str, Any]:
    """A user entry's OpenID Connect contact columns (absent: none, not verified)."""
    return {"email": e.get("email") or None, "email_verified": bool(e.get("email_verified")),
            "phone_number": e.get("phone_number") or None,
            "phone_number_verified": bool(e.get("phone_number_verified"))}


def contact_problems(e: Mapping[str, Any]) -> list[str]:
    problems = []
    email, phone = e.get("email"), e.get("phone_number")
    if email is not None and (not isinstance(email, str) or len(email) > 254
                              or not _EMAIL.match(email)):
        problems.append("email must be an address like name@example.gov.cn")
    if phone is not None and (not isinstance(phone, str) or not _PHONE.match(phone)):
        problems.append("phone_number must be digits, optionally +, spaces and dashes "
                        "(e.g. +86 771 1234567)")
    for flag in ("email_verified", "phone_number_verified"):
        if flag in e and not isinstance(e[flag], bool):
            problems.append(f"{flag} must be true or false")
    return problems


def _uri_list(e: Mapping[str, Any], key: str, where: str, problems: list[str]) -> list[Any]:
    """The client's URI list under ``key`` (redirect or post-logout URIs), each checked
    as a redirect URI; its problems go to ``problems``."""
    uris = e.get(key, [])
    if not isinstance(uris, list):
        problems.append(placed(where, Text("state.field_list", "{field} must be a list",
                                           field=key)))
        return []
    for uri in uris:
        p = _check_redirect_uri(uri)
        if long := org_too_long(key[:-1], uri):
            problems.append(placed(where, long))
        elif p:
            problems.append(placed(where, placed(key, p)))
    return uris


def _check_redirect_uri(value: Any) -> str | None:
    problem = _check_url(value)
    if problem:
        return problem
    parts = urlsplit(value)
    if parts.fragment:
        return Text("state.redirect_fragment", "bad redirect URI {url!r} (no fragment allowed)",
                    url=value)
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        return Text("state.redirect_http",
                    "bad redirect URI {url!r} (http only for loopback; use https)", url=value)
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate(
    doc: Mapping[str, Any], known: Known | None = None, extra_sections: Iterable[str] = ()
) -> list[str]:
    """Every problem in ``doc``, each with its place. Empty means valid."""
    known = known or Known()
    problems: list[str] = []
    allowed = set(SECTIONS) | set(extra_sections)
    for section in doc:
        if section not in allowed:
            line = getattr(doc, "line", 0)
            known_names = ", ".join(sorted(allowed))
            problems.append(
                Text("state.unknown_section_line",
                     "unknown section {section!r} (line {line}); known: {known}",
                     section=section, line=line, known=known_names) if line else
                Text("state.unknown_section", "unknown section {section!r}; known: {known}",
                     section=section, known=known_names))
    entries: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for section, (required, optional) in SECTIONS.items():
        raw = doc.get(section)
        if raw is None:
            entries[section] = []
            continue
        if not isinstance(raw, list):
            problems.append(placed(section, Text("field.list", "must be a list")))
            entries[section] = []
            continue
        seen: dict[str, int] = {}
        good: list[tuple[int, Mapping[str, Any]]] = []
        for i, entry in enumerate(raw):
            where = _where(section, i, entry)
            if not isinstance(entry, dict):
                problems.append(placed(where, Text("field.mapping", "must be a mapping")))
                continue
            unknown = sorted(set(entry) - required - optional)
            for key in unknown:
                problems.append(placed(where, Text("field.unknown_key",
                                                   "unknown key {key!r}", key=key)))
            missing = sorted(required - set(entry))
            for key in missing:
                problems.append(placed(where, Text("field.missing_key",
                                                   "missing key {key!r}", key=key)))
            # stored as text: a list or a mapping would fail in the database, a number
            # would be stored as its digits without anyone having meant it
            if "name" in entry and not (
                isinstance(entry["name"], str) and entry["name"].strip()
            ):
                problems.append(placed(where, Text("field.non_empty",
                                                   "{field} must be a non-empty string",
                                                    field="name")))
            elif long := org_too_long("name", entry.get("name")):
                problems.append(placed(where, long))
            key_value = entry.get(KEY_FIELD[section])
            if key_value is not None:
                key_value = str(key_value)
                if key_value in seen:
                    problems.append(placed(where, Text(
                        "state.duplicate", "duplicate {field} {value!r} (first at {first})",
                        field=KEY_FIELD[section], value=key_value,
                        first=f"{section}[{seen[key_value]}]")))
                else:
                    seen[key_value] = i
            if not missing:
                good.append((i, entry))
        entries[section] = good

    file_regions = {str(e["code"]): e for _, e in entries["regions"]}
    region_codes = known.regions | set(file_regions)
    for i, e in entries["regions"]:
        where = _where("regions", i, e)
        if not CODE_RE.match(str(e["code"])):
            problems.append(placed(where, Text("field.bad_code",
                                               "bad code {code!r}", code=e["code"])))
        if e.get("parent") is not None and str(e["parent"]) not in region_codes:
            problems.append(placed(where, Text("org.unknown_parent_region",
                                                    "unknown parent region {code!r}",
                                                    code=e["parent"])))
    problems.extend(_cycles("regions", file_regions))

    dept_region = dict(known.departments)
    file_depts = {str(e["code"]): e for _, e in entries["departments"]}
    dept_region.update({c: str(e["region"]) for c, e in file_depts.items()})
    for i, e in entries["departments"]:
        where = _where("departments", i, e)
        if not CODE_RE.match(str(e["code"])):
            problems.append(placed(where, Text("field.bad_code",
                                               "bad code {code!r}", code=e["code"])))
        if str(e["region"]) not in region_codes:
            problems.append(placed(where, Text("org.unknown_region", "unknown region {code!r}",
                                                    code=e["region"])))
        parent = e.get("parent")
        if parent is not None:
            if str(parent) not in dept_region:
                problems.append(placed(where, Text("org.unknown_parent_department",
                                                        "unknown parent department {code!r}",
                                                        code=parent)))
            elif dept_region[str(parent)] != str(e["region"]):
                problems.append(placed(where, Text(
                    "org.parent_other_region",
                    "parent department {code!r} is in another region", code=parent)))
    problems.extend(_cycles("departments", file_depts))

    for i, e in entries["users"]:
        where = _where("users", i, e)
        username = str(e["username"])
        if not USERNAME_RE.match(username):
            problems.append(placed(where, Text("org.bad_username", "bad username {username!r}",
                                                    username=username)))
        if str(e["department"]) not in dept_region:
            problems.append(placed(where, Text("org.unknown_department",
                                                    "unknown department {code!r}",
                                                    code=e["department"])))
        roles = e.get("roles", ["staff"])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            problems.append(placed(where, Text("state.roles",
                                               "roles must be a list of role names")))
        else:
            problems.extend(placed(where, p) for p in role_problems(roles))
        if "password" in e:
            if not isinstance(e["password"], str):
                problems.append(placed(where, Text("field.string", "{field} must be a string",
                                                        field="password")))
            else:
                problems.extend(
                    placed(where, p) for p in passwords.policy_problems(e["password"], username)
                )
        if "must_change" in e and not isinstance(e["must_change"], bool):
            problems.append(placed(where, Text("field.bool", "{field} must be true or false",
                                                    field="must_change")))
        if e.get("status", "active") not in ("active", "disabled"):
            problems.append(placed(where, Text("state.status",
                                               "status must be active or disabled")))
        problems.extend(placed(where, p) for p in contact_problems(e))
        problems.extend(placed(where, p) for p in _source_problems(e))

    for i, e in entries["systems"]:
        where = _where("systems", i, e)
        if not CODE_RE.match(str(e["code"])):
            problems.append(placed(where, Text("field.bad_code",
                                               "bad code {code!r}", code=e["code"])))
        if str(e["department"]) not in dept_region:
            problems.append(placed(where, Text("org.unknown_department",
                                                    "unknown department {code!r}",
                                                    code=e["department"])))
        url_problem = _check_url(e["upstream"])
        if long := org_too_long("upstream", e["upstream"]):
            problems.append(placed(where, long))
        elif url_problem:
            problems.append(placed(where, placed("upstream", url_problem)))
        portal_path = e.get("portal_path", "/")
        if not isinstance(portal_path, str) or not portal_path.startswith("/"):
            problems.append(placed(where, Text("state.portal_path",
                                               "portal_path must start with /")))
        elif long := org_too_long("portal_path", portal_path):
            problems.append(placed(where, long))
        if e.get("forward_headers") is not None:
            problems.extend(placed(where, p) for p in forward_header_problems(
                e["forward_headers"]))
        if "tls" in e:
            # a certificate without its key_file may keep the stored key: checked on apply
            problems.extend(placed(where, p) for p in upstream_tls.problems(
                e["tls"], has_stored_key=True))
            if str(e.get("upstream", "")).startswith("http:"):
                problems.append(placed(where, Text("state.tls_https",
                                                   "tls needs an https upstream")))
        for flag in ("case_sensitive_paths", "remote_user", "identity_over_tls_only"):
            if not isinstance(e.get(flag, False), bool):
                problems.append(placed(where, Text("field.bool", "{field} must be true or false",
                                                   field=flag)))
        if e.get("assertion", PER_REQUEST) not in REUSE_MODES:
            problems.append(placed(where, Text(
                "state.assertion_reuse", "assertion must be one of {modes}",
                modes=", ".join(REUSE_MODES))))
        if e.get("identity_headers", ASSERTION) not in IDENTITY_MODES:
            problems.append(placed(where, Text(
                "state.identity_headers", "identity_headers must be one of {modes}",
                modes=", ".join(IDENTITY_MODES))))
        if e.get("cas_services") is not None:
            problems.extend(placed(where, p) for p in cas_services.list_problems(
                e["cas_services"]))
        if e.get("cas_attributes") is not None:
            problems.extend(placed(where, p) for p in attribute_release.problems(
                e["cas_attributes"], "cas_attributes"))
            if not e.get("cas_services") and e["cas_attributes"]:
                problems.append(placed(where, "cas_attributes: only with cas_services"))
        if e.get("saml_sp") is not None:
            problems.extend(placed(where, p) for p in saml_sps.problems(
                e["saml_sp"], registered=known.saml_sps.get(str(e["code"]))))
        if e.get("forward_auth_attributes") is not None:
            problems.extend(placed(where, p) for p in attribute_release.problems(
                e["forward_auth_attributes"], "forward_auth_attributes",
                attribute_release.FORWARD_AUTH))
        if e.get("launch_url") is not None \
                and (bad := cas_services.url_problem(e["launch_url"])):
            # the rule of a CAS service address: https, http only on a loopback host,
            # no javascript: or data: (the launcher's link is a plain <a href>)
            problems.append(placed(where, placed("launch_url", bad)))

    problems.extend(_cas_services_taken(entries["systems"], known))
    problems.extend(_saml_entity_twice(entries["systems"], known.saml_entities))

    # the systems as they will be: the file's over the stored ones
    owners = {**known.systems, **{str(e["code"]): str(e["department"])
                                  for _, e in entries["systems"]}}
    for i, e in entries["clients"]:
        where = _where("clients", i, e)
        problems.extend(
            _client_problems(where, e, dept_region, str(e["client_id"]) in known.clients)
        )
        if not _as_stored(e, known, owners):
            problems.extend(placed(where, p) for p in _foreign_system(e, owners))
    return problems


def _as_stored(e: Mapping[str, Any], known: Known, owners: Mapping[str, str]) -> bool:
    """The client's system, department and the system's owner all as stored: a pairing
    from before the check (or left by a system moved since), ignored at run time, that
    this file does not make. Refusing it would refuse the export applied again and
    every change of the client through the CLI, console or API (they apply its entry)."""
    system = e.get("system")
    stored = known.client_systems.get(str(e["client_id"]))
    return (isinstance(system, str) and stored == (system, str(e["department"]))
            and owners.get(system) == known.systems.get(system))


def _foreign_system(e: Mapping[str, Any], owners: Mapping[str, str]) -> list[str]:
    """A client's ``system`` must be its own department's: a system is the department's
    that runs it, and 委托 names a client's system as where A is acted for (the
    identity provider ignores another department's at run time,
    gateway.idp.oauth2.clients; a file saying so is a mistake to be told of)."""
    system, department = e.get("system"), str(e["department"])
    owner = owners.get(system) if isinstance(system, str) else None
    if owner is None or owner == department:
        return []
    return [Text("state.client_foreign_system",
                 "client {client!r} of department {department!r} names system {system!r}, "
                 "which is department {owner!r}'s: a client signs people in to its own "
                 "department's systems only", client=str(e["client_id"]),
                 department=department, system=system, owner=owner)]


def _source_problems(e: Mapping[str, Any]) -> list[str]:
    """A user's ``source``: local, or directory (whose password only the directory
    holds, gateway.directory)."""
    if e.get("source", "local") not in USER_SOURCES:
        return [Text("state.source", "source must be local or directory")]
    if e.get("source") == "directory" and "password" in e:
        return [Text("state.directory_password",
                     "a directory user has no password in the gateway")]
    return []


def _cas_services_taken(entries: list[tuple[int, Mapping[str, Any]]],
                        known: Known) -> list[str]:
    """One CAS address, one system: in the file, and against the systems stored (the
    admin API and ``govgate system sign-on`` apply one system at a time). Which of two
    systems a pattern inside another's belongs to is the longest's (docs/sso.md); a
    department's admin may not nest one in another department's
    (``SysAdmin.set_sign_on``)."""
    in_file = {str(e["code"]) for _, e in entries}
    registered_by = {str(p): code for code, patterns in known.cas_services.items()
                     if code not in in_file for p in patterns}
    problems: list[str] = []
    for i, e in entries:
        code = str(e["code"])
        listed = e.get("cas_services")
        for pattern in listed if isinstance(listed, list) else []:
            other = registered_by.setdefault(str(pattern), code)
            if other != code:
                problems.append(placed(_where("systems", i, e), Text(
                    "state.cas_service_twice",
                    "cas_services {pattern!r} is registered by system {other!r} too",
                    pattern=str(pattern)[:100], other=other)))
    return problems


def _saml_entity_twice(entries: list[tuple[int, Mapping[str, Any]]],
                       stored: Mapping[str, str]) -> list[str]:
    """One SP entity ID, one system: in the file, and against the other systems stored."""
    problems: list[str] = []
    in_file = {str(e["code"]) for _, e in entries}
    registered_by = {k: v for k, v in stored.items() if v not in in_file}
    for i, e in entries:
        if not e.get("saml_sp"):
            continue
        entity = saml_sps.entity_id_of(e["saml_sp"])
        if entity is None:
            continue
        other = registered_by.setdefault(entity, str(e["code"]))
        if other != str(e["code"]):
            problems.append(placed(_where("systems", i, e), Text(
                "state.saml_sp_twice",
                "saml_sp entity ID {entity!r} is registered by system {other!r} too",
                entity=entity[:200], other=other)))
    return problems


def _client_problems(
    where: str, e: Mapping[str, Any], dept_region: Mapping[str, str], exists: bool
) -> list[str]:
    problems: list[str] = []
    cid = str(e["client_id"])
    if not CODE_RE.match(cid):
        problems.append(placed(where, Text("state.bad_client_id",
                                           "bad client_id {client!r}", client=cid)))
    if str(e["department"]) not in dept_region:
        problems.append(placed(where, Text("org.unknown_department",
                                                    "unknown department {code!r}",
                                                    code=e["department"])))
    system = e.get("system")
    if system is not None and not (isinstance(system, str) and CODE_RE.match(system)):
        problems.append(placed(where, Text("state.client_system",
                                           "a client's system is a system code, not {value!r}",
                                           value=str(system)[:64])))
    grants = e["grant_types"]
    if not isinstance(grants, list) or not grants:
        problems.append(placed(where, Text("field.non_empty_list",
                                           "{field} must be a non-empty list",
                                                field="grant_types")))
        grants = []
    for g in grants:
        if not isinstance(g, str) or g not in GRANT_TYPES:
            problems.append(placed(where, Text("state.grant_type",
                                               "unknown grant type {grant_type!r}",
                                                    grant_type=g)))
    method = e.get("token_endpoint_auth_method") or default_auth_method(e)
    if method not in AUTH_METHODS:
        problems.append(placed(where, Text("state.auth_method",
                                                "unknown token_endpoint_auth_method {method!r}",
                                                method=method)))
    secret = e.get("secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_CLIENT_SECRET):
        problems.append(placed(where, Text(
            "state.weak_secret", "secret too weak (at least {n} random characters)",
            n=MIN_CLIENT_SECRET)))
    # an exported file carries no secrets: an existing client keeps its stored one
    if method in ("client_secret_basic", "client_secret_post") and secret is None and not exists:
        problems.append(placed(where, Text("state.needs_secret",
                                           "{method} needs a secret", method=method)))
    if method == "private_key_jwt" or "jwks" in e:
        jwks = e.get("jwks")
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
            problems.append(placed(where, Text(
                "state.jwks", "jwks must be a JWK set with at least one key")))
        else:
            for k, jwk in enumerate(jwks["keys"]):
                if not isinstance(jwk, dict) or "kty" not in jwk:
                    problems.append(placed(where, Text("state.not_a_jwk",
                                                       "jwks.keys[{n}] is not a JWK",
                                                            n=k)))
                elif any(p in jwk for p in ("d", "p", "q", "dp", "dq", "qi", "k")):
                    problems.append(placed(where, Text(
                        "state.private_jwk", "jwks.keys[{n}] holds private key material", n=k)))
    redirects = _uri_list(e, "redirect_uris", where, problems)
    _uri_list(e, "post_logout_redirect_uris", where, problems)
    if "authorization_code" in grants and not redirects:
        problems.append(placed(where, Text("state.code_needs_redirect",
                                                "authorization_code needs redirect_uris")))
    if "client_credentials" in grants and method == "none":
        problems.append(placed(where, Text(
            "state.credentials_need_auth", "client_credentials needs an authenticated client")))
    problems.extend(placed(where, p) for p in exchange_problems(e, method))
    if not isinstance(e.get("dpop_bound", False), bool):
        problems.append(placed(where, Text("state.dpop_bound",
                                           "dpop_bound must be true or false")))
    if "scope" in e and not isinstance(e["scope"], str):
        problems.append(placed(where, Text("state.scope",
                                                "scope must be text (space-separated scopes)")))
    elif long := org_too_long("scope", e.get("scope")):
        problems.append(placed(where, long))
    bcl = e.get("backchannel_logout_uri")
    if bcl is not None:
        p = _check_url(bcl)
        if long := org_too_long("backchannel_logout_uri", bcl):
            problems.append(placed(where, long))
        elif p:
            problems.append(placed(where, placed("backchannel_logout_uri", p)))
    if e.get("status", "active") not in ("active", "disabled"):
        problems.append(placed(where, Text("state.status", "status must be active or disabled")))
    if "require_pkce" in e and not isinstance(e["require_pkce"], bool):
        problems.append(placed(where, Text("state.require_pkce",
                                           "require_pkce must be true or false")))
    lenient = e.get("lenient_assertion_audience", False)
    if not isinstance(lenient, bool):
        problems.append(placed(where, Text("state.lenient_audience",
                                           "lenient_assertion_audience must be true or false")))
    elif lenient and method != "private_key_jwt":
        # a loosening that means nothing here would wait, unseen, for a later change
        # of method; said only where it acts
        problems.append(placed(where, Text(
            "state.lenient_audience_method",
            "lenient_assertion_audience is for private_key_jwt clients only")))
    static = e.get("static_credential", "off")
    if static not in STATIC_CREDENTIALS:
        problems.append(placed(where, Text(
            "state.static_credential", "static_credential must be off, basic or api_key")))
    elif static != "off" and grants != ["client_credentials"]:
        # a fixed credential stands for the client alone: never for a user's sign-in
        problems.append(placed(where, Text(
            "state.static_credential_grant",
            "static_credential is for clients of the client_credentials grant alone")))
    elif static == "basic" and method not in ("client_secret_basic", "client_secret_post"):
        problems.append(placed(where, Text(
            "state.static_credential_secret",
            "static_credential basic needs a client with a secret (client_secret_basic "
            "or client_secret_post)")))
    if not isinstance(e.get("consent_required", False), bool | None):
        problems.append(placed(where, Text("state.consent_required",
                                           "consent_required must be true, false or null")))
    alg = e.get("id_token_signed_response_alg")
    if alg is not None and alg not in ID_TOKEN_ALGS:
        problems.append(placed(where, Text(
            "state.id_token_alg", "id_token_signed_response_alg must be one of {known}",
            known=", ".join(ID_TOKEN_ALGS))))
    return problems


def default_auth_method(entry: Mapping[str, Any]) -> str:
    if entry.get("token_endpoint_auth_method"):
        return str(entry["token_endpoint_auth_method"])
    if entry.get("secret"):
        return "client_secret_basic"
    if entry.get("jwks"):
        return "private_key_jwt"
    return "none"


def _cycles(section: str, entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    for start in entries:
        seen = {start}
        node = entries[start].get("parent")
        while node is not None and str(node) in entries:
            node = str(node)
            if node in seen:
                problems.append(placed(section, Text("state.own_ancestor",
                                                     "{code!r} is its own ancestor",
                                                     code=start)))
                break
            seen.add(node)
            node = entries[node].get("parent")
    return problems


# ---------------------------------------------------------------------------
# plan and apply


def _named(doc: Mapping[str, Any], section: str, key: str
           ) -> dict[str, tuple[int, Any, str]]:
    """The entries of ``section`` by their ``key`` in lower case: (index, entry, key);
    a key holding NUL is left out (``nul_problems`` refuses it, and PostgreSQL refuses
    to compare it: a crash, not a problem)."""
    raw = doc.get(section)
    return {str(e[key]).lower(): (i, e, str(e[key]))
            for i, e in enumerate(raw if isinstance(raw, list) else [])
            if isinstance(e, dict) and key in e and "\x00" not in str(e[key])}


def name_problems(conn: Connection, doc: Mapping[str, Any]) -> list[str]:
    """A user and a client of one name, compared without case, where either is new.

    A client-credentials token's ``sub`` is its ``client_id`` (RFC 9700 section 4.15):
    a resource server outside the gateway that reads ``sub`` alone, without ``gty``,
    would take the client for the person of that username. A pair that exists already
    (made before this check) is left to its operator, so that their state file still
    applies."""
    file_users = _named(doc, "users", "username")
    file_clients = _named(doc, "clients", "client_id")
    stored_clients = {c.lower(): c for c in
                      conn.scalars(sa.select(clients.c.client_id))}
    # users read by name only: a directory's tens of thousands are not all read again
    asked = (set(file_users) & (set(stored_clients) | set(file_clients))) | set(file_clients)
    stored_users: dict[str, str] = {}
    for chunk in _chunks(sorted(asked), 500):
        stored_users.update((u.lower(), u) for u in conn.scalars(
            sa.select(users.c.username).where(sa.func.lower(users.c.username).in_(chunk))))
    problems: list[str] = []
    for name, (i, e, username) in file_users.items():
        client = stored_clients.get(name) or (file_clients[name][2]
                                              if name in file_clients else None)
        if client is not None and (name not in stored_users or name not in stored_clients):
            problems.append(placed(_where("users", i, e), Text(
                "state.user_is_client", "username {username!r} is the client_id of client "
                "{client!r} (compared without case): a client's token names its client_id "
                "as its subject, and would be taken for this user", username=username,
                client=client)))
    for name, (i, e, cid) in file_clients.items():
        if name in stored_users and name not in file_users and name not in stored_clients:
            problems.append(placed(_where("clients", i, e), Text(
                "state.client_is_user", "client_id {client!r} is the username of user "
                "{username!r} (compared without case): the client's token names its "
                "client_id as its subject, and would be taken for that user",
                client=cid, username=stored_users[name])))
    return problems


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def read_known(conn: Connection) -> Known:
    return Known(
        regions={r.code for r in conn.execute(sa.select(regions.c.code))},
        departments={
            r.code: r.region_code
            for r in conn.execute(sa.select(departments.c.code, departments.c.region_code))
        },
        clients={r.client_id for r in conn.execute(sa.select(clients.c.client_id))},
        client_systems={r.client_id: (r.system, r.department_code) for r in conn.execute(
            sa.select(clients.c.client_id, clients.c.system, clients.c.department_code))},
        systems={r.code: r.department_code for r in conn.execute(
            sa.select(systems.c.code, systems.c.department_code))},
        cas_services={
            r.code: list(r.cas_services)
            for r in conn.execute(sa.select(systems.c.code, systems.c.cas_services)
                                  .where(systems.c.cas_services.is_not(None)))
            if isinstance(r.cas_services, list)
        },
        saml_entities={
            str(r.saml_sp["entity_id"]): r.code
            for r in conn.execute(sa.select(systems.c.code, systems.c.saml_sp)
                                  .where(systems.c.saml_sp.is_not(None)))
            if isinstance(r.saml_sp, dict) and r.saml_sp.get("entity_id")
        },
        saml_sps={
            r.code: dict(r.saml_sp)
            for r in conn.execute(sa.select(systems.c.code, systems.c.saml_sp)
                                  .where(systems.c.saml_sp.is_not(None)))
            if isinstance(r.saml_sp, dict)
        },
    )


class StateApplier:
    """Validates, plans and applies a state document against one database."""

    def __init__(
        self,
        engine: Engine,
        *,
        hash_secret: SecretHasher,
        verify_secret: SecretVerifier,
        clock: Clock = utcnow,
        on_change: Callable[[str, dict[str, Any]], None] | None = None,
        sections: Iterable[SectionHandler] = (),
        seal: Callable[[bytes, str], bytes] | None = None,
        open_: Callable[[bytes, str], bytes] | None = None,
        id_token_algs: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.engine = engine
        # told the ID-token algorithms the applied clients ask for, after the commit:
        # the key ring makes an RS256 key on this first need (keys.ring.ON_DEMAND), so
        # that the JWKS publishes it before the client's first sign-in
        self.id_token_algs = id_token_algs
        self.sections = sorted(sections, key=lambda h: h.order)
        self.hash_secret = hash_secret
        self.verify_secret = verify_secret
        # the key ring's seal and open, for the systems' TLS client keys
        self.seal = seal
        self.open = open_
        self.clock = clock
        self.on_change = on_change or (lambda _e, _d: None)

    def apply(self, doc: Mapping[str, Any], *, dry_run: bool = False) -> list[Change]:
        """Apply ``doc``; returns the changes (planned only, with ``dry_run``)."""

        # validation reads, then the changes write: begin as a writer, or a commit by a
        # running gateway (its audit log) in between fails the apply on SQLite
        with write_transaction(self.engine) as conn:
            problems = validate(doc, read_known(conn), [h.name for h in self.sections])
            problems += nul_problems(doc)
            problems += name_problems(conn, doc)
            for handler in self.sections:
                entries = doc.get(handler.name)
                if entries is None:
                    continue
                if not isinstance(entries, list):
                    problems.append(placed(handler.name, Text("field.list", "must be a list")))
                    continue
                problems.extend(handler.validate(entries, doc, conn))
            if problems:
                raise StateFileError(Text("state.problems", "{n} problem(s) in the state file",
                                          n=len(problems)), problems=problems)
            # a dry run writes too, so that later sections plan against what earlier
            # ones create, and then rolls the whole transaction back
            changes = self._apply(conn, doc, write=True)
            if dry_run:
                conn.rollback()
        if not dry_run and self.id_token_algs is not None:
            asked = {str(e.get("id_token_signed_response_alg"))
                     for e in doc.get("clients") or [] if isinstance(e, Mapping)
                     and e.get("id_token_signed_response_alg")}
            if asked:
                self.id_token_algs(asked)
        if not dry_run:
            for change in changes:
                self.on_change(
                    "state_applied",
                    {
                        "action": change.action,
                        "kind": change.kind,
                        "key": change.key,
                        "fields": list(change.fields),
                    },
                )
        return changes

    def _apply(self, conn: Connection, doc: Mapping[str, Any], *, write: bool) -> list[Change]:
        changes: list[Change] = []
        changes += self._regions(conn, doc.get("regions") or [], write)
        changes += self._departments(conn, doc.get("departments") or [], write)
        changes += self._users(conn, doc.get("users") or [], write)
        changes += _upsert(
            conn,
            systems,
            "system",
            "code",
            doc.get("systems") or [],
            lambda e: {
                "code": str(e["code"]),
                "name": e["name"],
                "department_code": str(e["department"]),
                "upstream": e["upstream"].rstrip("/"),
                "portal_path": e.get("portal_path", "/"),
                # absent: the default mode, so removing the key from the file ends the
                # allow-list as applying the file says
                "forward_headers": None if e.get("forward_headers") is None
                else normalise_forward_headers(e["forward_headers"]),
                "case_sensitive_paths": bool(e.get("case_sensitive_paths", False)),
                "identity_headers": e.get("identity_headers", ASSERTION),
                "remote_user": bool(e.get("remote_user", False)),
                "cas_services": list(e["cas_services"]) if e.get("cas_services") else None,
                # absent: the username only, so removing the key stops the release
                "cas_attributes": attribute_release.normalised(e.get("cas_attributes"))
                or None,
                "saml_sp": saml_sps.stored(e["saml_sp"]) if e.get("saml_sp") else None,
                "identity_tls_only": bool(e.get("identity_over_tls_only", False)),
                "assertion": e.get("assertion", PER_REQUEST),
                # absent: the launcher's own rule, so removing the key ends it
                "launch_url": e.get("launch_url") or None,
                "forward_auth_attributes": attribute_release.normalised(
                    e.get("forward_auth_attributes")) or None,
            },
            write,
        )
        changes += self._systems_tls(conn, doc.get("systems") or [], write)
        changes += self._clients(conn, doc.get("clients") or [], write)
        for handler in self.sections:
            changes += handler.apply(conn, doc.get(handler.name) or [], write)
        return changes

    def _systems_tls(self, conn: Connection, entries: list[Any], write: bool) -> list[Change]:
        """Each system's ``tls`` (absent: none), its key sealed (gateway.proxy.upstream_tls)."""
        changes = []
        for e in entries:
            code = str(e["code"])
            previous = conn.execute(sa.select(systems.c.tls).where(systems.c.code == code)
                                    ).scalar()
            desired = None
            if "tls" in e:
                if self.seal is None or self.open is None:
                    raise StateFileError("tls settings need the key ring", problems=[
                        f"systems {code}: tls: this applier cannot seal keys"])
                desired = upstream_tls.stored(e["tls"], code, self.seal, self.open, previous)
                if desired.get("cert_pem") and not desired.get("key_sealed"):
                    raise StateFileError("1 problem(s) in the state file", problems=[
                        f"systems {code}: tls: a client certificate needs its key_file"])
            if desired != (previous or None):
                changes.append(Change("update", "system", code, ("tls",)))
                if write:
                    conn.execute(systems.update().where(systems.c.code == code)
                                 .values(tls=desired))
        return changes

    def _regions(self, conn: Connection, entries: list[Any], write: bool) -> list[Change]:
        # parents first, so a foreign key never points forward
        ordered = _topological(entries, "code")
        return _upsert(
            conn,
            regions,
            "region",
            "code",
            ordered,
            lambda e: {
                "code": str(e["code"]),
                "name": e["name"],
                "parent_code": None if e.get("parent") is None else str(e["parent"]),
            },
            write,
        )

    def _departments(self, conn: Connection, entries: list[Any], write: bool) -> list[Change]:
        ordered = _topological(entries, "code")
        return _upsert(
            conn,
            departments,
            "department",
            "code",
            ordered,
            lambda e: {
                "code": str(e["code"]),
                "name": e["name"],
                "region_code": str(e["region"]),
                "parent_code": None if e.get("parent") is None else str(e["parent"]),
            },
            write,
        )

    def _users(self, conn: Connection, entries: list[Any], write: bool) -> list[Change]:
        changes = []
        now = self.clock()
        for e in entries:
            username = str(e["username"])
            roles = sorted(set(e.get("roles", ["staff"])))
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                # a user made disabled says so: the disable is then the creator's
                # (gateway.status_records), not an administrator's
                changes.append(Change("create", "user", username,
                                      ("status",) if e.get("status") == "disabled" else ()))
                if write:
                    pw = e.get("password")
                    insert_user(
                        conn,
                        username=username,
                        name=e["name"],
                        department=str(e["department"]),
                        roles=roles,
                        password_hash=passwords.hash_password(pw) if pw else None,
                        must_change=e.get("must_change", True),
                        now=now,
                        status=e.get("status", "active"),
                    )
                    contact = _contact(e)
                    if e.get("source", "local") != "local":
                        contact["source"] = e["source"]
                    if any(contact.values()):
                        conn.execute(users.update().where(users.c.username == username)
                                     .values(**contact))
                continue
            fields: dict[str, Any] = {}
            if row.name != e["name"]:
                fields["name"] = e["name"]
            if row.department_code != str(e["department"]):
                fields["department_code"] = str(e["department"])
            if "status" in e and row.status != e["status"]:
                fields["status"] = e["status"]
            if "source" in e and row.source != e["source"]:
                fields["source"] = e["source"]
                if e["source"] == "directory" and row.password_hash is not None:
                    fields["password_hash"] = None  # the directory's from now on
            if row.password_hash is None and e.get("password") and row.source == "local":
                fields["password_hash"] = passwords.hash_password(e["password"])
                fields["must_change"] = e.get("must_change", True)
            fields.update({k: v for k, v in _contact(e).items() if getattr(row, k) != v})
            current_roles = sorted(
                r.role_code
                for r in conn.execute(
                    sa.select(user_roles.c.role_code).where(user_roles.c.user_id == row.id)
                )
            )
            role_change = current_roles != roles
            if fields or role_change:
                names = sorted(
                    ("password" if f == "password_hash" else f.removesuffix("_code"))
                    for f in fields
                    if f != "must_change"
                ) + (["roles"] if role_change else [])
                changes.append(Change("update", "user", username, tuple(names)))
                if write:
                    if fields:
                        fields["updated_at"] = now
                        conn.execute(users.update().where(users.c.id == row.id).values(**fields))
                        if {"department_code", "status", "name"} & fields.keys():
                            users_changed(conn, now)
                    if role_change:
                        replace_roles(conn, row.id, roles, now)
        return changes

    def _clients(self, conn: Connection, entries: list[Any], write: bool) -> list[Change]:
        changes = []
        now = self.clock()
        for e in entries:
            cid = str(e["client_id"])
            desired = {
                "name": e["name"],
                "department_code": str(e["department"]),
                "grant_types": stored_grant_types(e),
                "redirect_uris": list(e.get("redirect_uris", [])),
                "post_logout_redirect_uris": list(e.get("post_logout_redirect_uris", [])),
                "scope": e.get("scope", "openid profile"),
                "token_endpoint_auth_method": default_auth_method(e),
                "jwks": e.get("jwks"),
                "backchannel_logout_uri": e.get("backchannel_logout_uri"),
                "status": e.get("status", "active"),
                "system": e.get("system"),
            }
            row = conn.execute(sa.select(clients).where(clients.c.client_id == cid)).first()
            secret = e.get("secret")
            if row is not None and not e.get("token_endpoint_auth_method") and \
                    not e.get("secret"):
                # an entry that names no method and no secret (written by hand, or without
                # the secret an export leaves out) keeps its stored method: a confidential
                # client never silently becomes a public one, nor a client with an
                # encryption key in `jwks` a private_key_jwt one
                desired["token_endpoint_auth_method"] = row.token_endpoint_auth_method
            # not said: unchanged for an existing client, as require_pkce; an export
            # from before DPoP (or a file written by hand without the key) must not
            # silently unbind a client's tokens from its key
            if "dpop_bound" in e:
                desired["dpop_bound"] = bool(e["dpop_bound"])
            elif row is None:
                desired["dpop_bound"] = False
            if desired["token_endpoint_auth_method"] != "private_key_jwt":  # noqa: S105
                # a client that no longer asserts keeps no loosening for a later day
                desired["lenient_assertion_audience"] = False
            elif "lenient_assertion_audience" in e:
                desired["lenient_assertion_audience"] = bool(e["lenient_assertion_audience"])
            elif row is None:
                desired["lenient_assertion_audience"] = False
            if "static_credential" in e:
                desired["static_credential"] = str(e["static_credential"])
            elif row is None:
                desired["static_credential"] = "off"
            if desired.get("static_credential", row.static_credential if row else "off") \
                    != "api_key" and (row is None or row.api_key_hash is not None):
                # a key switched off is gone: switching back on makes a new one
                desired["api_key_hash"] = None
            # not said: the token key's algorithm, as backchannel_logout_uri not said
            # is none (an export leaves the default out)
            desired["id_token_signed_response_alg"] = e.get("id_token_signed_response_alg")
            # not said: the rule (a person of another department is asked), as Keycloak's
            # realm import without consentRequired (gateway.idp.oauth2.consent)
            desired["consent_required"] = e.get("consent_required")
            if "require_pkce" in e:
                desired["require_pkce"] = bool(e["require_pkce"])
            elif row is None:
                # not said, a new client: PKCE required, as the CLI, the admin API and
                # the console register one (RFC 9700 section 2.1.1; Keycloak 26's new
                # clients); a client that must leave it out says require_pkce: false,
                # and govgate compliance names it. An existing client keeps what it has
                desired["require_pkce"] = True
            if row is None:
                changes.append(Change("create", "client", cid))
                if write:
                    conn.execute(
                        clients.insert().values(
                            client_id=cid,
                            created_at=now,
                            secret_hash=self.hash_secret(secret) if secret else None,
                            **desired,
                        )
                    )
                continue
            diff = {k: v for k, v in desired.items() if _normal(getattr(row, k)) != _normal(v)}
            secret_changed = secret is not None and not (
                row.secret_hash and self.verify_secret(secret, row.secret_hash)
            )
            if diff or secret_changed:
                names = sorted(k.removesuffix("_code") for k in diff) + (
                    ["secret"] if secret_changed else []
                )
                changes.append(Change("update", "client", cid, tuple(names)))
                if write:
                    if secret_changed:
                        diff["secret_hash"] = self.hash_secret(secret)
                    conn.execute(clients.update().where(clients.c.client_id == cid).values(**diff))
        return changes


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _topological(entries: Iterable[Any], key: str) -> list[Any]:
    by_key = {str(e[key]): e for e in entries}
    done: set[str] = set()
    out: list[Any] = []

    def visit(code: str) -> None:
        if code in done:
            return
        done.add(code)
        parent = by_key[code].get("parent")
        if parent is not None and str(parent) in by_key:
            visit(str(parent))
        out.append(by_key[code])

    for code in by_key:
        visit(code)
    return out


def _upsert(
    conn: Connection,
    table: sa.Table,
    kind: str,
    key: str,
    entries: Iterable[Any],
    to_row: Callable[[Any], dict[str, Any]],
    write: bool,
) -> list[Change]:
    changes = []
    col = table.c[key]
    for e in entries:
        values = to_row(e)
        row = conn.execute(sa.select(table).where(col == values[key])).first()
        if row is None:
            changes.append(Change("create", kind, values[key]))
            if write:
                conn.execute(table.insert().values(**values))
            continue
        diff = {k: v for k, v in values.items() if getattr(row, k) != v}
        if diff:
            changes.append(
                Change(
                    "update",
                    kind,
                    values[key],
                    tuple(sorted(k.removesuffix("_code") for k in diff)),
                )
            )
            if write:
                conn.execute(table.update().where(col == values[key]).values(**diff))
    return changes


# ---------------------------------------------------------------------------
# export


def export_state(engine: Engine, sections: Iterable[SectionHandler] = ()) -> dict[str, Any]:
    """The current state in the state-file format, without secrets."""
    with engine.connect() as conn:
        out: dict[str, Any] = {}
        out["regions"] = [
            _drop_none({"code": r.code, "name": r.name, "parent": r.parent_code})
            for r in conn.execute(sa.select(regions).order_by(regions.c.code))
        ]
        out["departments"] = [
            _drop_none(
                {"code": r.code, "name": r.name, "region": r.region_code, "parent": r.parent_code}
            )
            for r in conn.execute(sa.select(departments).order_by(departments.c.code))
        ]
        role_map: dict[int, list[str]] = {}
        for r in conn.execute(sa.select(user_roles).order_by(user_roles.c.role_code)):
            role_map.setdefault(r.user_id, []).append(r.role_code)
        out["users"] = [
            {
                "username": r.username,
                "name": r.name,
                "department": r.department_code,
                "roles": role_map.get(r.id, []),
                "must_change": bool(r.must_change),
                "status": r.status,
                **({"source": r.source} if r.source != "local" else {}),
                **{k: v for k, v in (("email", r.email), ("phone_number", r.phone_number))
                   if v},
                **{k: True for k, v in (("email_verified", r.email_verified),
                                        ("phone_number_verified", r.phone_number_verified))
                   if v},
            }
            for r in conn.execute(sa.select(users).order_by(users.c.username))
        ]
        out["systems"] = [system_entry(r)
                          for r in conn.execute(sa.select(systems).order_by(systems.c.code))]
        out["clients"] = [client_entry(r) for r in
                          conn.execute(sa.select(clients).order_by(clients.c.client_id))]
        for handler in sorted(sections, key=lambda h: h.order):
            out[handler.name] = handler.export(conn)
    return {k: v for k, v in out.items() if v}


def system_entry(r: Any) -> dict[str, Any]:
    """A ``systems`` row as its state-file entry (applying it back changes nothing)."""
    return _drop_none({
        "code": r.code,
        "name": r.name,
        "department": r.department_code,
        "upstream": r.upstream,
        "portal_path": r.portal_path,
        "forward_headers": r.forward_headers,
        "case_sensitive_paths": r.case_sensitive_paths or None,
        "identity_headers": None if r.identity_headers == ASSERTION else r.identity_headers,
        "remote_user": r.remote_user or None,
        "tls": upstream_tls.exported(r.tls),
        "cas_services": list(r.cas_services) if r.cas_services else None,
        "cas_attributes": attribute_release.normalised(r.cas_attributes) or None,
        "saml_sp": saml_sps.exported(r.saml_sp),
        "identity_over_tls_only": r.identity_tls_only or None,
        "assertion": None if r.assertion == PER_REQUEST else r.assertion,
        "launch_url": r.launch_url,
        "forward_auth_attributes": attribute_release.normalised(
            r.forward_auth_attributes) or None,
    })


def client_entry(r: Any) -> dict[str, Any]:
    """A ``clients`` row as its state-file entry, without its secret (applying it
    back keeps the stored one)."""
    return _drop_none({
        "client_id": r.client_id,
        "name": r.name,
        "department": r.department_code,
        **exported_grant_types(r.grant_types),
        "redirect_uris": list(r.redirect_uris) or None,
        "post_logout_redirect_uris": list(r.post_logout_redirect_uris or []) or None,
        "scope": r.scope,
        "token_endpoint_auth_method": r.token_endpoint_auth_method,
        "jwks": r.jwks,
        "backchannel_logout_uri": r.backchannel_logout_uri,
        "status": r.status,
        "system": r.system,
        # said either way: an entry without them keeps what the client has, so an
        # export that left out false could never switch them back off
        "require_pkce": bool(r.require_pkce),
        "dpop_bound": bool(r.dpop_bound),
        "lenient_assertion_audience": bool(r.lenient_assertion_audience)
        if r.token_endpoint_auth_method == "private_key_jwt" else None,  # noqa: S105
        # said either way where it may be on: an entry without it keeps what the client
        # has, so an export could otherwise never switch it back off
        "static_credential": (r.static_credential or "off")
        if list(r.grant_types or ()) == ["client_credentials"] else None,
        "id_token_signed_response_alg": r.id_token_signed_response_alg,
        "consent_required": r.consent_required,
    })


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def dump_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), allow_unicode=True, sort_keys=False, width=100)
