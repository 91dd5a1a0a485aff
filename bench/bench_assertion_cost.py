"""What the per-request assertion costs a proxied request, in process, one at a time:

    .venv/bin/python bench/bench_assertion_cost.py [--requests 500] [--rounds 7]

A signature measured in a loop of signatures keeps its tables in the CPU's caches; on
the proxy's path it runs between a request's Python, which it pushes out of them and
which then runs slower. So each figure here is a request to the per-caller system
(``bench-pc`` of ``bench_proxy.py``: admission, forwarding to nginx, the response, no
signature) with something before it, alternated in rounds in one process so that
every figure meets the same load:

    per_caller request          the request alone
    + ES256 sign                cryptography's P-256 signature of 900 bytes first
    + EdDSA sign                Ed25519's
    + the proxy's mint          the proxy's own ``AssertionSigner.mint`` (ES256)
    per-request system          a request to ``bench`` (the proxy mints for it)
    ES256 / EdDSA sign alone    in a loop of signatures
    ES256 / EdDSA verify alone  what an upstream's check of one costs

Thread CPU (the event loop's thread) per request, median of the rounds; the audit
append is a no-op (the journal's sync would dominate one request at a time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_inprocess  # noqa: E402
import bench_proxy  # noqa: E402

MESSAGE = b"x" * 900  # about an assertion's signing input


def _signers() -> dict[str, Callable[[], Any]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    es = ec.generate_private_key(ec.SECP256R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    ecdsa = ec.ECDSA(hashes.SHA256())
    es_sig, ed_sig = es.sign(MESSAGE, ecdsa), ed.sign(MESSAGE)
    es_pub, ed_pub = es.public_key(), ed.public_key()
    return {
        "es_sign": lambda: decode_dss_signature(es.sign(MESSAGE, ecdsa)),
        "ed_sign": lambda: ed.sign(MESSAGE),
        "es_verify": lambda: es_pub.verify(es_sig, MESSAGE, ecdsa),
        "ed_verify": lambda: ed_pub.verify(ed_sig, MESSAGE),
    }


async def _measure(app: Any, services: Any, requests: int, rounds: int) -> dict[str, float]:
    from gateway.request_id import new_request_id

    sent = [(b"host", b"127.0.0.1:8080"), (b"authorization", TOKEN[0].encode()),
            (b"accept", b"*/*")]
    per_caller = bench_inprocess._caller(app, "GET", "/s/bench-pc/api/x", sent, b"")
    per_request = bench_inprocess._caller(app, "GET", "/s/bench/api/x", sent, b"")
    sign = _signers()
    proxy = app.state.gateway.proxy

    async def noop(_record: Any) -> None:
        return None

    services.audit.append = noop  # one at a time, each record's sync would dominate
    for _ in range(100):  # warm-up: the token cache, the directory, the pool
        await per_caller()
        await per_request()
    who = WHO[0]

    def mint() -> None:
        proxy.signer.mint(who, issuer=services.settings.issuer, system="bench",
                          request_id=new_request_id(), now=services.clock(), lifetime=60,
                          method="GET", path="/api/x")

    def before(step: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            step()
            await per_caller()
        return run

    def alone(step: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            step()
        return run

    cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("per_caller request", per_caller),
        ("+ ES256 sign", before(sign["es_sign"])),
        ("+ EdDSA sign", before(sign["ed_sign"])),
        ("+ the proxy's mint (ES256)", before(mint)),
        ("per-request system", per_request),
        ("ES256 sign alone", alone(sign["es_sign"])),
        ("EdDSA sign alone", alone(sign["ed_sign"])),
        ("ES256 verify alone", alone(sign["es_verify"])),
        ("EdDSA verify alone", alone(sign["ed_verify"])),
    ]
    figures: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, case in cases:
            started = time.thread_time()
            for _ in range(requests):
                await case()
            figures[name].append((time.thread_time() - started) / requests * 1e6)
    return {name: statistics.median(runs) for name, runs in figures.items()}


TOKEN: list[str] = []
WHO: list[Any] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    requests = max(50, min(args.requests, 10_000))
    rounds = max(1, min(args.rounds, 21))

    from gateway.app import create_app
    from gateway.idp.authenticator import Principal
    from gateway.proxy.endpoint import ProxyConfig
    from gateway.root import Seams
    from gateway.services import open_services
    from gateway.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="govgate-assertion-cost-"))
    ports = {k: bench_proxy.free_port() for k in ("a", "b", "c", "e", "f", "g")}
    (tmp / "nginx.conf").write_text(bench_proxy.NGINX_CONF.format(
        tmp=tmp, body=bench_proxy.BODY, **ports))
    nginx = subprocess.Popen([bench_proxy.NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
    try:
        TOKEN.append("Bearer " + bench_proxy.setup_govgate(tmp / "home", ports["a"]))
        WHO.append(Principal("li.si", "li.si", "czt", "gx",
                             frozenset({"staff", "data_steward"}), "finance-system",
                             frozenset({"proxy"}), None, "jti", "bearer"))
        bench_proxy.wait_port(ports["a"])
        services = open_services(load_settings(
            {"GOVGATE_HOME": str(tmp / "home")},
            {"audit_path": "journal", "audit_index_seconds": 3600.0}))
        app = create_app(services, seams=Seams(proxy_config=ProxyConfig(rate=1e9, burst=1e9)))
        found = bench_inprocess._run(_measure(app, services, requests, rounds))
        print(f"thread CPU per step, in process, one at a time, {requests} x {rounds} rounds "
              f"alternated, {time.strftime('%H:%M', time.gmtime())} UTC, load average "
              f"{os.getloadavg()[0]:.1f}")
        alone = found["per_caller request"]
        for name, us in found.items():
            extra = f"  (+{us - alone:.0f})" if name.startswith(("+", "per-request")) else ""
            print(f"  {name:30s} {us:7.1f} us{extra}")
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
