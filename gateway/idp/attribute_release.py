"""Which of a user's attributes a CAS service or SAML SP receives: pure, no I/O.

Neither protocol has scopes, so each registration lists what it gets, as Apereo
CAS's ``ReturnAllowedAttributeReleasePolicy`` and Keycloak's protocol mappers do::

    cas_services: ["https://office.example/cas/*"]
    cas_attributes: [name, department]        # absent or []: the username only
    saml_sp: {metadata_file: ..., attributes: [name, roles]}

| name | value |
| --- | --- |
| ``name`` | the person's name |
| ``department`` | their department's code |
| ``region`` | their region's code |
| ``roles`` | one value per role |

The user's identifier always goes (``cas:user``; the SAML NameID, ``uid`` with
``release_username``), and so do ``actingUser``/``act`` and ``delegation`` when a
delegate signed in acting for the user: a service must know who acts.
"""

from __future__ import annotations

from typing import Any

ATTRIBUTES = ("name", "department", "region", "roles")
MAX_LISTED = len(ATTRIBUTES)
#: what forward-auth's answer may add (``forward_auth_attributes``): its 200 carries the
#: department and the roles always (``X-Govgate-Department``, ``X-Govgate-Roles``, the
#: front proxies' contract), so only these two are the list's to decide
FORWARD_AUTH = ("name", "region")


def problems(value: object, field: str, allowed: tuple[str, ...] = ATTRIBUTES
             ) -> list[str]:
    """What is wrong with a release list (``field`` names it in the message)."""
    if not isinstance(value, list):
        return [f"{field} must be a list of attribute names ({', '.join(allowed)})"]
    out = []
    for name in value:
        if name not in allowed:
            out.append(f"{field}: unknown attribute {str(name)[:40]!r} "
                       f"(one of {', '.join(allowed)})")
    if len(set(map(str, value))) != len(value):
        out.append(f"{field}: an attribute listed twice")
    return out


def normalised(value: object) -> list[str]:
    """A valid list in the canonical order (what is stored and exported); anything
    else read back from storage releases nothing (fails closed)."""
    if not isinstance(value, list):
        return []
    return [a for a in ATTRIBUTES if a in value]


def values(subject: Any, listed: object) -> dict[str, list[str]]:
    """The listed attributes of ``subject`` (a role list sorted), empty ones left out."""
    every = {"name": [subject.name], "department": [subject.department],
             "region": [subject.region], "roles": sorted(subject.roles)}
    return {a: every[a] for a in normalised(listed) if every[a] and all(every[a])}
