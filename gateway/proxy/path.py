"""Path normalisation for ``/s/{system}/{path}``: one canonical path or 400.

RFC 3986 section 6 (normalisation) and section 5.2.4 (dot segments) name the
ways one path can be spelt several times; proxies and servers disagree on
which they apply, and every disagreement is a way around a path policy. So
this module accepts only paths whose meaning no one can dispute, and refuses
the rest (``BadPath`` → 400) instead of guessing:

- the path is taken from the raw request target (ASGI ``raw_path``), never
  from a server's decoded copy;
- a raw ``#`` (a fragment: nginx passes it in ``$request_uri``, the upstream cuts
  the path there) is refused;
- percent-encoding is decoded exactly once; an encoded ``/`` (``%2F``) or
  ``\\`` (``%5C``), an encoded ``%`` (``%25``: double encoding), a bad escape,
  a control character or NUL, and bytes that are not UTF-8 are refused;
- dot segments (``.``, ``..``, also encoded, also ``..;x`` as Tomcat reads
  it, and any name of dots and spaces, ``...`` or ``.. ``, which Windows reads as
  ``..`` once it drops trailing dots and spaces), empty segments (``//``), segments
  an upstream reads as empty (only a ``;`` path parameter, white space, or from a
  decoded ``?`` or ``#`` on: ``/api/;x/rooms`` is ``/api/rooms`` to Tomcat) and
  backslashes are refused;
- a character whose compatibility form is a separator or a dot segment is refused
  as that separator: Windows turns a path into its ANSI code page by "best fit"
  (full-width ``／`` ``＼`` ``．`` and ``％``, the division slash ``∕``, the yen and won
  signs as ``\\``), so ``/public/．．/admin`` or ``/api／vehicles`` reach an IIS
  upstream as ``/public/../admin`` and ``/api/vehicles``;
- the system segment must be a plain lower-case code (``/s/Assets/`` and
  ``/s/%61ssets/`` are refused).

What policy sees (``Target.object``, decoded) and what the upstream receives
(``Target.upstream_path``, re-encoded canonically) are then the same path:
decoding the second gives back exactly the first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote

from gateway.errors import ValidationError
from gateway.tables import SYSTEM_RE

PREFIX = b"/s/"
_HEX = frozenset(b"0123456789abcdefABCDEF")
# characters kept as they are in a segment; everything else is percent-encoded
_SAFE = "!$&'()*+,;=:@-._~"
# a path below the system made of these only needs no decoding and no re-encoding
_PLAIN = re.compile(rb"[A-Za-z0-9!$&'()*+,;=:@._~/-]*")
MAX_PATH = 8192
# parsed targets kept for the next request with the same path and query: a client
# calls the same few routes again and again, and a Target is immutable. Short ones
# only, so that the table stays small (at most about 4096 x 1.5 KiB) whatever is sent
PARSED_MAX = 4096
PARSED_KEY_MAX = 512
_parsed: dict[tuple[bytes, bytes], Target] = {}


class BadPath(ValidationError):
    code = "bad_path"
    title = "Ambiguous or malformed path"


@dataclass(frozen=True)
class Target:
    system: str
    path: str  # decoded path below the system, starts with "/"
    upstream_path: str  # canonical percent-encoding of ``path``
    query: str  # raw query string, "" when none
    # what policy sees: ``/s/{system}{path}`` (built once, read by every step)
    object: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "object", f"/s/{self.system}{self.path}")


def _decode_segment(raw: bytes) -> str:
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25:  # %
            if i + 2 >= n:
                raise BadPath("bad percent-encoding in the path")
            h1, h2 = raw[i + 1], raw[i + 2]
            if h1 not in _HEX or h2 not in _HEX:
                raise BadPath("bad percent-encoding in the path")
            value = int(raw[i + 1 : i + 3], 16)
            if value in (0x2F, 0x5C):
                raise BadPath("encoded slash or backslash in the path")
            if value == 0x25:
                raise BadPath("double percent-encoding in the path")
            out.append(value)
            i += 3
            continue
        if b == 0x23:  # "#": a fragment, where the upstream stops the path (nginx passes it)
            raise BadPath("a fragment ('#') in the request target")
        out.append(b)
        i += 1
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath("path is not UTF-8") from None
    for ch in text:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise BadPath("control character in the path")
        if ch == "\\":
            raise BadPath("backslash in the path")
    read = text if text.isascii() else best_fit(text)
    if not text.isascii() and any(c in read for c in "/\\%"):
        raise BadPath("a character read as a slash, backslash or percent sign in the path")
    name = read.split(";", 1)[0]
    if "." in name and not name.strip(". "):
        raise BadPath("dot segment in the path")
    if read and not _EMPTY_CUT.sub("", read).strip():
        # Tomcat cuts ";x" and collapses the empty segment left (/api/;x/rooms is
        # /api/rooms to it), Windows drops trailing white space, a lax upstream re-reads
        # a decoded "?" or "#": each is "//" or a trailing slash to someone
        raise BadPath("a segment read as an empty one (path parameter, space, '?' or '#')")
    return text


# what some upstream cuts from a segment before routing (catalogue.routes reads the same)
_EMPTY_CUT = re.compile(r"[;?#].*\Z", re.DOTALL)


# what Windows' best fit to a code page makes of characters NFKC leaves alone
_BEST_FIT = str.maketrans({"\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u00a5": "\\",
                           "\u20a9": "\\", "\u29f5": "\\", "\u29f9": "\\"})


def best_fit(text: str) -> str:
    """``text`` as an upstream that folds compatibility forms reads it (module
    docstring): NFKC, and the look-alike slashes and backslashes as such."""
    return unicodedata.normalize("NFKC", text.translate(_BEST_FIT))


def _walk(segments: list[bytes]) -> tuple[str, str]:
    """Decoded path and its canonical re-encoding, segment by segment."""
    decoded = []
    for i, seg in enumerate(segments):
        if seg == b"" and i != len(segments) - 1:
            raise BadPath("empty segment in the path")
        decoded.append(_decode_segment(seg))
    return ("/" + "/".join(decoded), "/" + "/".join(quote(s, safe=_SAFE) for s in decoded))


def parse(raw_path: bytes, query: bytes = b"") -> Target:
    """``raw_path`` (``/s/{system}/...``, still percent-encoded) as a ``Target``: the
    one parsed before for the same bytes (a refusal is never kept: it is made again)."""
    key = (raw_path, query)
    found = _parsed.get(key)
    if found is None:
        found = _parse(raw_path, query)
        if len(raw_path) + len(query) > PARSED_KEY_MAX:
            return found
        if len(_parsed) >= PARSED_MAX:
            _parsed.clear()
        _parsed[key] = found
    return found


def _parse(raw_path: bytes, query: bytes) -> Target:
    if len(raw_path) > MAX_PATH:
        raise BadPath("path too long")
    if not raw_path.startswith(PREFIX):
        raise BadPath("not a proxy path")
    rest = raw_path[len(PREFIX):]
    system_raw, sep, below = rest.partition(b"/")
    try:
        system = system_raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadPath("bad system code") from None
    if not SYSTEM_RE.match(system):
        raise BadPath("bad system code (lower-case letters, digits, '.', '_', '-')")
    slashed = b"/" + below
    if (_PLAIN.fullmatch(below) and b"//" not in slashed and b"/." not in slashed
            and b"/;" not in slashed):
        # the usual path: nothing to decode or re-encode, no dot or empty segment, so
        # the segment walk below would return it unchanged (tests compare the two)
        path = upstream = slashed.decode("ascii")
    else:
        path, upstream = _walk(below.split(b"/") if sep else [b""])
    try:
        q = query.decode("ascii")
    except UnicodeDecodeError:
        raise BadPath("query string is not ASCII (percent-encode it)") from None
    if q and (any(ord(c) < 0x21 or ord(c) == 0x7F for c in q) or "#" in q):
        raise BadPath("control character in the query string")
    return Target(system, path, upstream, q)
