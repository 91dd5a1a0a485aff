"""The token endpoint's parts, one at a time: CPU µs per call, in process.

    .venv/bin/python bench/bench_token_parts.py [--calls 4000] [--repeats 5]

The client_credentials request of ``bench_inprocess`` (client_secret_basic, a fresh
SQLite gateway with the demo clients, no-op audit), then each step the endpoint takes,
called on its own in a loop on the CPU-time clock of this thread (``time.thread_time``):
the median of ``--repeats`` rounds. Run it from two checkouts (the script copied into
the other's ``bench/``) to compare a change with its base back to back; one request's
steps differ by a few µs, which the whole-request figure of ``bench_inprocess`` on this
shared VM (±30 µs between runs) cannot show.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_idp  # noqa: E402
import bench_inprocess  # noqa: E402


def _median_us(fn: Callable[[], Any], calls: int, repeats: int) -> float:
    rounds = []
    for _ in range(repeats):
        started = time.thread_time()
        for _ in range(calls):
            fn()
        rounds.append((time.thread_time() - started) / calls * 1e6)
    return statistics.median(rounds)


def measure(calls: int, repeats: int) -> dict[str, float]:
    from starlette.requests import Request

    from audit import AuditRecord
    from gateway.app import create_app
    from gateway.idp.oauth2.rfc6749 import authenticate_client_secret_basic, parse_basic
    from gateway.services import open_services
    from gateway.settings import load_settings
    from gateway.web import oauth2

    home = Path(tempfile.mkdtemp(prefix="govgate-token-parts-"))
    try:
        bench_idp.prepare(home, 8080)
        settings = load_settings(bench_idp._env(home), {"issuer": "http://127.0.0.1:8080"})
        services = open_services(settings, writer="gateway")

        async def noop(record: Any) -> None:
            return None

        services.audit.append = noop  # type: ignore[method-assign]
        app = create_app(services)
        basic = base64.b64encode(":".join(bench_idp.FINANCE).encode())
        body = b"grant_type=client_credentials"
        headers = [(b"host", b"127.0.0.1:8080"), (b"authorization", b"Basic " + basic),
                   (b"content-type", b"application/x-www-form-urlencoded"),
                   (b"content-length", str(len(body)).encode())]
        one = bench_inprocess._caller(app, "POST", "/oauth2/token", headers, body)
        loop = asyncio.new_event_loop()
        provider = app.state.gateway.provider

        def request() -> Request:
            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            return Request(bench_inprocess._scope(app, "POST", "/oauth2/token", headers),
                           receive)

        oreq = loop.run_until_complete(oauth2.oauth_request(request(), provider))
        result = provider.server.create_token_response(oreq)
        assert result.status == 200, result.body

        def fresh_oreq() -> Any:
            return loop.run_until_complete(oauth2.oauth_request(request(), provider))

        server = provider.server
        client = server.query_client(bench_idp.FINANCE[0])
        claims = server.token_generator.claims(client, None, "proxy", "client_credentials",
                                               300)

        def record() -> Any:
            return AuditRecord(
                event_type="token_issued", outcome="success", source_ip="127.0.0.1",
                actor_client=client.client_id, department=client.department,
                extra={"grant_type": "client_credentials", "jti": claims["jti"],
                       "scope": claims["scope"]})

        steps: dict[str, Callable[[], Any]] = {
            "whole request (ASGI app, sequential)": lambda: loop.run_until_complete(one()),
            "the endpoint function alone (no middleware)": lambda: loop.run_until_complete(
                oauth2.token(request())),
            "read the form, build the OAuth request": fresh_oreq,
            "authlib: authenticate, issue, sign, record": lambda: (
                provider.server.create_token_response(fresh_oreq())),
            "  of which reading the form (subtract)": fresh_oreq,
            "  authenticate the client (secret_basic)": lambda: (
                authenticate_client_secret_basic(server.query_client, oreq)),
            "  the access token (claims, ES256, JWS)": lambda: server.token_generator(
                "client_credentials", client, None, None, None, False),
            "    the ES256 JWS alone": lambda: server.keys.sign_jwt(
                "token", claims, headers={"typ": "at+jwt"}),
            "  the audit record (AuditRecord)": record,
            "the JSON response": lambda: oauth2.to_response(result),
            "client_secret_basic: decode the credential": lambda: parse_basic(
                basic.decode()),
        }
        try:  # the direct path (not in checkouts before it: this script runs there too)
            from gateway.idp.oauth2.client_credentials import issue
        except ImportError:
            pass
        else:
            authorization = "Basic " + basic.decode()
            form = {"grant_type": "client_credentials"}
            steps["direct path: authenticate, issue, sign, record"] = lambda: issue(
                server, form, lambda name: authorization if name == "Authorization" else None,
                "127.0.0.1")
        for fn in steps.values():
            fn()  # warm
        out = {name: _median_us(fn, calls, repeats) for name, fn in steps.items()}
        loop.close()
        services.close()
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(sys.argv[2:] if sys.argv[1:2] == ["bench_token_parts"] else None)
    print(f"token endpoint parts, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
          f"{ROOT}, median of {args.repeats} x {args.calls} calls, CPU µs per call")
    for name, us in measure(max(100, args.calls), max(1, args.repeats)).items():
        print(f"  {name:<46} {us:7.1f}")


if __name__ == "__main__":
    main()
