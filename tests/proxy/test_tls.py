"""TLS where agencies need it: an upstream behind the agency's own CA, a wrong CA
refused (502, audited), an upstream that requires a client certificate and gets the
one the system's settings name (its key sealed at rest), and ``govgate serve`` over
HTTPS. Certificates from trustme, servers on 127.0.0.1."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trustme

from gateway.errors import StateFileError
from gateway.tables import systems
from tests.proxy.conftest import Echo, Served, World, echo_app, free_socket


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("govgate-gateway")
    files = {
        "ca": tmp_path / "ca.pem", "other_ca": tmp_path / "other-ca.pem",
        "server": tmp_path / "server.pem", "server_key": tmp_path / "server.key",
        "client": tmp_path / "client.pem", "client_key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    other_ca.cert_pem.write_to_path(str(files["other_ca"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    server.cert_chain_pems[0].write_to_path(str(files["server"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client"]))
    return {k: str(v) for k, v in files.items()}


def https_upstream(pki: dict[str, Any], echo: Echo, *, require_client: bool) -> Served:
    extra: dict[str, Any] = {}
    if require_client:
        extra = {"ssl_ca_certs": pki["ca"], "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return Served(echo_app(echo), ssl_certfile=pki["server"], ssl_keyfile=pki["server_key"],
                  **extra)


def declare(world: World, port: int, tls: dict[str, Any] | None) -> None:
    entry: dict[str, Any] = {"code": "secure", "name": "加密系统", "department": "jgswj",
                             "upstream": f"https://127.0.0.1:{port}"}
    if tls is not None:
        entry["tls"] = tls
    world.built.state_applier().apply({"systems": [entry]})
    world.built.proxy.systems.invalidate()


async def test_an_upstream_behind_the_agencys_ca(world: World, pki: dict[str, Any]) -> None:
    echo = Echo()
    async with https_upstream(pki, echo, require_client=False) as up:
        declare(world, up.port, {"ca_file": pki["ca"], "min_version": "1.2"})
        r = await world.request("GET", "/s/secure/api/x", token=world.token())
        assert r.status == 200, r.body
        assert echo.seen[-1]["raw_path"] == "/api/x"
        # the wrong CA: refused, audited, nothing reached the upstream
        declare(world, up.port, {"ca_file": pki["other_ca"]})
        before = len(echo.seen)
        r = await world.request("GET", "/s/secure/api/x", token=world.token())
        assert r.status == 502
        rec = world.audit.records[-1]
        assert rec.status == 502 and "CERTIFICATE_VERIFY_FAILED" in rec.extra["upstream_error"]
        assert len(echo.seen) == before
        # no CA named: the platform's trust store, which does not know this CA
        declare(world, up.port, None)
        assert (await world.request("GET", "/s/secure/api/x", token=world.token())).status == 502


async def test_mtls_to_an_upstream_that_requires_a_client_certificate(
        world: World, pki: dict[str, Any]) -> None:
    echo = Echo()
    async with https_upstream(pki, echo, require_client=True) as up:
        declare(world, up.port, {"ca_file": pki["ca"]})  # no client certificate
        assert (await world.request("GET", "/s/secure/api/x", token=world.token())).status == 502
        declare(world, up.port, {"ca_file": pki["ca"], "cert_file": pki["client"],
                                 "key_file": pki["client_key"], "min_version": "1.3"})
        r = await world.request("GET", "/s/secure/api/x", token=world.token())
        assert r.status == 200, r.body
        # the key is sealed at rest, never stored or exported in the clear
        with world.services.engine.connect() as conn:
            stored = conn.execute(sa.select(systems.c.tls).where(systems.c.code == "secure")
                                  ).scalar()
        key_text = Path(pki["client_key"]).read_text()
        assert "PRIVATE KEY" not in json.dumps(stored) and stored["key_sealed"]
        from gateway.statefile import dump_yaml, export_state

        exported = dump_yaml(export_state(world.services.engine))
        assert "PRIVATE KEY" not in exported and "cert_pem" in exported
        assert key_text.splitlines()[1] not in exported
        # applying the same file again changes nothing; the export applies too
        plan = world.built.state_applier().apply({"systems": [{
            "code": "secure", "name": "加密系统", "department": "jgswj",
            "upstream": f"https://127.0.0.1:{up.port}",
            "tls": {"ca_file": pki["ca"], "cert_file": pki["client"],
                    "key_file": pki["client_key"], "min_version": "1.3"}}]},
            dry_run=True)
        assert plan == []
        world.built.proxy.systems.invalidate()
        assert (await world.request("GET", "/s/secure/api/y", token=world.token())).status == 200


def test_bad_tls_settings_are_refused(world: World, pki: dict[str, Any]) -> None:
    for tls, why in (({"ca_file": "/nonexistent.pem"}, "ca"),
                     ({"cert_file": pki["client"]}, "key_file"),
                     ({"cert_file": pki["client"], "key_file": pki["server_key"]}, "do not load"),
                     ({"ca_file": pki["ca"], "min_version": "1.0"}, "min_version"),
                     ({"ca_file": pki["ca"], "verify": False}, "unknown key")):
        with pytest.raises(StateFileError) as info:
            declare(world, 9, tls)
        assert any(why in p for p in info.value.problems), (tls, info.value.problems)
    with pytest.raises(StateFileError) as info:
        world.built.state_applier().apply({"systems": [{
            "code": "plain", "name": "明文", "department": "jgswj",
            "upstream": "http://127.0.0.1:9", "tls": {"ca_file": pki["ca"]}}]})
    assert "https upstream" in info.value.problems[0]


def test_govgate_serve_over_https(env: dict[str, str], pki: dict[str, Any]) -> None:
    init = subprocess.run([sys.executable, "-m", "gateway.cli", "init"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
         "--tls-cert", pki["server"], "--tls-key", pki["server_key"]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"https://127.0.0.1:{port}/healthz",
                              verify=ssl.create_default_context(cafile=pki["ca"]))
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served there
            httpx.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        proc.terminate()
        proc.wait(15)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    missing = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--tls-cert", pki["server"]],
        env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "tls_key" in missing.stderr
