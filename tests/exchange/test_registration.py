"""Who may exchange: ``govgate client add --token-exchange`` and the state file's
``token_exchange`` (default off), exported back as written."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.admin import clients as client_ops
from gateway.cli.main import cli
from gateway.errors import StateFileError
from gateway.statefile import export_state
from tests.exchange.conftest import World
from tests.wiring import apply_state, parts


def _run(w: World, *args: str) -> tuple[int, str]:
    s = w.services.settings
    env = {"GOVGATE_HOME": str(s.home), "GOVGATE_DATABASE_URL": s.database_url,
           "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


async def test_cli_registers_a_client_that_may_exchange(world: World) -> None:
    code, out = _run(world, "client", "add", "assets-desk", "--name", "资产台账",
                     "--department", "czt", "--grant-type", "client_credentials",
                     "--scope", "proxy", "--token-exchange")
    assert code == 0, out
    secret = re.search(r"\): (\S+)", out).group(1)  # type: ignore[union-attr]
    subject = world.user_token("wang.wu", "nn-jgsw", client_id="assets-desk")

    def exchange() -> Any:
        return world.http.post("/oauth2/token", auth=("assets-desk", secret), data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject, "audience": "vehicles",
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"})

    r = await exchange()
    assert r.status_code == 200, r.text
    listed = next(line for line in _run(world, "client", "list")[1].splitlines()
                  if line.startswith("assets-desk"))
    assert "client_credentials,token_exchange" in listed
    exported = {c["client_id"]: c for c in export_state(world.services.engine)["clients"]}
    assert exported["assets-desk"]["token_exchange"] is True
    assert exported["assets-desk"]["grant_types"] == ["client_credentials"]
    assert "token_exchange" not in exported["plain-portal"]
    # applied back as exported: nothing changes
    assert apply_state(world.services, {"clients": [exported["assets-desk"]]}) == []
    # forbidden, then allowed again, by the CLI: audited, and the token endpoint follows
    code, out = _run(world, "client", "token-exchange", "assets-desk", "--forbid")
    assert code == 0 and "assets-desk" in out, out
    parts(world.services).provider.server.clients.invalidate()  # the CLI's is its own
    r = await exchange()
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    assert _run(world, "client", "token-exchange", "assets-desk", "--allow")[0] == 0
    parts(world.services).provider.server.clients.invalidate()
    assert (await exchange()).status_code == 200
    changes = [(r["reason"], r["extra"]) for r in world.records("admin_change")
               if r["reason"] in ("client_added", "client_token_exchange")]
    assert [(e, x.get("client"), x.get("allowed", x.get("exchange")))
            for e, x in changes] == [("client_added", "assets-desk", True),
                                     ("client_token_exchange", "assets-desk", False),
                                     ("client_token_exchange", "assets-desk", True)]
    # a change through the system administrator's console keeps the setting
    after = client_ops.update_client(parts(world.services), "assets-desk", {"name": "台账"})
    assert after["token_exchange"] is True and after["name"] == "台账"
    code, out = _run(world, "client", "token-exchange", "no-such", "--allow")
    assert code != 0 and "no-such" in out
    _the_state_file_refuses_a_bad_setting(world)


def _the_state_file_refuses_a_bad_setting(world: World) -> None:
    entry = {"client_id": "odd", "name": "odd", "department": "czt",
             "grant_types": ["client_credentials"], "secret": "s" * 30}
    with pytest.raises(StateFileError) as caught:
        apply_state(world.services, {"clients": [{**entry, "token_exchange": "yes"}]})
    assert any("token_exchange must be true or false" in str(p)
               for p in caught.value.problems), caught.value.problems
    with pytest.raises(StateFileError) as caught:
        apply_state(world.services, {"clients": [{
            **entry, "token_exchange": True, "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"], "redirect_uris": ["http://127.0.0.1/cb"]}]})
    assert any("token_exchange needs an authenticated client" in str(p)
               for p in caught.value.problems)
    # the grant type itself is not a grant_types value: the flag is the one spelling
    with pytest.raises(StateFileError):
        apply_state(world.services, {"clients": [{
            **entry, "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}]})
