"""The one reader of JSON request bodies under ``/api/v1`` (RFC 8259 text, as RFC 9457
problem details when it is not acceptable).

A body is read up to :data:`MAX_BODY_BYTES` (more is ``413``), must be UTF-8
(RFC 8259 section 8.1), nest no deeper than :data:`MAX_DEPTH` arrays and objects
(checked before parsing, so no parser recursion is ever at stake), hold no
``NaN``/``Infinity``, no string with a NUL or an unpaired surrogate (neither
survives a database's text column), and be one JSON object. Everything else is
``400``. An empty body is an empty object: bodyless calls (publish, retire) stay
bodyless.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from gateway.errors import ContentTooLarge, ValidationError

#: the largest body any API call takes (a catalogue resource with hundreds of items
#: is a few tens of KiB; the state file itself is capped at 1 MiB)
MAX_BODY_BYTES = 1024 * 1024
#: the deepest nesting of arrays and objects (a resource entry nests 3 deep)
MAX_DEPTH = 16

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in the JSON text ``raw`` (brackets inside
    strings do not count); a linear scan, whatever the text."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bad_string(value: Any) -> bool:
    """True when some string in ``value`` (keys included) holds a NUL or cannot be
    encoded as UTF-8 (a lone surrogate from a ``\\ud800`` escape)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_string(k) or _bad_string(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_string(v) for v in value)
    return False


def parse_object(raw: bytes) -> dict[str, Any]:
    """The JSON object ``raw`` holds; ValidationError (400) or ContentTooLarge (413)
    saying why not."""
    if len(raw) > MAX_BODY_BYTES:
        raise ContentTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the body is not UTF-8 text") from None
    if nesting_depth(raw) > MAX_DEPTH:
        raise ValidationError(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text, parse_constant=_constant)
    except (ValueError, RecursionError):
        raise ValidationError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    if _bad_string(data):
        raise ValidationError("the body holds a NUL character or an unpaired surrogate")
    return data


async def read_object(request: Request) -> dict[str, Any]:
    """Read and check the request's JSON body (see the module); stops reading as soon
    as the body is too large."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ContentTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ContentTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return parse_object(b"".join(chunks))
