"""What an assertion says about the user: the NameID and the attributes.

- persistent NameID (the default): stable for one user at one SP, different at
  every SP, and not the username: ``keys.mac`` over (SP entity ID, username),
  base64url. Two SPs cannot join their users on it; the SP keeps it for good. It
  changes only if the key ring's keyed-hash secret does (a crypto profile switch).
- transient NameID: random, new in every assertion.
- attributes (NameFormat basic, the names CAS releases too): those the SP is
  registered for (``saml_sp.attributes``: ``name``, ``department``, ``region``,
  ``roles`` with one value per role; none by default, gateway.idp.attribute_release);
  ``uid`` (the username) only for an SP registered with ``release_username: true``; ``act`` (the
  delegate: their username to such an SP, their persistent NameID at the SP to any
  other) and ``delegation`` (its id) when B signed in acting for A.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from gateway.idp import attribute_release
from gateway.idp.saml import names


def persistent_id(keys: Any, sp_entity_id: str, username: str) -> str:
    tag = keys.mac("idp.saml_persistent_id", f"{sp_entity_id}\n{username}".encode())
    return base64.urlsafe_b64encode(bytes(tag)).rstrip(b"=").decode("ascii")


def transient_id() -> str:
    return "_" + secrets.token_hex(20)


def name_id(keys: Any, fmt: str, sp_entity_id: str, username: str) -> str:
    if fmt == names.NAMEID_FORMAT_PERSISTENT:
        return persistent_id(keys, sp_entity_id, username)
    return transient_id()


def identity(subject: Any, *, release_username: bool, attributes: Iterable[str],
             pseudonym: Callable[[str], str]) -> dict[str, list[str]]:
    """The attributes the SP is registered for; ``pseudonym`` names a user to an SP
    that does not receive usernames (its persistent NameID of them)."""
    out = attribute_release.values(subject, list(attributes))
    if release_username:
        out["uid"] = [subject.username]
    if getattr(subject, "act", None):  # 委托: A, acted for by B (docs/delegation.md)
        # B as this SP knows B: by username only where usernames are released
        out["act"] = [subject.act if release_username else pseudonym(subject.act)]
        out["delegation"] = [str(subject.delegation)]
    return {k: v for k, v in out.items() if v and all(v)}
