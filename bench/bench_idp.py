"""Identity provider: client-credentials tokens and introspections per second.

    python -m bench bench_idp            (or: python bench/bench_idp.py [--duration 10]
                                                  [--audit-path journal|database])

A fresh SQLite gateway with the demo clients and the audit log ON (every token
issued and every introspection is a durable, hash-chained audit record) runs
in one uvicorn process pinned to CPU 0; wrk (1 thread, 32 connections) on CPU 1
POSTs to /oauth2/token (client_secret_basic) and /oauth2/introspect.
In-run reference (the machine is shared and noisy, so compare ratios): a bare
Starlette app under the same uvicorn settings, pinned the same way, answering
the same POST with a small JSON body (no auth, no signing, no audit).
Second reference, the target's: panva's oidc-provider (Node.js), installed with
``npm install oidc-provider`` into a temporary folder, set up as govgate is
(``bench/oidc_provider/server.mjs``: client credentials, client_secret_basic, ES256
JWT access tokens), pinned to CPU 0 and loaded the same way; skipped with a line
when node or npm is missing or the install fails. Target: govgate's tokens/s with
the audit on at least 1.2x oidc-provider's in the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FINANCE = ("finance-system", "demo-finance-secret-0123456789abcdef")
WRK = shutil.which("wrk")
TARGET_RATIO = 1.2  # govgate's tokens/s over oidc-provider's, same run (issue #17)
OIDC_SERVER = Path(__file__).resolve().parent / "oidc_provider" / "server.mjs"


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
    env.update(GOVGATE_HOME=str(home), PYTHONPATH=str(ROOT))
    return env


def prepare(home: Path, port: int) -> None:
    from gateway.demo import DEMO_STATE
    from gateway.root import Seams, build_gateway
    from gateway.services import open_services
    from gateway.settings import load_settings
    from gateway.setup import initialise
    from gateway.statefile import load_file

    settings = load_settings(_env(home), {"issuer": f"http://127.0.0.1:{port}", "port": port})
    initialise(settings, password_factory=lambda: "Bench-Admin-Passw0rd!")
    services = open_services(settings)
    build_gateway(services, Seams(watch_policies=False)).state_applier().apply(
        load_file(DEMO_STATE))
    services.close()


def serve(home: Path, port: int, audit_path: str = "journal") -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.services import open_services
    from gateway.settings import load_settings

    settings = load_settings(_env(home), {"issuer": f"http://127.0.0.1:{port}", "port": port,
                                          "audit_path": audit_path})
    services = open_services(settings)  # with the production audit log (signed checkpoints)
    uvicorn.run(create_app(services, freeze_heap=True), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


def serve_reference(port: int) -> None:
    """A bare Starlette app: read the form, answer a small JSON body."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        return JSONResponse({"access_token": "x" * 32, "token_type": "Bearer",
                             "expires_in": 300, "grant_type": form.get("grant_type")})

    uvicorn.run(Starlette(routes=[Route("/oauth2/token", token, methods=["POST"])]),
                host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _post(url: str, body: str, auth: tuple[str, str]) -> dict[str, object]:
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={  # noqa: S310
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
        return dict(json.loads(resp.read()))


def run_wrk(url: str, body: str, auth: tuple[str, str], duration: int, connections: int,
            ) -> dict[str, float]:
    assert WRK, "wrk is needed (apt-get install wrk)"
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write('wrk.method = "POST"\n'
                 f'wrk.body = "{body}"\n'
                 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                 f'wrk.headers["Authorization"] = "Basic {basic}"\n')
        script = fh.name
    try:
        out = subprocess.run([*_pin(1), WRK, "-t1", f"-c{connections}", f"-d{duration}s",
                              "--latency", "-s", script, url], capture_output=True, text=True,
                             timeout=duration + 30, check=True).stdout
    finally:
        os.unlink(script)

    def ms(v: str) -> float:
        n, unit = float(re.match(r"[\d.]+", v).group(0)), re.sub(r"[\d.]", "", v)  # type: ignore[union-attr]
        return n * {"us": 0.001, "ms": 1.0, "s": 1000.0}.get(unit, 1.0)

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "p99": ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "non2xx": float(bad.group(1)) if bad else 0.0}


def _audit_count(home: Path) -> int:
    import sqlalchemy as sa

    from audit.tables import records

    engine = sa.create_engine(f"sqlite:///{home / 'govgate.db'}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(records)).scalar()
                       or 0)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--audit-path", choices=("database", "journal"), default="journal",
                        help="where a record is durable before the answer (the gateway's "
                             "audit_path; docs/audit-journal.md)")
    parser.add_argument("--role", choices=["server", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[2:] if sys.argv[1:2] == ["bench_idp"] else None)
    if args.role == "server":
        serve(Path(args.home), args.port, args.audit_path)
        return
    if args.role == "reference":
        serve_reference(args.port)
        return
    home = Path(tempfile.mkdtemp(prefix="govgate-bench-idp-"))
    port = _free_port()
    prepare(home, port)
    server = subprocess.Popen([*_pin(0), sys.executable, str(Path(__file__).resolve()),
                               "--role", "server", "--home", str(home), "--port", str(port),
                               "--audit-path", args.audit_path],
                              env=_env(home))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        token = _post(f"{base}/oauth2/token", "grant_type=client_credentials", FINANCE)
        before = _audit_count(home)
        cc = run_wrk(f"{base}/oauth2/token", "grant_type=client_credentials", FINANCE,
                     args.duration, args.connections)
        intro = run_wrk(f"{base}/oauth2/introspect", f"token={token['access_token']}",
                        FINANCE, args.duration, args.connections)
        if args.audit_path == "journal":
            time.sleep(2 * 0.5 + 0.5)  # the indexer loads the journal every 0.5 s
        audited = _audit_count(home) - before
        ref_port = _free_port()
        ref = subprocess.Popen([*_pin(0), sys.executable, str(Path(__file__).resolve()),
                                "--role", "reference", "--port", str(ref_port)], env=_env(home))
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", ref_port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            reference = run_wrk(f"http://127.0.0.1:{ref_port}/oauth2/token",
                                "grant_type=client_credentials", FINANCE, args.duration,
                                args.connections)
        finally:
            ref.terminate()
            ref.wait(10)
        print(f"date: {time.strftime('%Y-%m-%d')}, cpus: {os.cpu_count()}, server pinned to "
              f"CPU 0, wrk 1 thread/{args.connections} connections on CPU 1, "
              f"{args.duration} s each, SQLite, audit on (audit_path = {args.audit_path}), "
              f"load average {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
        for name, r in (("client_credentials token", cc), ("introspection", intro),
                        ("reference: bare Starlette", reference)):
            print(f"  {name:<25} {r['rps']:8.0f} req/s   p50 {r['p50']:.2f} ms   "
                  f"p99 {r['p99']:.2f} ms   non-2xx {r['non2xx']:.0f}   "
                  f"{r['rps'] / reference['rps']:.2f}x of the reference")
        print(f"  audit records written during the run: {audited}")
        oidc = run_oidc_provider(args.duration, args.connections)
        if oidc is None:
            print("  oidc-provider: SKIPPED (node/npm missing or `npm install oidc-provider` "
                  "failed): the token target is not judged in this run")
        else:
            ratio = cc["rps"] / oidc["rps"]
            print(f"  {'reference: oidc-provider':<25} {oidc['rps']:8.0f} req/s   "
                  f"p50 {oidc['p50']:.2f} ms   p99 {oidc['p99']:.2f} ms   "
                  f"non-2xx {oidc['non2xx']:.0f}   "
                  f"{oidc['rps'] / reference['rps']:.2f}x of the reference")
            print(f"  TARGET token endpoint, audit on >= {TARGET_RATIO}x oidc-provider: "
                  f"{ratio:.2f}x ({cc['rps']:.0f} vs {oidc['rps']:.0f} tokens/s): "
                  f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def run_oidc_provider(duration: int, connections: int) -> dict[str, float] | None:
    """oidc-provider installed into a temporary folder, served pinned to CPU 0 and
    loaded as govgate was; None when it cannot be installed or started."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="govgate-bench-oidc-"))
    try:
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "oidc-provider"],
            cwd=folder, capture_output=True, text=True, timeout=300, check=False)
        if installed.returncode != 0:
            print(f"  npm install oidc-provider failed: {installed.stderr.strip()[-300:]}",
                  file=sys.stderr)
            return None
        shutil.copy(OIDC_SERVER, folder / "server.mjs")
        port = _free_port()
        proc = subprocess.Popen([*_pin(0), node, "server.mjs", str(port), *FINANCE],
                                cwd=folder, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    _post(f"http://127.0.0.1:{port}/token", "grant_type=client_credentials",
                          FINANCE)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        return None
                    time.sleep(0.1)
            return run_wrk(f"http://127.0.0.1:{port}/token", "grant_type=client_credentials",
                           FINANCE, duration, connections)
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
