"""End to end: the gateway's proxy with the catalogue's decider and shaper, in front
of the demo's real upstream systems (uvicorn on 127.0.0.1), called with real
access tokens. Each share type, cutting, each mask, JWE only the consumer's key
opens, expired and revoked grants, narrowing, non-JSON refusal, and the audit
records that say which items went to whom and why."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey

from catalogue import Actor
from tests.catalogue.conftest import World, finance_private_key, opened_value
from tests.wiring import apply_state, parts

ZHANG = Actor("zhang.san", "jgswj", frozenset({"staff", "data_steward"}))
WANG = Actor("wang.wu", "nn-jgsw", frozenset({"staff"}))


def _open(token: str) -> Any:
    return opened_value(token, ECKey.import_key(finance_private_key()))


async def _conditional_grant_cut_masked_encrypted_and_audited(world: World) -> None:
    r = await world.get("/s/vehicles/api/vehicles", world.token("czt"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "total"} and body["total"] == len(body["items"]) == 4
    first = body["items"][0]
    assert set(first) == {"plate_number", "brand", "driver_name", "driver_phone"}
    assert first["plate_number"] == "桂A·G1024" and first["brand"] == "红旗 H5"
    assert first["driver_name"] == "李**"
    assert _open(first["driver_phone"]) == "13907710021"
    assert "13907710021" not in r.text and "450102198305120031" not in r.text
    with pytest.raises(Exception):  # noqa: B017 - any key but the consumer's fails
        jwe.decrypt_compact(first["driver_phone"], ECKey.generate_key("P-256"))

    release = world.records("proxy_request")[-1]
    assert release["outcome"] == "allow" and release["status"] == 200
    assert release["reason"].startswith("grant 1 (JG-0001 to czt, purpose 费用核算)")
    assert release["request_id"] == r.headers["x-request-id"]
    assert release["items"] == ["plate_number", "brand", "driver_name", "driver_phone"]
    assert release["purpose"] == "费用核算" and release["department"] == "czt"
    assert release["actor_client"] == "finance-system" and release["resource"] == "JG-0001"
    assert release["extra"]["withheld"] == {} and release["extra"]["records"] == 4


async def _encrypted_item_withheld_for_a_client_without_a_key(world: World) -> None:
    r = await world.get("/s/vehicles/api/vehicles", world.token("czt", "czt-portal"))
    assert r.status_code == 200
    assert set(r.json()["items"][0]) == {"plate_number", "brand", "driver_name"}
    release = world.records("proxy_request")[-1]
    assert release["items"] == ["plate_number", "brand", "driver_name"]
    assert release["extra"]["withheld"] == {
        "driver_phone": "the consuming client registered no encryption key"}


async def _no_grant_403_with_reason(world: World) -> None:
    r = await world.get("/s/vehicles/api/vehicles", world.token("nn-jgsw", "nn-client"))
    assert r.status_code == 403
    assert "no grant" not in r.text  # opaque outward
    rec = world.records("proxy_request")[-1]
    assert rec["outcome"] == "deny" and rec["resource"] == "JG-0001" and rec["items"] == []
    assert rec["reason"] == "JG-0001 is conditional (有条件共享): no grant for department nn-jgsw"


async def _unconditional_any_department(world: World) -> None:
    r = await world.get("/s/offices/api/rooms", world.token("nn-jgsw", "nn-client"))
    assert r.status_code == 200, r.text
    room = r.json()["items"][0]
    assert room["room_id"] == "ZW-A-0301" and room["occupant_name"] == "张*"
    assert "standard_m2" not in room and "over_standard" not in room  # not in the catalogue
    assert "无条件共享" in world.records("proxy_request")[-1]["reason"]


async def _none_only_the_provider(world: World) -> None:
    r = await world.get("/s/assets/api/assets", world.token("jgswj", "office-web"))
    assert r.status_code == 403
    assert "不予共享" in world.records("proxy_request")[-1]["reason"]
    own = await world.get("/s/assets/api/assets", world.token("czt"))
    assert own.status_code == 200
    asset = own.json()["items"][0]
    assert asset["original_value"] == 5880.0 and asset["acquired"] == "2023-03-14"  # unshaped


async def _revoked_grant_stops_within_a_second(world: World) -> None:
    token = world.token("czt")
    assert (await world.get("/s/vehicles/api/vehicles", token)).status_code == 200
    other = parts(world.services).catalogue  # the proxy's own snapshot: revoke from "elsewhere"
    grant = parts(world.services).workflow.grants(consumer="czt")[0]
    from catalogue.workflow import Workflow

    elsewhere = Workflow(world.services.engine, record=lambda e, d: None, clock=world.clock)
    elsewhere.revoke(ZHANG, grant.id, "停止共享")
    started = time.monotonic()
    while (await world.get("/s/vehicles/api/vehicles", token)).status_code == 200:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.05)
    assert "was revoked" in world.records("proxy_request")[-1]["reason"]
    assert other is parts(world.services).catalogue


async def _expired_grant(world: World) -> None:
    world.clock.now = datetime(2027, 12, 31, 15, 59, tzinfo=UTC)  # 23:59 CST on the last day
    parts(world.services).catalogue.invalidate()
    assert (await world.get("/s/vehicles/api/vehicles", world.token("czt"))).status_code == 200
    world.clock.now = datetime(2027, 12, 31, 16, 0, tzinfo=UTC)
    r = await world.get("/s/vehicles/api/vehicles", world.token("czt"))
    assert r.status_code == 403
    assert "expired after 2027-12-31" in world.records("proxy_request")[-1]["reason"]


async def _narrowed_approval_releases_only_the_approved_items(world: World) -> None:
    wf = parts(world.services).workflow
    app = wf.apply(WANG, "JG-0001", items=["plate_number", "driver_id_number", "driver_phone"],
                   purpose="驾驶员核验", until="2026-12-31")
    wf.approve(ZHANG, app.id, items=["driver_id_number"])
    r = await world.get("/s/vehicles/api/vehicles", world.token("nn-jgsw", "nn-client"))
    assert r.status_code == 200
    assert r.json()["items"][0] == {"driver_id_number": "**************0031"}
    assert world.records("proxy_request")[-1]["items"] == ["driver_id_number"]


async def _template_route_single_record_pseudonym_redact_phone(world: World) -> None:
    apply_state(world.services, {"catalogue": [{
        "code": "JG-0003", "name": "单车信息", "provider": "jgswj", "system": "vehicles",
        "share_type": "unconditional",
        "route": {"method": "GET", "path": "/api/vehicles/{plate}"},
        "items": [
            {"name": "plate_number", "title": "车牌号"},
            {"name": "driver_id_number", "title": "驾驶员标识", "mask": "pseudonym"},
            {"name": "fuel", "title": "燃料", "mask": "redact"},
            {"name": "driver_phone", "title": "手机", "mask": "phone_middle"},
        ],
    }]})
    plate = "/s/vehicles/api/vehicles/%E6%A1%82A%C2%B7G1024"
    r = await world.get(plate, world.token("czt"))
    assert r.status_code == 200, r.text
    one = r.json()
    assert one["plate_number"] == "桂A·G1024" and one["fuel"] == "***"
    assert one["driver_phone"] == "139****0021"
    assert one["driver_id_number"].startswith("p:")
    again = (await world.get(plate, world.token("czt"))).json()["driver_id_number"]
    elsewhere = (await world.get(plate, world.token("nn-jgsw", "x")))
    assert again == one["driver_id_number"]  # stable: joins still work
    assert elsewhere.json()["driver_id_number"] != again  # but per consumer department
    missing = await world.get("/s/vehicles/api/vehicles/nope", world.token("czt"))
    assert missing.status_code == 404 and missing.json() == {"upstream_status": 404}


async def _non_json_response_refused_502_and_audited(world: World) -> None:
    apply_state(world.services, {"catalogue": [{
        "code": "JG-0004", "name": "车辆首页", "provider": "jgswj", "system": "vehicles",
        "share_type": "unconditional", "route": {"method": "GET", "path": "/"},
        "items": [{"name": "plate_number", "title": "车牌号"}],
    }]})
    r = await world.get("/s/vehicles/", world.token("czt"))
    assert r.status_code == 502 and "李建国" not in r.text
    refused = world.records("proxy_request")[-1]
    assert refused["extra"]["refused"] == "response is text/html, not JSON"
    assert refused["status"] == 502 and refused["items"] == []
    assert refused["resource"] == "JG-0004"


# one world (database, upstreams, gateway) per group keeps the suite fast


async def test_conditional_share_type(world: World) -> None:
    await _conditional_grant_cut_masked_encrypted_and_audited(world)
    await _encrypted_item_withheld_for_a_client_without_a_key(world)
    await _no_grant_403_with_reason(world)


async def test_unconditional_none_templates_and_refusal(world: World) -> None:
    await _unconditional_any_department(world)
    await _none_only_the_provider(world)
    await _template_route_single_record_pseudonym_redact_phone(world)
    await _non_json_response_refused_502_and_audited(world)


async def test_narrowing_then_revocation(world: World) -> None:
    await _narrowed_approval_releases_only_the_approved_items(world)
    await _revoked_grant_stops_within_a_second(world)


async def test_expiry(world: World) -> None:
    await _expired_grant(world)


NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}


async def test_browsers_get_pages_programs_get_problems(world: World) -> None:
    """A browser's navigation: 401 → the sign-in, coming back here; 403 and 404 →
    a page with the request id (and where the catalogue governs the resource, the
    way to apply). Anything else keeps problem+json. Each is audited the same."""
    http = world.http
    r = await http.get("/s/vehicles/api/vehicles?page=2", headers=NAVIGATE)
    assert r.status_code == 303
    assert r.headers["location"] == (
        "/portal/login?next=%2Fs%2Fvehicles%2Fapi%2Fvehicles%3Fpage%3D2")
    assert world.records("proxy_request")[-1]["status"] == 401
    for headers in ({"Accept": "application/json"}, {"Accept": "*/*"},
                    {**NAVIGATE, "Sec-Fetch-Mode": "cors"}):  # a page's own fetch
        r = await http.get("/s/vehicles/api/vehicles", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"

    token = {"Authorization": f"Bearer {world.token('nn-jgsw', 'nn-client')}"}
    r = await http.get("/s/vehicles/api/vehicles", headers={**NAVIGATE, **token})
    assert r.status_code == 403 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1 id=\"title\">无权访问</h1>" in r.text
    assert r.headers["x-request-id"] in r.text
    assert world.records("proxy_request")[-1]["request_id"] == r.headers["x-request-id"]
    assert 'href="/portal/catalogue/JG-0001">申请使用</a>' in r.text
    assert "no grant" not in r.text  # opaque outward, as the problem
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    r = await http.get("/s/vehicles/api/vehicles?lang=en", headers={**NAVIGATE, **token})
    assert "Access denied" in r.text and ">Apply for access</a>" in r.text
    assert "无权访问" not in r.text
    r = await http.get("/s/vehicles/api/vehicles", headers=token)
    assert r.status_code == 403 and r.json()["request_id"] == r.headers["x-request-id"]

    r = await http.get("/s/nope/x", headers={**NAVIGATE, **token})
    assert r.status_code == 404 and "页面不存在" in r.text and "申请使用" not in r.text
    assert (await http.get("/s/nope/x", headers=token)).headers[
        "content-type"] == "application/problem+json"
