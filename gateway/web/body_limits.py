"""How much of a body the application reads, and how long it waits for it: every route
but the proxy's and forward-auth's, which have their own (``gateway.proxy.endpoint``).

Starlette reads a form (the sign-in, the token endpoint, every portal form) whole into
memory and waits for it as long as the client likes, and uvicorn sets no deadline on
a body: a 100 MB ``POST /oauth2/token`` was held in memory, and a client sending one
byte now and then held a connection and a handler for ever. So, as for the proxy:

- a body may hold at most :data:`MAX_BODY_BYTES`: a larger declared
  ``Content-Length`` is answered 413 before anything is read, a body that grows past
  it as it arrives is cut off with 413 (the JSON API's own, smaller, limit applies
  first: ``gateway.web.api.body``);
- each piece of a body must arrive within ``body_timeout_seconds`` of the last
  (30 s), or the request is answered 408.

Once the body is complete, ``receive`` is the server's own again (Starlette listens
on it for a disconnect while a response streams, for as long as that takes).
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope

from gateway.errors import ContentTooLarge, GovgateError
from texts import Text

# the largest body a route of the application takes: a SAML POST binding's form is
# 256 KiB, a JSON API body 1 MiB
MAX_BODY_BYTES = 2 * 1024 * 1024


class BodyTooSlow(GovgateError):
    code = "request_timeout"
    status = 408
    title = "Request body too slow"


class BodyCutShort(GovgateError):
    code = "body_cut_short"
    status = 400
    title = "Request body cut short"


def _too_large() -> ContentTooLarge:
    return ContentTooLarge(Text("request.body_too_large", "the body is larger than {n} bytes",
                                n=MAX_BODY_BYTES))


def declared_too_large(scope: Scope) -> ContentTooLarge | None:
    """The 413 for a request whose ``Content-Length`` is over the limit, or None."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            declared = value.strip()
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return _too_large()
    return None


def limit_body(receive: Receive, timeout: float) -> Receive:
    """``receive``, raising ``ContentTooLarge`` once the body passes the limit and
    :class:`BodyTooSlow` when a piece of it does not come within ``timeout``."""
    size = 0
    complete = False

    async def limited() -> Message:
        nonlocal size, complete
        if complete:
            return await receive()
        try:
            # a deadline on this task, not wait_for's task per piece (measured: 7.2 against
            # 4.6 us per POST, docs/BENCHMARKS.md "token endpoint")
            async with asyncio.timeout(timeout):
                message = await receive()
        except TimeoutError:
            raise BodyTooSlow(Text("request.body_too_slow",
                                   "no part of the body came within {seconds} s",
                                   seconds=timeout)) from None
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > MAX_BODY_BYTES:
                raise _too_large()
            complete = not message.get("more_body", False)
        else:
            complete = True  # a disconnect: nothing more to wait for
        return message

    return limited
