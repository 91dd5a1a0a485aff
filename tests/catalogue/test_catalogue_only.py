"""Cross-department access to a system that publishes catalogue resources goes through
the catalogue only: a policy line that would open such a system to another
department is refused by ``govgate apply`` and ``govgate policy add`` unless it is
marked ungoverned with a reason (then listed with it), and a line stored before the
system published anything is not honoured by the proxy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.errors import StateFileError
from gateway.services import Services
from tests.catalogue.conftest import World
from tests.wiring import apply_state, parts

WILDCARD = {"subject": "dept:czt", "department": "czt", "object": "/s/vehicles/api/*",
            "action": "GET"}


def govgate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_apply_refuses_a_wildcard_into_a_governed_system(services: Services) -> None:
    for line in (WILDCARD, {**WILDCARD, "object": "/s/*"},
                 {**WILDCARD, "object": "/s/vehicles/api/vehicles/export"},
                 {**WILDCARD, "department": "*", "subject": "role:auditor"}):
        with pytest.raises(StateFileError) as info:
            apply_state(services, {"policies": [line]})
        assert "publishes catalogue resources" in info.value.problems[0], line
    # an ungoverned line needs its reason
    with pytest.raises(StateFileError) as info:
        apply_state(services, {"policies": [{**WILDCARD, "ungoverned": True}]})
    assert "needs a reason" in info.value.problems[0]
    # what the rule leaves alone: the provider's own department, deny lines, systems
    # that publish nothing
    apply_state(services, {"policies": [
        {**WILDCARD, "subject": "role:data_steward", "department": "jgswj"},
        {**WILDCARD, "effect": "deny"},
        {**WILDCARD, "object": "/s/nosuch/*"},
    ]})
    assert len(parts(services).policies.lines()) == 3
    assert parts(services).policies.lines() and all(line.ungoverned is None
                                             for line in parts(services).policies.lines())


def test_an_ungoverned_line_is_accepted_and_reported(services: Services, env: dict[str, str],
                                                     tmp_path: Path) -> None:
    state = tmp_path / "policies.yaml"
    state.write_text(yaml.safe_dump({"policies": [WILDCARD]}, allow_unicode=True))
    refused = govgate(env, "apply", "-f", str(state))
    assert refused.returncode == 1 and "publishes catalogue resources" in refused.stderr
    state.write_text(yaml.safe_dump({"policies": [
        {**WILDCARD, "ungoverned": True, "reason": "车辆在线状态，不含个人信息"}]},
        allow_unicode=True))
    done = govgate(env, "apply", "-f", str(state))
    assert done.returncode == 0, done.stderr
    listed = govgate(env, "policy", "list")
    assert listed.stdout.splitlines()[0].endswith("\tungoverned")
    assert "/s/vehicles/api/*\tGET\tallow\t车辆在线状态，不含个人信息" in listed.stdout
    exported = govgate(env, "export")
    assert "ungoverned: true" in exported.stdout and "车辆在线状态" in exported.stdout

    add = ["policy", "add", "dept:czt", "czt", "/s/offices/*", "GET"]
    refused = govgate(env, *add)
    assert refused.returncode == 1 and "publishes catalogue resources" in refused.stderr
    done = govgate(env, *add, "--ungoverned", "楼宇门禁接口，经安全管理员批准")
    assert done.returncode == 0, done.stderr
    blank = govgate(env, "policy", "add", "dept:czt", "czt", "/s/offices/x", "GET",
                    "--ungoverned", "  ")
    assert blank.returncode == 1 and "needs a reason" in blank.stderr
    lines = {line.object: line.ungoverned for line in parts(services).policies.lines()}
    assert lines == {"/s/vehicles/api/*": "车辆在线状态，不含个人信息",
                     "/s/offices/*": "楼宇门禁接口，经安全管理员批准"}


async def test_a_line_stored_before_the_system_published_is_not_honoured(
        world: World) -> None:
    s = world.services
    # the line predates the resource of a newly catalogued system: written straight in
    apply_state(s, {"systems": [
        {"code": "fleet", "name": "车队", "department": "jgswj",
         "upstream": "http://127.0.0.1:9"}]})
    from policies import make_line

    parts(s).policies.add(make_line("dept:czt", "czt", "/s/fleet/*", "GET"))
    apply_state(s, {"catalogue": [{
        "code": "JG-0201", "name": "车队信息", "provider": "jgswj", "system": "fleet",
        "share_type": "unconditional", "route": {"method": "GET", "path": "/api/cars"},
        "items": [{"name": "plate_number", "title": "车牌号"}]}]})
    parts(s).catalogue.invalidate()
    r = await world.get("/s/fleet/api/cars/桂A-1/driver", world.token("czt"))
    assert r.status_code == 403
    rec = world.records("proxy_request")[-1]
    assert "through the catalogue only" in rec["reason"] and rec["extra"]["rule"] == "catalogue"
    # the owner's own staff are not affected
    own = await world.get("/s/fleet/api/cars/桂A-1/driver", world.token("jgswj", "office-web"))
    assert own.status_code == 502  # allowed, and the upstream is down
