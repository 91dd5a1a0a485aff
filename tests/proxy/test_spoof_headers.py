"""Headers edge proxies set for the systems behind them (client certificates, signed-in
users, client addresses) never reach an upstream from a client; a system can name the
only client headers it receives (``forward_headers``)."""

from __future__ import annotations

import pytest

from gateway.proxy.headers import HeaderPolicy
from tests.proxy.conftest import World

# every one of them named in issue #20, then more members of the same families
EDGE_HEADERS = [
    ("Client-Cert", ":MIIB...:"), ("Client-Cert-Chain", ":MIIB...:"),
    ("X-SSL-Client-Verify", "SUCCESS"), ("X-SSL-Client-S-DN", "CN=admin"),
    ("SSL-Client-Cert", "-----BEGIN"), ("SSL-Client-Verify", "SUCCESS"),
    ("X-Client-Verify", "SUCCESS"), ("X-Client-S-DN", "CN=admin"),
    ("X-Client-Certificate", "MIIB"), ("X-SSL-Cert", "MIIB"), ("X-ARR-ClientCert", "MIIB"),
    ("X-Tls-Client-Cert", "MIIB"),
    ("X-Auth-User", "admin"), ("Auth-User", "admin"), ("X-Authenticated-User", "admin"),
    ("X-Proxy-User", "admin"), ("X-Credential-Username", "admin"),
    ("X-Consumer-Username", "admin"), ("X-MS-Client-Principal-Name", "admin"),
    ("X-Amzn-OIDC-Identity", "admin"), ("Cf-Access-Authenticated-User-Email", "admin@gov"),
    ("Remote-Groups", "admins"), ("Remote-Email", "admin@gov"), ("Remote-Name", "admin"),
    ("X-Client-IP", "10.0.0.1"), ("True-Client-IP", "10.0.0.1"),
    # more of each family
    ("X-SSL-Client-I-DN", "CN=ca"), ("X-Client-Cert-Chain", "MIIB"),
    ("X-Amzn-Mtls-Clientcert", "MIIB"), ("X-ARR-SSL", "2048|256|CN=ca"),
    ("X-Authenticated-Userid", "admin"), ("X-Consumer-Id", "1"), ("X-Credential-Identifier", "a"),
    ("X-Anonymous-Consumer", "false"), ("X-MS-Client-Principal", "e30="),
    ("X-MS-Token-AAD-Access-Token", "t"), ("X-Amzn-Oidc-Data", "jwt"),
    ("Cf-Access-Jwt-Assertion", "jwt"), ("X-Goog-Authenticated-User-Email", "admin@gov"),
    ("X-Goog-IAP-JWT-Assertion", "jwt"), ("X-Pomerium-Claim-Email", "admin@gov"),
    ("Remote-User", "admin"), ("X-Remote-Addr", "10.0.0.1"), ("X-JWT-Assertion", "jwt"),
    ("OIDC-Claim-Sub", "admin"), ("X-Envoy-External-Address", "10.0.0.1"),
    ("X-Cluster-Client-IP", "10.0.0.1"), ("Fastly-Client-IP", "10.0.0.1"),
    ("Client-IP", "10.0.0.1"), ("Cf-Connecting-IP", "10.0.0.1"),
    ("X-Originating-IP", "10.0.0.1"), ("X-Proxy-User-Groups", "admins"),
    # spelled otherwise
    ("x-ssl-client-verify", "SUCCESS"), ("X-SSL-CLIENT-S-DN", "CN=admin"),
]
ORDINARY = [
    ("Accept", "application/json"), ("User-Agent", "curl/8"),
    ("X-Requested-With", "XMLHttpRequest"), ("Accept-Language", "zh-CN"),
    ("If-None-Match", '"abc"'), ("Referer", "http://gw/x"),
    ("X-Correlation-Purpose", "audit"), ("Cache-Control", "no-cache"),
]


