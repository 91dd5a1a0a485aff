"""Decisions read the user's current roles and department, not the ones in the token:
a data steward whose role is removed (``govgate apply`` in another process, or the
organisation API in this one) cannot approve with a token issued before, within a
second; a user moved to another department acts for the new one; a disabled user's
token stops working."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml
from starlette.testclient import TestClient

from gateway.services import Services
from tests.tokens import access_token
from tests.wiring import apply_state, parts

P = "/api/v1/catalogue"
BODY = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
        "until": "2026-12-31", "basis": "统计制度"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def apply_in_another_process(env: dict[str, str], tmp: Path, users: list[dict[str, object]]
                             ) -> None:
    state = tmp / "change.yaml"
    state.write_text(yaml.safe_dump({"users": users}, allow_unicode=True))
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "apply", "-f", str(state)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def until_status(client: TestClient, method: str, url: str, token: str, status: int,
                 json: dict[str, object] | None = None) -> float:
    """Seconds until ``url`` answers ``status`` (at most 2)."""
    started = time.monotonic()
    while True:
        r = client.request(method, url, json=json, headers=bearer(token))
        if r.status_code == status:
            return time.monotonic() - started
        assert time.monotonic() - started < 2, (r.status_code, r.text)
        time.sleep(0.05)


def test_a_removed_role_stops_the_token_within_a_second(
        services: Services, env: dict[str, str], tmp_path: Path) -> None:
    from gateway.app import create_app

    with TestClient(create_app(parts(services))) as c:
        steward = access_token(services, sub="zhang.san", department="jgswj",
                               roles=("staff", "data_steward"))
        wang = access_token(services, sub="wang.wu", department="nn-jgsw")
        first = c.post(f"{P}/applications", json=BODY, headers=bearer(wang)).json()
        second = c.post(f"{P}/applications", json=BODY, headers=bearer(wang)).json()
        url = f"{P}/applications/{first['application']['id']}/approve"
        assert c.post(url, json={}, headers=bearer(steward)).status_code == 201

        apply_in_another_process(env, tmp_path, [{
            "username": "zhang.san", "name": "张三", "department": "jgswj",
            "roles": ["staff"]}])
        url = f"{P}/applications/{second['application']['id']}/approve"
        assert until_status(c, "POST", url, steward, 403, json={}) < 1.5
        assert services.org.get_user("zhang.san").roles == frozenset({"staff"})


def test_department_moves_and_disabling_hold_for_old_tokens(services: Services) -> None:
    from gateway.app import create_app

    with TestClient(create_app(parts(services))) as c:
        token = access_token(services, sub="wang.wu", department="nn-jgsw")
        mine = c.get(f"{P}/grants", headers=bearer(token))
        assert mine.status_code == 200
        c.post(f"{P}/applications", json=BODY, headers=bearer(token))
        assert len(c.get(f"{P}/applications", headers=bearer(token)).json()[
            "applications"]) == 1
        # moved to 财政厅: the same token now speaks for czt, not nn-jgsw
        apply_state(services, {"users": [{
            "username": "wang.wu", "name": "王五", "department": "czt", "roles": ["staff"]}]})
        r = c.get(f"{P}/applications", headers=bearer(token))
        assert r.status_code == 200 and r.json()["applications"] == []
        services.org.disable_user("wang.wu")
        r = c.get(f"{P}/grants", headers=bearer(token))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
