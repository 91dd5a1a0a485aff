"""An old system's fixed credential at /s/ (gateway.proxy.static_credentials): HTTP Basic
with its client id and secret, or X-Api-Key, opted in per client, through the real proxy
to a real upstream; and curl's ``Expect: 100-continue`` met by the gateway, not sent on."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from urllib.parse import quote

from gateway.admin import clients as ops
from gateway.app import create_app
from gateway.idp.oauth2.clients import CACHE_SECONDS
from tests.proxy.conftest import Served, World, raw_request

ENERGY = {"client_id": "energy-system", "name": "能耗监测系统", "department": "jgswj",
          "grant_types": ["client_credentials"], "scope": "proxy"}


def basic(client_id: str, secret: str) -> tuple[str, str]:
    # curl -u id:secret, form-encoded first as RFC 6749 section 2.3.1 asks
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return ("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())


async def until(world: World, headers: list[tuple[str, str]], status: int) -> int:
    """The status once it is ``status`` (a change reaches the proxy through the client
    registry's cache, CACHE_SECONDS), or the last one seen."""
    for _ in range(int(3 * CACHE_SECONDS / 0.1)):
        got = (await world.request("GET", "/s/echo/api/meters", headers=headers)).status
        if got == status:
            return got
        await asyncio.sleep(0.1)
    return got


async def test_an_opted_in_clients_basic_and_api_key_call_as_its_token(
        world: World) -> None:
    built = world.built
    secret = ops.add_client(built, ENERGY)
    assert secret
    creds = basic("energy-system", secret)
    # not opted in: refused as before, the token endpoint named, the secret unchecked
    r = await world.request("GET", "/s/echo/api/meters", headers=[creds])
    assert r.status == 401 and "/oauth2/token" in r.json()["detail"], r.body
    assert world.audit.records[-1].reason == \
        "not a bearer token: the Authorization scheme is Basic"

    assert ops.set_static_credential(built, "energy-system", "basic") is None
    assert await until(world, [creds], 200) == 200
    r = await world.request("GET", "/s/echo/api/meters?day=1", headers=[creds])
    assert r.status == 200, r.body
    seen = dict((k.lower(), v) for k, v in r.json()["headers"])
    assert "authorization" not in seen  # the secret never reaches the upstream
    claims = world.services.keys.verify_jwt("assertion", seen["x-govgate-assertion"])
    assert claims["client_id"] == "energy-system" and claims["department"] == "jgswj"
    assert claims["sub"] == "client:energy-system" or claims.get("username") is None
    record = world.audit.records[-1]
    assert (record.status, record.actor_client, record.actor_user) == (
        200, "energy-system", None)
    assert record.extra["authenticated_by"] == "basic" and secret not in repr(record)

    # a wrong secret: 401, audited as such, the secret not recorded
    wrong = basic("energy-system", "not-the-secret-0123456789")
    r = await world.request("GET", "/s/echo/api/meters", headers=[wrong])
    assert r.status == 401
    record = world.audit.records[-1]
    assert record.reason == "static credential (basic): wrong secret", record.reason
    assert record.actor_client == "energy-system" and "not-the-secret" not in repr(record)

    # rotated: the old secret refused within the registry's second, the new one taken
    new = ops.rotate_secret(built, "energy-system")
    assert await until(world, [creds], 401) == 401
    assert await until(world, [basic("energy-system", new)], 200) == 200

    # an API key instead: Basic refused as before, the key taken, never sent upstream
    key = ops.set_static_credential(built, "energy-system", "api_key")
    assert key and key.startswith("energy-system.")
    assert await until(world, [("X-Api-Key", key)], 200) == 200
    r = await world.request("GET", "/s/echo/api/meters", headers=[("X-Api-Key", key)])
    assert r.status == 200
    assert "x-api-key" not in dict((k.lower(), v) for k, v in r.json()["headers"])
    assert world.audit.records[-1].extra["authenticated_by"] == "api_key"
    assert key.split(".", 1)[1] not in repr(world.audit.records[-1])
    r = await world.request("GET", "/s/echo/api/meters", headers=[
        basic("energy-system", new)])
    assert r.status == 401
    # beside a token the key is the upstream's business: forwarded as before
    r = await world.request("GET", "/s/echo/api/meters", token=world.token(),
                            headers=[("X-Api-Key", "the-upstreams-own")])
    assert r.status == 200, r.body
    assert ("x-api-key", "the-upstreams-own") in [(k.lower(), v) for k, v in
                                                  r.json()["headers"]]
    # a new key ends the one before
    again = ops.set_static_credential(built, "energy-system", "api_key")
    assert again and again != key
    assert await until(world, [("X-Api-Key", key)], 401) == 401
    assert world.audit.records[-1].reason == "static credential (api_key): wrong API key"

    # disabled: refused within the registry's second
    ops.disable_client(built, "energy-system")
    assert await until(world, [("X-Api-Key", again)], 401) == 401


async def test_failed_attempts_are_limited_and_plain_http_off_loopback_refused(
        world: World) -> None:
    built = world.built
    secret = ops.add_client(built, ENERGY)
    assert secret
    ops.set_static_credential(built, "energy-system", "basic")
    good = basic("energy-system", secret)
    assert await until(world, [good], 200) == 200
    wrong = basic("energy-system", "guess-0123456789abcdef")
    statuses = [(await world.request("GET", "/s/echo/api/m", headers=[wrong])).status
                for _ in range(11)]
    assert statuses == [401] * 10 + [429], statuses
    assert world.audit.records[-1].reason == \
        "static credential (basic): too many failed attempts"
    # the system holding the right secret goes on meanwhile
    assert (await world.request("GET", "/s/echo/api/m", headers=[good])).status == 200

    # a secret of the operator's choosing with "+" and "%", sent by curl -u as it is:
    # refused, the audit saying how to send it, not counted as a guess
    chosen = "Energy+Secret%41-0123456789abcdef"
    built.state_applier().apply({"clients": [{**ENERGY, "client_id": "meter-box",
                                              "secret": chosen, "static_credential": "basic"}]})
    as_is = "Basic " + base64.b64encode(f"meter-box:{chosen}".encode()).decode()
    assert await until(world, [basic("meter-box", chosen)], 200) == 200
    for _ in range(11):
        r = await world.request("GET", "/s/echo/api/m", headers=[("Authorization", as_is)])
        assert r.status == 401
    assert world.audit.records[-1].reason == "static credential (basic): the secret was " \
        "sent without form-encoding (send + as %2B and % as %25)"
    assert (await world.request("GET", "/s/echo/api/m", headers=[
        basic("meter-box", chosen)])).status == 200

    # behind a trusted front proxy: refused over plain HTTP from off the loopback (the
    # secret crossed the network), taken where the front proxy ended TLS
    s = world.services
    original = s.settings
    s.settings = dataclasses.replace(original, trusted_proxies=("127.0.0.0/8",))
    try:
        async with Served(create_app(built)) as behind:
            def sent(proto: str) -> list[tuple[str, str]]:
                return [good, ("X-Forwarded-For", "203.0.113.7"),
                        ("X-Forwarded-Proto", proto)]
            plain = await raw_request(behind.port, "GET", "/s/echo/api/m", sent("http"))
            record = world.audit.records[-1]
            tls = await raw_request(behind.port, "GET", "/s/echo/api/m", sent("https"))
    finally:
        s.settings = original
    assert plain.status == 401 and record.source_ip == "203.0.113.7"
    assert record.reason == \
        "static credential (basic) over plain HTTP from off the loopback"
    assert tls.status == 200, tls.body


async def test_expect_100_continue_is_met_here_not_sent_upstream(world: World) -> None:
    # curl sends Expect: 100-continue with a body over 1 KiB; the gateway's server
    # answers it, and an upstream that refuses expectations (417) must never see it
    body = b'{"q": "' + b"x" * 4000 + b'"}'
    r = await world.request("POST", "/s/echo/api/search", token=world.token(), headers=[
        ("Expect", "100-continue"), ("Content-Type", "application/json")], body=body)
    # 100 Continue from the gateway's server, then the answer
    assert r.status == 100 and r.body.startswith(b"HTTP/1.1 200 OK\r\n"), r.body
    seen = json.loads(r.body.partition(b"\r\n\r\n")[2])
    assert seen["body_len"] == len(body)
    assert "expect" not in {k.lower() for k, _ in seen["headers"]}
