"""``assertion: per_caller``: one signed assertion per caller and system, reused up to
30 s, through the real proxy (gateway and echo upstream listening on sockets). The
system is registered with ``govgate system add --assertion per_caller`` (the CLI in
process, the same database); the default stays one assertion per request."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audit.tables import records
from gateway.cli.main import cli
from gateway.errors import StateFileError
from gateway.statefile import export_state
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers


def govgate(env: dict[str, str], *args: str) -> str:
    environ: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GOVGATE_")}
    environ.update(env)
    result = CliRunner().invoke(cli, list(args), env=environ, prog_name="govgate")
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def claims_of(assertion: str) -> dict[str, Any]:
    body = assertion.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


async def call(world: World, path: str, token: str) -> tuple[str, str, Any]:
    """The assertion and X-Request-ID the upstream received, and the audit record."""
    r = await world.request("GET", path, token=token)
    assert r.status == 200, r.body
    got = dict(world.echo.seen[-1]["headers"])
    record = world.audit.records[-1]
    assert record.request_id == got["x-request-id"] == r.headers["x-request-id"]
    return got["x-govgate-assertion"], got["x-request-id"], record


async def test_per_caller_assertion_is_reused_within_its_window(
        world: World, env: dict[str, str]) -> None:
    upstream = f"http://127.0.0.1:{world.upstream.port}"  # type: ignore[union-attr]
    out = govgate(env, "system", "add", "reuse", "--name", "复用系统", "-d", "jgswj",
                  "--upstream", upstream, "--assertion", "per_caller")
    assert "reuse" in out
    govgate(env, "system", "add", "reuse2", "--name", "另一系统", "-d", "jgswj",
            "--upstream", upstream, "--assertion", "per_caller")
    world.built.proxy.systems.invalidate()
    base = world.services.clock()
    offset = [0.0]
    world.services.clock = lambda: base + timedelta(seconds=offset[0])

    token = world.token()
    first, rid1, rec1 = await call(world, "/s/reuse/a", token)
    again, rid2, rec2 = await call(world, "/s/reuse/b?x=1", token)
    # the same signed assertion, a request id of its own each, both bound in the audit
    assert again == first and rid1 != rid2
    claims = claims_of(first)
    assert claims["aud"] == "reuse" and claims["sub"] == "zhang.san"
    assert "request_id" not in claims and "htm" not in claims and "htu" not in claims
    assert claims["exp"] - claims["iat"] == 30
    assert rec1.extra["assertion_jti"] == rec2.extra["assertion_jti"] == claims["jti"]
    assert claims["jti"] not in (rid1, rid2)
    # a new token of the same caller: the same assertion (it states the same)
    assert (await call(world, "/s/reuse/c", world.token()))[0] == first
    # another caller, another system, other rights: never the same one
    other = (await call(world, "/s/reuse/a", world.token(sub="li.si")))[0]
    assert other != first and claims_of(other)["sub"] == "li.si"
    elsewhere = (await call(world, "/s/reuse2/a", token))[0]
    assert elsewhere != first and claims_of(elsewhere)["aud"] == "reuse2"
    promoted = world.token(sub="wang.wu", roles=["staff"])
    before = (await call(world, "/s/reuse/a", promoted))[0]
    world.token(sub="wang.wu", roles=["staff", "data_steward"])  # the user's roles now
    after = (await call(world, "/s/reuse/a", promoted))[0]
    assert after != before and claims_of(after)["roles"] == ["data_steward", "staff"]
    # a token that ends sooner than the window: the assertion ends with it
    short = world.token(sub="zhao.liu", exp=int(base.timestamp()) + 10)
    assert claims_of((await call(world, "/s/reuse/a", short))[0])["exp"] == \
        int(base.timestamp()) + 10
    # forward-auth hands nginx the same per-caller assertion, bound in its record too
    for target in ("/s/reuse/x", "/s/reuse/y?z=1"):
        r = await world.request("GET", "/auth/verify", token=token, headers=verify_headers(
            target))
        assert r.status == 200 and r.headers["x-govgate-assertion"] == first
        record = world.audit.records[-1]
        assert record.event_type == "forward_auth"
        assert record.extra["assertion_jti"] == claims["jti"]
        assert record.request_id == r.headers["x-request-id"]
    # 29 s on: still the same; past 30 s: a new one
    offset[0] = 29
    assert (await call(world, "/s/reuse/d", token))[0] == first
    offset[0] = 31
    renewed, _rid, rec = await call(world, "/s/reuse/d", token)
    assert renewed != first and claims_of(renewed)["iat"] == claims["iat"] + 31
    assert rec.extra["assertion_jti"] == claims_of(renewed)["jti"] != claims["jti"]

    # the default system: one assertion per request, bound to it, no assertion_jti
    one, rid_a, rec_a = await call(world, "/s/echo/a", token)
    two, rid_b, _rec = await call(world, "/s/echo/a", token)
    assert one != two
    assert claims_of(one)["request_id"] == claims_of(one)["jti"] == rid_a
    assert claims_of(two)["request_id"] == rid_b and claims_of(one)["htu"] == "/a"
    assert "assertion_jti" not in rec_a.extra

    # back to per request from the CLI; the state file says what is set
    govgate(env, "system", "update", "reuse2", "--assertion", "per_request")
    with world.services.engine.connect() as conn:  # the CLI's changes are audited
        changed = [json.loads(e) if isinstance(e, str) else e for e in conn.execute(
            sa.select(records.c.extra).where(records.c.event_type == "admin_change")
        ).scalars()]
    assert {"action": "update", "kind": "system", "key": "reuse2", "fields": ["assertion"],
            "change": "state_applied"} in changed, changed
    exported = {s["code"]: s for s in export_state(world.services.engine)["systems"]}
    assert exported["reuse"]["assertion"] == "per_caller"
    assert "assertion" not in exported["reuse2"] and "assertion" not in exported["echo"]
    world.built.proxy.systems.invalidate()
    x, rid_x, _rec = await call(world, "/s/reuse2/a", token)
    assert claims_of(x)["request_id"] == rid_x


def test_the_setting_is_one_of_two(world: World, env: dict[str, str]) -> None:
    with pytest.raises(StateFileError) as info:
        world.built.state_applier().apply({"systems": [{
            "code": "reuse", "name": "复用系统", "department": "jgswj",
            "upstream": "http://127.0.0.1:9", "assertion": "per_day"}]})
    assert any("assertion must be one of per_request, per_caller" in p
               for p in info.value.problems), info.value.problems
    environ: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GOVGATE_")}
    environ.update(env)
    result = CliRunner().invoke(cli, ["system", "update", "echo", "--assertion", "per_day"],
                                env=environ, prog_name="govgate")
    assert result.exit_code == 2 and "per_day" in result.output
