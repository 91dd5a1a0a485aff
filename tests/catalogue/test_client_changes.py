"""A catalogue grant that names a client, attacked by changing the client under it
(docs/seams.md, "Attack of 2026-12-05 (clients that change under their grants)"):
tokens issued before the change, the change made by ``govgate apply`` or the admin
API (another process's write: this gateway learns of it only through its client
registry's second), through the proxy in front of the demo's upstream, with the
system's assertion per request and per caller."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from gateway.cli.main import cli
from tests.catalogue.conftest import UPSTREAMS, World
from tests.wiring import apply_state

VEHICLES = "/s/vehicles/api/vehicles"
CLIENT: dict[str, Any] = {
    "client_id": "nn-web", "name": "市机关事务中心业务系统", "department": "nn-jgsw",
    "grant_types": ["authorization_code", "refresh_token"],
    "redirect_uris": ["http://127.0.0.1:9/callback"], "scope": "openid profile proxy",
    "secret": "nn-web-secret-0123456789abcdef0123"}
GRANT = {"resource": "JG-0001", "consumer": "nn-jgsw", "client": "nn-web",
         "items": ["plate_number", "brand"], "purpose": "驾驶员核验", "until": "2026-12-31"}
REGISTRY_SECONDS = 1.0  # gateway.idp.oauth2.clients.CACHE_SECONDS


def _setup(world: World, *, per_caller: bool) -> str:
    """nn-web, a client of nn-jgsw, holds a grant of JG-0001 for nn-jgsw; wang.wu's
    token through it (issued now, before any change)."""
    apply_state(world.services, {
        "systems": [{"code": "vehicles", "name": "vehicles", "department": "jgswj",
                     "upstream": f"http://{UPSTREAMS}/vehicles",
                     "assertion": "per_caller" if per_caller else "per_request"}],
        "clients": [CLIENT], "grants": [GRANT]})
    return world.token("nn-jgsw", "nn-web", sub="wang.wu")


def _apply(env: dict[str, str], tmp_path: Path, **change: Any) -> None:
    """``govgate apply`` of nn-web's entry with ``change``: a process of its own."""
    entry = {k: v for k, v in CLIENT.items() if k != "secret"} | change
    path = tmp_path / "client.yaml"
    path.write_text(yaml.safe_dump({"clients": [entry]}, allow_unicode=True),
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["apply", "-f", str(path)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output


async def _until(world: World, token: str, status: int) -> httpx.Response:
    """The answer once it is ``status``: the change was made by another process, which
    this gateway's client registry learns within its second."""
    deadline = time.monotonic() + 2 * REGISTRY_SECONDS + 1
    while True:
        r = await world.get(VEHICLES, token)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("per_caller", [False, True], ids=["per_request", "per_caller"])
async def test_a_grant_naming_a_client_stops_when_the_client_moves_department(
        world: World, env: dict[str, str], tmp_path: Path, per_caller: bool) -> None:
    wang = _setup(world, per_caller=per_caller)
    r = await world.get(VEHICLES, wang)
    assert r.status_code == 200, r.text
    assert set(r.json()["items"][0]) == {"plate_number", "brand"}
    assert world.records("proxy_request")[-1]["extra"]["grants"]
    # re-registered under the finance department (czt): czt's system now receives
    _apply(env, tmp_path, department="czt")
    r = await _until(world, wang, 403)
    assert r.status_code == 403, r.text
    refused = world.records("proxy_request")[-1]
    assert refused["outcome"] == "deny" and refused["items"] == []
    assert refused["actor_user"] == "wang.wu" and refused["actor_client"] == "nn-web"
    assert "is for client nn-web, now a client of czt" in refused["reason"]
    # moved back, it is the consumer's client again
    _apply(env, tmp_path, department="nn-jgsw")
    assert (await _until(world, wang, 200)).status_code == 200
