"""``identity_over_tls_only``: a system whose identity (the assertion, plain identity
headers) may travel only over verified TLS. Through the real proxy: to a plain-http
upstream the request is refused (502 problem+json, audited) and the upstream never
receives it; to an https upstream whose certificate the system's CA verifies it is
forwarded, identity and all. Certificates from trustme."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from gateway.errors import StateFileError
from gateway.statefile import export_state
from tests.proxy.conftest import Echo, Served, World, echo_app


def declare(world: World, code: str, upstream: str, **extra: Any) -> None:
    world.built.state_applier().apply({"systems": [{
        "code": code, "name": "只走加密通道的系统", "department": "jgswj", "upstream": upstream,
        "identity_over_tls_only": True, "identity_headers": "both", **extra}]})
    world.built.proxy.systems.invalidate()


async def test_identity_goes_only_over_verified_tls(world: World, tmp_path: Path) -> None:
    # plain http: refused before a byte is sent
    declare(world, "guarded", f"http://127.0.0.1:{world.upstream.port}")
    before = len(world.echo.seen)
    r = await world.request("GET", "/s/guarded/api/x", token=world.token())
    assert r.status == 502 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:govgate:error:insecure_upstream"
    assert len(world.echo.seen) == before
    rec = world.audit.records[-1]
    assert rec.system == "guarded" and rec.status == 502 and rec.outcome == "error"
    assert rec.extra["upstream_error"] == (
        "insecure: identity_over_tls_only and the upstream is http")
    # the same system without the setting is reached over http as before
    world.built.state_applier().apply({"systems": [{
        "code": "guarded", "name": "只走加密通道的系统", "department": "jgswj",
        "upstream": f"http://127.0.0.1:{world.upstream.port}"}]})
    world.built.proxy.systems.invalidate()
    assert (await world.request("GET", "/s/guarded/api/x", token=world.token())).status == 200

    # https, the certificate verified against the system's CA: forwarded, identity and all
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    ca_file, cert, key = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    echo = Echo()
    async with Served(echo_app(echo), ssl_certfile=str(cert), ssl_keyfile=str(key)) as up:
        declare(world, "guarded", f"https://127.0.0.1:{up.port}", tls={"ca_file": str(ca_file)})
        r = await world.request("GET", "/s/guarded/api/x", token=world.token())
        assert r.status == 200, r.body
        received = dict(echo.seen[-1]["headers"])
        assert received["x-govgate-assertion"].count(".") == 2
        assert received["x-govgate-user"] == "zhang.san"
    exported = next(s for s in export_state(world.services.engine)["systems"]
                    if s["code"] == "guarded")
    assert exported["identity_over_tls_only"] is True


def test_the_setting_is_true_or_false(world: World) -> None:
    with pytest.raises(StateFileError) as info:
        declare(world, "guarded", "https://127.0.0.1:9", identity_over_tls_only="yes")
    assert any("identity_over_tls_only must be true or false" in p
               for p in info.value.problems), info.value.problems
