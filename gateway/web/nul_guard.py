"""A NUL (U+0000) in a request's path, query string or form body is refused with 400
before any route of the application reads it.

PostgreSQL refuses a NUL in any text value ("text fields cannot contain NUL (0x00)
bytes"), so a NUL that reached a query or a write (a sign-in name, a filter, a path
parameter, a form field) failed there as a 500, where SQLite stored it. No name, code,
filter or text of govgate holds one. The other ways in are closed elsewhere: the
proxy's paths and queries (``gateway.proxy.path``), JSON bodies
(``gateway.web.api.body``), header fields (the HTTP server); audit records replace a
NUL they are given.

A form body is checked as it streams to the route (its parser reads it through the
``receive`` wrapped here): a url-encoded ``%00`` or a raw NUL byte in a chunk raises
:class:`NulRefused`, which the application's error handler answers 400.
"""

from __future__ import annotations

import re

from starlette.types import Message, Receive, Scope

from gateway.errors import ValidationError
from texts import Text

# "%00" (percent-encoding is case-free; 0 has no case) or a raw NUL
_NUL = re.compile(rb"%00|\x00")
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class NulRefused(ValidationError):
    code = "nul_character"
    title = "A NUL character in the request"

    def __init__(self) -> None:
        super().__init__(Text("request.nul", "a NUL character (U+0000) in the request"))


def nul_in_target(scope: Scope) -> bool:
    """Whether the request's path or query string holds a NUL, encoded or not."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    return bool(_NUL.search(raw) or _NUL.search(scope.get("query_string", b"")))


def guard_form_body(scope: Scope, receive: Receive) -> Receive:
    """``receive``, raising :class:`NulRefused` on a form body chunk that holds a NUL
    (url-encoded or raw); any other body passes untouched."""
    content_type = next((v for k, v in scope["headers"] if k.lower() == b"content-type"), b"")
    if not content_type.lower().lstrip().startswith(_FORMS):
        return receive
    tail = b""  # the last bytes of the previous chunk: "%0" | "0" spans two chunks

    async def checked() -> Message:
        nonlocal tail
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if _NUL.search(tail + body):
                raise NulRefused()
            tail = body[-2:]
        return message

    return checked
