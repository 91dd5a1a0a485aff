"""Credentials out of the request targets the audit log keeps.

A proxied or forward-auth request's target goes into its audit record as the client
sent it (what was asked for is what an investigation needs). Some targets carry a
credential: an OAuth access token as a query parameter (RFC 6750 §2.3), a CAS service
ticket or an OpenID Connect authorisation code on a system's sign-in callback behind
the proxy, an API key, a servlet session id as a path parameter (``;jsessionid=``).
"No secret in audit records": their values are replaced by ``[redacted]``, as the
record's own scrubbing (``audit.record``) replaces JWTs and keys naming secrets; the
names stay, so the record still says that one was sent.

On a catalogue resource's route the values of the query's other parameters are
personal data as often: ``/s/hr/people?phone=13800001234`` is a guessed phone number,
kept for as long as the audit log is. ``redact_query_values`` masks every value the
catalogue does not say is safe (``gateway.proxy.catalogue``: an item the caller is
given in the clear, a count under a pagination name, an ordering by field names); the
names stay, so the auditor still sees which parameter was used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_plus

from audit.record import REDACTED

# a parameter name (lower case, without "-", "_", "." and white space, a PHP "[...]"
# cut) that carries a credential
_SECRET_NAME = re.compile(
    r"token|secret|passw|passcode|pwd|apikey|accesskey|credential|session|sessid|ticket"
    r"|signature|assertion|samlresponse|samlrequest|samlart|authorization|privatekey"
    r"|codeverifier"
    r"|\A(?:key|sig|code|auth|otp|pin)\Z")
_FOLD = str.maketrans("", "", "-_. \t")


def secret_name(name: str) -> bool:
    """Whether a query or path parameter named ``name`` (as sent) carries a credential."""
    read = unquote_plus(name).split("[", 1)[0].lower().translate(_FOLD)
    return _SECRET_NAME.search(read) is not None


def _masked_pairs(text: str, sep: str) -> str:
    parts = text.split(sep)
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value and secret_name(name):
            parts[i] = f"{name}={REDACTED}"
    return sep.join(parts)


def redact_target(target: str) -> str:
    """``target`` (a path, ``?`` and a query, as sent) with the values of credential
    parameters masked, in the query and in ``;`` path parameters."""
    if "=" not in target:
        return target
    path, q, query = target.partition("?")
    if ";" in path:
        path = "/".join(_masked_pairs(seg, ";") if ";" in seg else seg
                        for seg in path.split("/"))
    if q:
        # a value holding ";" masked whole (servers splitting at "&" only), a credential
        # after a ";" masked too (those splitting there as well: catalogue.query)
        query = "&".join(_masked_pairs(p, ";") if ";" in p else p
                         for p in _masked_pairs(query, "&").split("&"))
    return path + q + query


# a part of a query without "=" that reads as a name (``?driver_phone``), not a value
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}")
_PARTS = re.compile(r"([&;])")


def redact_query_values(target: str, keep: Callable[[str, str], bool]) -> str:
    """``target`` (as :func:`redact_target` left it) with the value of every query
    parameter masked unless ``keep(name, value)`` (both as sent); a part without ``=``
    that is no plain name (``?13800001234``) is masked whole. Split at ``&`` and ``;``
    (servers split at either: ``catalogue.query``)."""
    path, q, query = target.partition("?")
    if not q or not query:
        return target
    out = []
    for part in _PARTS.split(query):
        name, eq, value = part.partition("=")
        if part in ("&", ";", "") or (eq and (not value or value == REDACTED
                                             or keep(name, value))):
            out.append(part)
        elif eq:
            out.append(f"{name}={REDACTED}")
        else:
            out.append(part if _BARE_NAME.fullmatch(unquote_plus(part)) else REDACTED)
    return path + q + "".join(out)
