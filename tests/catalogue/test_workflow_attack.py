"""The sharing workflow attacked where it meets the proxy, the org chart and the state
file: through the API (real tokens, the live org chart), then the proxy ``/s/...`` in
front of the demo's upstream, to show what a wrong grant would release."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from starlette.testclient import TestClient

from catalogue import Actor
from catalogue.tables import grants
from gateway.catalogue_wiring import open_catalogue
from gateway.cli.main import cli
from gateway.services import Services
from tests.catalogue.conftest import World, audit_rows
from tests.tokens import access_token
from tests.wiring import apply_state, parts

P = "/api/v1/catalogue"
VEHICLES = "/s/vehicles/api/vehicles"
BODY = {"resource": "JG-0001", "items": ["plate_number", "driver_id_number"],
        "purpose": "驾驶员核验", "until": "2026-12-31"}
STEWARD = ("staff", "data_steward")
ZHANG = Actor("zhang.san", "jgswj", frozenset(STEWARD))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(world: World, path: str, token: str, body: dict[str, Any] | None = None
               ) -> httpx.Response:
    # the tests read the English of the refusals
    return await world.http.post(P + path, json=body or {},
                                 headers={**bearer(token), "Accept-Language": "en"})


async def apply(world: World) -> tuple[int, str]:
    """wang.wu of nn-jgsw applies for JG-0001; the application's id and his client's
    token (nn-client, a client of nn-jgsw)."""
    wang = world.token("nn-jgsw", sub="wang.wu")
    r = await post(world, "/applications", wang, BODY)
    assert r.status_code == 201, r.text
    return r.json()["application"]["id"], world.token("nn-jgsw", "nn-client")


async def test_an_applicant_moved_to_the_provider_does_not_approve_their_own(
        world: World) -> None:
    app_id, nn_client = await apply(world)
    # wang.wu moves to the provider department and becomes its data steward (the token
    # helper writes the org chart as the token says: the live roles are the new ones)
    moved = world.token("jgswj", sub="wang.wu", roles=STEWARD)
    r = await post(world, f"/applications/{app_id}/approve", moved)
    assert r.status_code == 403, r.text
    refused = world.records("catalogue_refused")[-1]
    assert refused["actor_user"] == "wang.wu" and refused["outcome"] == "deny"
    assert refused["extra"]["path"] == f"{P}/applications/{app_id}/approve"
    assert (await world.get(VEHICLES, nn_client)).status_code == 403
    # another steward of the provider decides it
    zhang = world.token("jgswj", sub="zhang.san", roles=STEWARD)
    assert (await post(world, f"/applications/{app_id}/approve", zhang)).status_code == 201
    assert (await world.get(VEHICLES, nn_client)).status_code == 200


async def test_no_grant_from_a_retired_or_no_longer_shared_resource(world: World) -> None:
    """A steward cannot approve while the resource is retired, nor a submitted
    application once the resource is not shared (不予共享: the security admin's, after
    an escalation); else the grant comes alive when the resource is republished or
    shared on conditions again."""
    app_id, nn_client = await apply(world)
    zhang = world.token("jgswj", sub="zhang.san", roles=STEWARD)
    assert (await post(world, "/resources/JG-0001/retire", zhang)).status_code == 200
    r = await post(world, f"/applications/{app_id}/approve", zhang)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "JG-0001 is retired: no grant while it is not published"
    assert (await post(world, "/resources/JG-0001/publish", zhang)).status_code == 200

    entry = (await world.http.get(f"{P}/resources/JG-0001", headers=bearer(zhang))
             ).json()["resource"]
    closed = {**entry, "share_type": "none", "basis": "涉密"}
    assert (await post(world, "/resources", zhang, closed)).status_code == 200
    r = await post(world, f"/applications/{app_id}/approve", zhang)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == ("JG-0001 is not shared (不予共享): only the security admin "
                                  "decides it, after an escalation")
    assert (await post(world, "/resources", zhang, entry)).status_code == 200  # conditional
    assert (await world.get(VEHICLES, nn_client)).status_code == 403
    with world.services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(grants).where(
            grants.c.consumer == "nn-jgsw")).scalar() == 0
    # the application is still the steward's to decide, as it was
    assert (await post(world, f"/applications/{app_id}/approve", zhang)).status_code == 201
    assert (await world.get(VEHICLES, nn_client)).status_code == 200


async def test_a_state_import_does_not_widen_an_approved_grant(
        world: World, env: dict[str, str], tmp_path: Path) -> None:
    """A grants: entry with the key of a grant an approval created (resource, consumer,
    client, purpose) would rewrite it: items the steward struck out, a longer period,
    under the approval's name. The import is refused; the grant stays as approved."""
    app_id, nn_client = await apply(world)
    zhang = world.token("jgswj", sub="zhang.san", roles=STEWARD)
    r = await post(world, f"/applications/{app_id}/approve", zhang, {"items": ["plate_number"]})
    assert r.status_code == 201, r.text
    grant_id = r.json()["grant"]["id"]
    wider = tmp_path / "grants.yaml"
    wider.write_text(yaml.safe_dump({"grants": [{
        "resource": "JG-0001", "consumer": "nn-jgsw", "purpose": "驾驶员核验",
        "items": ["plate_number", "driver_id_number"], "until": "2027-12-31"}]},
        allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(cli, ["catalogue", "import", str(wider)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert (f"grants[0] (line 2): grant {grant_id} was approved on application {app_id}: "
            "change it through the workflow (revoke, apply again)") in result.output
    parts(world.services).catalogue.invalidate()
    r = await world.get(VEHICLES, nn_client)
    assert r.status_code == 200 and set(r.json()["items"][0]) == {"plate_number"}
    # the same entry as approved (an export's) is no change, and is accepted
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({"grants": [{
        "resource": "JG-0001", "consumer": "nn-jgsw", "purpose": "驾驶员核验",
        "items": ["plate_number"], "until": "2026-12-31"}]}, allow_unicode=True),
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["catalogue", "import", str(same)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output


@contextlib.contextmanager
def racing(engine: sa.Engine, write: str, other: Callable[[], None]) -> Iterator[None]:
    """Inside the block, the first transaction about to run ``write`` (an SQL prefix)
    has read what it decides on: ``other`` runs then in another thread, which is given
    half a second (it waits longer if the first holds the rows it reads)."""
    racer: list[threading.Thread] = []

    def before(_conn: Any, _cur: Any, sql: str, *_args: Any) -> None:
        if not racer and sql.lstrip().upper().startswith(write):
            racer.append(threading.Thread(target=other))
            racer[0].start()
            racer[0].join(0.5)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        assert racer, f"nothing ran {write}"
        racer[0].join(15)


def test_two_decisions_at_once_one_wins(services: Services) -> None:
    """Two decisions on one application (then two revocations of its grant) at the same
    time: the second waits for the first and then finds it done (409). Before, on
    PostgreSQL both went through: the application answered "rejected" to one caller
    while the other's grant was active; a grant was revoked twice, the second
    revoker's name over the first's."""
    from gateway.app import create_app

    # the test reads the English of the refusals
    with TestClient(create_app(parts(services)), headers={"Accept-Language": "en"}) as c:
        wang = access_token(services, sub="wang.wu", department="nn-jgsw")
        zhang = access_token(services, sub="zhang.san", department="jgswj", roles=STEWARD)
        zhou = access_token(services, sub="zhou.ling", department="jgswj",
                            roles=("staff", "dept_head"))
        app_id = c.post(f"{P}/applications", json=BODY, headers=bearer(wang)
                        ).json()["application"]["id"]
        answers: dict[str, int] = {}

        def head(action: str, url: str) -> Callable[[], None]:
            def call() -> None:
                answers[action] = c.post(url, json={"reason": "不符合条件"},
                                         headers=bearer(zhou)).status_code
            return call

        with racing(services.engine, "INSERT INTO CATALOGUE_GRANTS",
                    head("reject", f"{P}/applications/{app_id}/reject")):
            r = c.post(f"{P}/applications/{app_id}/approve", json={}, headers=bearer(zhang))
        assert (r.status_code, answers["reject"]) == (201, 409), r.text
        got = c.get(f"{P}/applications/{app_id}", headers=bearer(zhang)).json()["application"]
        assert got["status"] == "approved"
        assert [h["kind"] for h in got["history"]] == ["submitted", "approved"]

        grant_id = r.json()["grant"]["id"]
        with racing(services.engine, "UPDATE CATALOGUE_GRANTS",
                    head("revoke", f"{P}/grants/{grant_id}/revoke")):
            r = c.post(f"{P}/grants/{grant_id}/revoke", json={"reason": "停止共享"},
                       headers=bearer(zhang))
        assert (r.status_code, answers["revoke"]) == (200, 409), r.text
        assert r.json()["grant"]["revoked_by"] == "zhang.san"
        revoked = audit_rows(services, "grant_revoked")
        assert [x["actor_user"] for x in revoked] == ["zhang.san"]


async def test_a_stranger_writing_by_id_learns_nothing_and_is_audited(world: World) -> None:
    """czt's data steward, neither consumer nor provider of an application, posts each
    decision to its id: 403 with the same words as the reads (not "application 1 is
    approved", not who provides it), each refusal audited."""
    app_id, _ = await apply(world)
    zhang = world.token("jgswj", sub="zhang.san", roles=STEWARD)
    assert (await post(world, f"/applications/{app_id}/approve", zhang)).status_code == 201
    zhao = world.token("czt", sub="zhao.min", roles=STEWARD)
    for action in ("approve", "reject", "escalate", "close"):
        r = await post(world, f"/applications/{app_id}/{action}", zhao, {"reason": "试探"}
                       if action != "approve" else {})
        assert r.status_code == 403, (action, r.text)
        assert r.json()["detail"] == (f"application {app_id} is neither your department's "
                                      "nor for its resources")
    grant_id = parts(world.services).workflow.get(app_id).grant_id
    r = await post(world, f"/grants/{grant_id}/revoke", zhao, {"reason": "试探"})
    assert r.status_code == 403, r.text
    assert r.json()["detail"] == (f"grant {grant_id} is neither your department's nor on "
                                  "its resources")  # not which department provides it
    refused = world.records("catalogue_refused")
    assert [r["extra"]["path"].rsplit("/", 1)[1] for r in refused] == [
        "approve", "reject", "escalate", "close", "revoke"]
    assert {r["actor_user"] for r in refused} == {"zhao.min"}


async def until_answer(world: World, token: str, want: Callable[[httpx.Response], bool]
                       ) -> float:
    """Seconds until the proxy's answer satisfies ``want`` (at most 1.5)."""
    started = time.monotonic()
    while not want(r := await world.get(VEHICLES, token)):
        assert time.monotonic() - started < 1.5, (r.status_code, r.text[:200])
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_resource_changed_elsewhere_binds_a_standing_grant_within_a_second(
        world: World) -> None:
    """czt's demo grant names driver_name. Another process (a catalogue object the
    proxy's is not told about) withholds the item, then stops sharing the resource:
    the proxy follows each change within a second (catalogue_version, polled every
    0.5 s), whatever the grant still says."""
    czt = world.token("czt")
    first = await world.get(VEHICLES, czt)
    assert first.status_code == 200 and "driver_name" in first.json()["items"][0]
    elsewhere = open_catalogue(world.services)
    entry = elsewhere.get("JG-0001").to_entry()
    withheld = {**entry, "items": [{**i, "shareable": False} if i["name"] == "driver_name"
                                   else i for i in entry["items"]]}
    elsewhere.save(ZHANG, withheld)
    assert await until_answer(world, czt, lambda r: r.status_code == 200
                              and "driver_name" not in r.json()["items"][0]) < 1.0
    elsewhere.save(ZHANG, {**withheld, "share_type": "none", "basis": "涉密"})
    assert await until_answer(world, czt, lambda r: r.status_code == 403) < 1.0
    assert "不予共享" in world.records("proxy_request")[-1]["reason"]


async def test_real_use_counts_only_what_a_grant_delivered(world: World) -> None:
    """实绩 counts the calls that delivered data: a consumer's call on a governed route
    that the department system answered 404 (or 500) released nothing and is no use
    of the grant, so a grant only probed with wrong keys still shows as never used."""
    apply_state(world.services, {"catalogue": [{
        "code": "JG-0009", "name": "单车信息", "provider": "jgswj", "system": "vehicles",
        "share_type": "conditional", "conditions": "核验",
        "route": {"method": "GET", "path": "/api/vehicles/{plate}"},
        "items": [{"name": "plate_number", "title": "车牌号"}, {"name": "brand", "title": "品牌"}],
    }], "grants": [{"resource": "JG-0009", "consumer": "czt", "items": ["plate_number"],
                    "purpose": "核验", "until": "2027-01-01"}]})
    czt = world.token("czt")
    for plate in ("NOPE", "%E6%A1%82X", "桂A·G1024"):
        await world.get(f"/s/vehicles/api/vehicles/{plate}", czt)
    answered = [(r["status"], r["outcome"]) for r in world.records("proxy_request")]
    assert answered == [(404, "allow"), (404, "allow"), (200, "allow")]
    auditor = access_token(world.services, sub="auditor", department="platform",
                           roles=("auditor",), scope="openid stats:read")
    r = await world.http.get("/api/v1/stats/overview", params={"days": "30"},
                             headers=bearer(auditor))
    assert r.status_code == 200, r.text
    used = next(x for x in r.json()["resources"] if x["code"] == "JG-0009")
    # the forward-auth figure (unseen) beside, none here
    assert used["total"] == {"calls": 1, "departments": 1, "users": 0, "items": 1,
                             "unseen": 0, "acting": 0}
    (rare,) = [g for g in r.json()["grants"] if g["resource"] == "JG-0009"]
    assert (rare["calls"], rare["status"]) == (1, "rare")  # the 404s were no use
