"""Request smuggling through the real server (gateway.web.http_server, both of uvicorn's
HTTP/1.1 protocols) in front of the real echo upstream.

Each request below carries, inside what one reading takes for its body, a second
request with a valid bearer token for ``/s/echo/smuggled``. A gateway that framed the
message otherwise than a front proxy would (or than the upstream, were the client's
framing passed on) would run that second request. RFC 9112 section 6.3: a message
with both ``Content-Length`` and ``Transfer-Encoding``, with a ``Transfer-Encoding``
whose last coding is not ``chunked``, with several ``Content-Length`` values or an
invalid one, is a framing error; the server answers 400 and closes. So: every such
request is refused, nothing reaches the upstream, and the smuggled request is never
run; what is accepted reaches the upstream once, framed by the gateway."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.proxy.conftest import World, exchange, status_of

pytestmark = pytest.mark.asyncio(loop_scope="module")


def inner(token: str) -> bytes:
    return (f"GET /s/echo/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\n\r\n").encode()


def head(token: str, *fields: str, path: str = "/s/echo/api/upload",
         version: str = "HTTP/1.1") -> bytes:
    lines = [f"POST {path} {version}", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
             *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def framing_attacks(token: str) -> dict[str, bytes]:
    """Requests whose framing is ambiguous, each hiding the smuggled request."""
    smuggled = inner(token)
    chunked_then_smuggled = b"0\r\n\r\n" + smuggled
    n = len(smuggled)
    out = {
        # CL.TE and TE.CL: one reading stops at the zero chunk, the other counts bytes
        "CL then TE": head(token, f"Content-Length: {len(chunked_then_smuggled)}",
                           "Transfer-Encoding: chunked") + chunked_then_smuggled,
        "TE then CL": head(token, "Transfer-Encoding: chunked", "Content-Length: 4")
        + chunk(smuggled) + b"0\r\n\r\n",
        "CL 0 with TE": head(token, "Content-Length: 0", "Transfer-Encoding: chunked")
        + chunk(b"hello") + b"0\r\n\r\n" + smuggled,
        # two lengths, or one that is not a plain number
        "two different lengths": head(token, "Content-Length: 0", f"Content-Length: {n}")
        + smuggled,
        "a list of lengths": head(token, f"Content-Length: 0, {n}") + smuggled,
        "a signed length": head(token, "Content-Length: +0") + smuggled,
        "a negative length": head(token, "Content-Length: -1") + smuggled,
        "a hex length": head(token, f"Content-Length: 0x{n:x}") + smuggled,
        "a length with a space": head(token, f"Content-Length: 0 {n}") + smuggled,
        "a length past 2**64": head(token, "Content-Length: 18446744073709551617") + smuggled,
    }
    # Transfer-Encoding spellings that one parser reads as chunked and another not
    for name, field in {
        "xchunked": "Transfer-Encoding: xchunked",
        "chunked then identity": "Transfer-Encoding: chunked, identity",
        "a quoted chunked": 'Transfer-Encoding: "chunked"',
        "chunked with a parameter": "Transfer-Encoding: chunked;x=1",
        "a vertical tab": "Transfer-Encoding: \x0bchunked",
        "a form feed": "Transfer-Encoding: chunked\x0c",
        "a space before the colon": "Transfer-Encoding : chunked",
        "a folded value": "Transfer-Encoding:\r\n chunked",
        "unknown coding only": "Transfer-Encoding: gzip",
        "chunked twice": "Transfer-Encoding: chunked, chunked",
    }.items():
        out[f"TE {name}, CL"] = (head(token, field, f"Content-Length: {n}") + smuggled)
        out[f"TE {name}"] = head(token, field) + b"0\r\n\r\n" + smuggled
    out["two TE fields, the last not chunked"] = head(
        token, "Transfer-Encoding: chunked", "Transfer-Encoding: identity") \
        + b"0\r\n\r\n" + smuggled
    # chunk sizes that are not plain hexadecimal
    for name, size in {"a signed size": b"+5", "a negative size": b"-5", "a hex prefix": b"0x5",
                       "a size past 2**64": b"1" + b"0" * 16 + b"5",
                       "a space inside": b"0 5"}.items():
        out[f"chunk size: {name}"] = head(token, "Transfer-Encoding: chunked") \
            + size + b"\r\nhello\r\n0\r\n\r\n" + smuggled
    out["chunk data longer than its size"] = head(token, "Transfer-Encoding: chunked") \
        + b"1\r\nhello\r\n0\r\n\r\n" + smuggled
    # HTTP/1.0 has no chunked coding (RFC 9112 section 6.1): faulty framing
    out["chunked in HTTP/1.0"] = head(token, "Transfer-Encoding: chunked", version="HTTP/1.0") \
        + chunk(smuggled) + b"0\r\n\r\n"
    return out


def statuses(answer: bytes) -> list[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


async def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(
        proxy_world: World, port: int) -> None:
    token = proxy_world.token()
    before = len(proxy_world.echo.seen)
    attacks = framing_attacks(token)
    answers = await asyncio.gather(*(exchange(port, data, wait=2.0)
                                     for data in attacks.values()))
    # one refusal (400; 413 for a length no body may have) and the connection closed,
    # or (h11, a chunk of 2**64 bytes) no answer while the body is awaited: never a
    # second answer, which would be the smuggled request's
    wrong = [f"{name}: {statuses(answer)} {answer[:80]!r}"
             for name, answer in zip(attacks, answers, strict=True)
             if statuses(answer) not in ([400], [413])
             and not (name == "chunk size: a size past 2**64" and answer == b"")]
    assert not wrong, "\n".join(wrong)
    assert "/smuggled" not in proxy_world.echo.paths()
    assert len(proxy_world.echo.seen) == before, proxy_world.echo.seen[before:]


async def test_an_unambiguous_body_reaches_the_upstream_once_as_framed(
        proxy_world: World, port: int) -> None:
    """What RFC 9112 allows (coding names in any case, white space around a value) is
    read, and the upstream gets exactly the body the gateway read, framed anew."""
    token = proxy_world.token()
    for fields, body in (
            (["Transfer-Encoding: Chunked"], chunk(b"hello") + b"0\r\n\r\n"),
            (["Transfer-Encoding:\tchunked "], chunk(b"hello") + b"0\r\n\r\n"),
            (["Content-Length:  5 "], b"hello")):
        before = len(proxy_world.echo.seen)
        answer = await exchange(port, head(token, "Connection: close", *fields) + body)
        assert status_of(answer) == 200, (fields, answer[:200])
        (seen,) = proxy_world.echo.seen[before:]
        assert seen["body_len"] == 5, fields
        sent = {k.lower(): v for k, v in seen["headers"]}
        assert sent.get("content-length") == "5" or sent.get("transfer-encoding") == "chunked"
