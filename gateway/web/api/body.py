"""The one reader of JSON request bodies (RFC 8259) under ``/api/v1``; what it refuses
is answered with RFC 9457 problem details.

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

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gateway.errors import ContentTooLarge, ValidationError
from gateway.limits import unstorable
from texts import Text

#: the largest body any API call takes (a catalogue resource with hundreds of items
#: is a few tens of KiB; the state file itself is capped at 1 MiB)
MAX_BODY_BYTES = 1024 * 1024
#: the deepest nesting of arrays and objects (a resource entry nests 3 deep)
MAX_DEPTH = 16

#: bodies larger than this are checked and parsed off the event loop
_INLINE_BYTES = 64 * 1024
_SPECIAL = re.compile(rb'[\\"\[\]{}]')


def nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep in the JSON text ``raw``
    (brackets inside strings do not count). One pass over the bytes that matter,
    whatever the text: a regular expression matching whole strings would backtrack
    quadratically on unclosed ones."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = -1  # the index of the character after a backslash in a string
    for m in _SPECIAL.finditer(raw):
        i = m.start()
        if i == escaped:
            continue
        c = raw[i]
        if in_string:
            if c == 0x5C:  # backslash
                escaped = i + 1
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            if depth > limit:
                return True
        elif c == 0x5D or c == 0x7D:  # ] }
            depth -= 1
    return False


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


TOO_LARGE = Text("request.body_too_large", "the body is larger than {n} bytes", n=MAX_BODY_BYTES)


def parse_object(raw: bytes) -> dict[str, Any]:
    """The JSON object ``raw`` holds; ValidationError (400) or ContentTooLarge (413)
    saying why not."""
    if len(raw) > MAX_BODY_BYTES:
        raise ContentTooLarge(TOO_LARGE)
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(Text("api.body_not_utf8", "the body is not UTF-8 text")) from None
    if nests_deeper_than(raw, MAX_DEPTH):
        raise ValidationError(Text("api.body_too_deep", "the body nests deeper than {n} levels",
                                   n=MAX_DEPTH))
    try:
        data = json.loads(text, parse_constant=_constant)
    except (ValueError, RecursionError):
        raise ValidationError(Text("api.body_not_json", "the body is not JSON")) from None
    if not isinstance(data, dict):
        raise ValidationError(Text("api.body_not_object", "the body must be a JSON object"))
    if unstorable(data):
        raise ValidationError(Text("api.body_unstorable",
                                   "the body holds a NUL character or an unpaired surrogate"))
    return data


#: where the request's scope keeps the object once read: a declaration checks it
#: (``gateway.web.api.operation``) and the handler reads the same object after it
_READ = "govgate.json_body"


async def read_object(request: Request) -> dict[str, Any]:
    """Read and check the request's JSON body (see the module); stops reading as soon
    as the body is too large. A second call returns the object the first one read."""
    if _READ in request.scope:
        return request.scope[_READ]  # type: ignore[no-any-return]
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ContentTooLarge(TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ContentTooLarge(TOO_LARGE)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if len(raw) > _INLINE_BYTES:
        data = await run_in_threadpool(parse_object, raw)
    else:
        data = parse_object(raw)
    request.scope[_READ] = data
    return data
