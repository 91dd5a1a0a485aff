"""Client input quoted in an OAuth 2.0 ``error_description``.

RFC 6749 section 5.2 allows only ``%x20-21 / %x23-5B / %x5D-7E`` there, and authlib
raises ``ValueError`` (an answer of 500) for a description holding anything else: a
value the client sent (a parameter's name, an audience) is named percent-encoded
where it holds other characters, so the client still sees which one was refused.
"""

from __future__ import annotations

from urllib.parse import quote

# the printable ASCII an error description may hold, but '%' (the escape) and "'"
# (the quotes around the value)
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "\"\\%'")
_LONGEST = 100


def quoted(value: str) -> str:
    """``value`` (its first 100 characters) in single quotes, every character an
    error description may not hold percent-encoded (UTF-8)."""
    return "'" + quote(value[:_LONGEST], safe=_SAFE, errors="backslashreplace") + "'"
