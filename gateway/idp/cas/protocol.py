"""The texts of the CAS Protocol 3.0 specification
(https://apereo.github.io/cas/development/protocol/CAS-Protocol-Specification.html):
pure functions, bytes out.

- section 2.4.2: the CAS 1.0 ``/validate`` answer, ``yes\\n<user>\\n`` or ``no\\n``;
- sections 2.5.2 and 2.6.2: the ``/serviceValidate`` and ``/p3/serviceValidate`` XML,
  ``cas:authenticationSuccess`` with ``cas:user`` and, in ``cas:attributes`` (3.0,
  section 2.5.2's example and appendix), the attributes the service's system is
  registered for (``cas_attributes``: ``name``, ``department``, ``region``, one
  ``roles`` element per role; gateway.idp.attribute_release), beside
  ``authenticationDate``, ``isFromNewLogin`` and
  ``longTermAuthenticationRequestTokenUsed``; or ``cas:authenticationFailure`` with
  its code;
- section 2.3.3 and appendix C: the SAML 2.0 ``LogoutRequest`` of single logout,
  its ``SessionIndex`` the service ticket.

Everything taken from a user is escaped and stripped of what XML 1.0 cannot hold.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

NS = "http://www.yale.edu/tp/cas"
TICKET_PREFIX = "ST-"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


@dataclass(frozen=True)
class Success:
    """What a validation releases about the user."""

    user: str
    #: the released attributes, in order (a role per ``roles`` element)
    attributes: tuple[tuple[str, str], ...]
    authenticated_at: datetime
    new_login: bool
    #: a ticket acted for by a delegate (委托): ``actingUser`` and ``delegation``
    acting: tuple[tuple[str, str], ...] = ()


def validate_v1(success: Success | None) -> bytes:
    """Section 2.4.2; the user name on one line (a newline in it would forge a line)."""
    if success is None:
        return b"no\n"
    return f"yes\n{success.user.replace(chr(10), '').replace(chr(13), '')}\n".encode()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_response_success(success: Success) -> bytes:
    attrs: list[tuple[str, str]] = [
        ("authenticationDate", _iso(success.authenticated_at)),
        ("longTermAuthenticationRequestTokenUsed", "false"),
        ("isFromNewLogin", "true" if success.new_login else "false"),
        *success.attributes,
        *success.acting,
    ]
    body = "".join(f"<cas:{k}>{_text(v)}</cas:{k}>" for k, v in attrs)
    return (f'<cas:serviceResponse xmlns:cas="{NS}">'
            f"<cas:authenticationSuccess><cas:user>{_text(success.user)}</cas:user>"
            f"<cas:attributes>{body}</cas:attributes>"
            "</cas:authenticationSuccess></cas:serviceResponse>\n").encode()


def service_response_failure(code: str, description: str) -> bytes:
    return (f'<cas:serviceResponse xmlns:cas="{NS}">'
            f"<cas:authenticationFailure code={quoteattr(code)}>{_text(description)}"
            "</cas:authenticationFailure></cas:serviceResponse>\n").encode()


def logout_request(session_index: str, at: datetime, request_id: str | None = None) -> str:
    """The SAML 2.0 LogoutRequest CAS servers POST (form field ``logoutRequest``)."""
    rid = request_id or "LR-" + secrets.token_hex(16)
    return ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
            f'ID={quoteattr(rid)} Version="2.0" IssueInstant={quoteattr(_iso(at))}>'
            "<saml:NameID>@NOT_USED@</saml:NameID>"
            f"<samlp:SessionIndex>{_text(session_index)}</samlp:SessionIndex>"
            "</samlp:LogoutRequest>")


def with_ticket(service: str, ticket: str) -> str:
    """The service URL with ``ticket`` appended to its query (section 2.2.4)."""
    return f"{service}{'&' if '?' in service else '?'}ticket={ticket}"


def attributes_of(released: Mapping[str, Iterable[str]]) -> tuple[tuple[str, str], ...]:
    """``cas:attributes`` pairs of released attributes: one element per value."""
    return tuple((name, value) for name, values in released.items() for value in values)