async def test_edge_proxy_header_families_never_reach_the_upstream(world: World) -> None:
    r = await world.request("POST", "/s/echo/api/x", token=world.token(),
                            headers=[*EDGE_HEADERS, *ORDINARY,
                                     ("Content-Type", "application/json")], body=b"{}")
    assert r.status == 200, r.body
    got = {k.lower(): v for k, v in r.json()["headers"]}
    for name, _ in EDGE_HEADERS:
        assert name.lower() not in got, name
    for name, value in [*ORDINARY, ("Content-Type", "application/json")]:
        assert got.get(name.lower()) == value, name
    assert not any(v in ("admin", "SUCCESS", "CN=admin", "10.0.0.1") for v in got.values())
    assert got["x-forwarded-for"] == "127.0.0.1"


@pytest.mark.parametrize("name", ["X-Client-Verify", "x_client_verify", "X-SSL-Client-S-DN ",
                                  "REMOTE-GROUPS", "true_client_ip", "X-Auth-Token"])
def test_families_match_in_any_spelling(name: str) -> None:
    assert HeaderPolicy().is_identity(name)


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "X-Requested-With", "User-Agent",
                                  "Authority", "X-Sslx", "Remotely", "X-Clientless",
                                  "Sec-Fetch-Site", "If-Modified-Since", "Origin"])
def test_ordinary_names_are_not_in_a_family(name: str) -> None:
    # "Authority", "Remotely", "X-Clientless" begin like a family, without its "-"
    assert not HeaderPolicy().is_identity(name)


async def test_forward_headers_lets_only_the_named_client_headers_pass(world: World) -> None:
    from gateway.statefile import export_state

    def apply(**extra: object) -> None:
        world.built.state_applier().apply({"systems": [
            {"code": "echo", "name": "回显系统", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{world.upstream.port}", **extra}]})
        world.built.proxy.systems.invalidate()

    apply(forward_headers=["X-Requested-With", "accept", "Cookie"])
    headers = [*ORDINARY, ("Content-Type", "application/json"), ("Content-Encoding", "identity"),
               ("Cookie", "theme=dark; gg_session=stolen"), ("X-Remote-User", "admin"),
               ("Expect-CT", "x")]
    r = await world.request("POST", "/s/echo/api/x", token=world.token(), headers=headers,
                            body=b"{}")
    assert r.status == 200, r.body
    client_side = {k.lower() for k, _ in r.json()["headers"]} - {
        "host", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-request-id", "x-govgate-assertion"}
    assert client_side == {"accept", "x-requested-with", "cookie", "content-type",
                           "content-encoding"}
    got = {k.lower(): v for k, v in r.json()["headers"]}
    assert got["cookie"] == "theme=dark"  # the gateway's cookies still stay behind
    exported = [s for s in export_state(world.services.engine)["systems"]
                if s["code"] == "echo"]
    assert exported[0]["forward_headers"] == ["accept", "cookie", "x-requested-with"]

    # without the key the system is back to the default: every header but the families
    apply()
    r = await world.request("GET", "/s/echo/api/x", token=world.token(), headers=headers)
    got = {k.lower(): v for k, v in r.json()["headers"]}
    assert got["user-agent"] == "curl/8" and "x-remote-user" not in got
    exported = [s for s in export_state(world.services.engine)["systems"]
                if s["code"] == "echo"]
    assert "forward_headers" not in exported[0]


def test_forward_headers_cannot_name_a_header_the_gateway_drops(world: World) -> None:
    from gateway.errors import ValidationError

    for bad, says in [(["X-Remote-User"], "never forwarded"),
                      (["Authorization"], "never forwarded"),
                      (["X-SSL-Client-Verify"], "never forwarded"),
                      (["Host"], "never forwarded"),
                      (["X_Requested_With"], "not a header name"),
                      (["bad name"], "not a header name"),
                      ("Accept", "must be a list")]:
        with pytest.raises(ValidationError) as err:
            world.built.state_applier().apply({"systems": [
                {"code": "other", "name": "其他", "department": "jgswj",
                 "upstream": "http://127.0.0.1:9", "forward_headers": bad}]})
        assert says in " ".join(err.value.problems), (bad, err.value.problems)
