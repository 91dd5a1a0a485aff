"""A user's call through a client (a department's system) of another department is
decided for both departments (docs/seams.md, "Attack of 2026-12-05 (a user through
another department's client)"): the data lands in the client's system, so it gets
what the user's department AND the client's department may receive. Through the
proxy in front of the demo's upstream, with tokens from nn-web's real sign-in and
minted ones."""

from __future__ import annotations

from typing import Any

from joserfc.jwk import ECKey

from tests.catalogue.conftest import World, finance_private_key, opened_value
from tests.catalogue.test_client_changes import CLIENT, GRANT, VEHICLES, sign_in
from tests.catalogue.test_forward_auth import record_of, verify
from tests.tokens import access_token
from tests.wiring import apply_state

ROOMS = "/s/offices/api/rooms"
ID_NUMBER = "450102198305120031"  # the first driver's, in full


def _opens(token: str, key: ECKey) -> Any:
    return opened_value(token, key)


async def _first(world: World, token: str, status: int = 200) -> dict[str, Any]:
    r = await world.get(VEHICLES, token)
    assert r.status_code == status, r.text
    return dict(r.json()["items"][0]) if status == 200 else {}


async def test_a_user_through_another_departments_client_gets_what_both_may(
        world: World) -> None:
    nn_key = ECKey.generate_key("P-256", {"use": "enc", "alg": "ECDH-ES+A256KW",
                                          "kid": "nn-web-enc"})
    # nn-web, nn-jgsw's system, registered with no grant of its own yet
    apply_state(world.services, {"clients": [CLIENT | {
        "jwks": {"keys": [nn_key.as_dict(private=False)]},
        "token_endpoint_auth_method": "client_secret_basic"}]})
    zhao = (await sign_in(world, "zhao.min"))["access_token"]  # czt, through nn-web
    zhang = world.token("jgswj", "nn-web", sub="zhang.san", roles=("staff", "data_steward"))

    # neither czt's grant nor the provider's own right goes into nn-jgsw's system
    await _first(world, zhao, 403)
    refused = world.records("proxy_request")[-1]
    assert refused["outcome"] == "deny" and refused["items"] == []
    assert refused["department"] == "czt" and refused["actor_client"] == "nn-web"
    assert refused["extra"]["client_department"] == "nn-jgsw"
    assert refused["reason"].startswith("client nn-web of nn-jgsw: JG-0001 is conditional")
    r = await world.get(VEHICLES, zhang)
    assert r.status_code == 403 and ID_NUMBER not in r.text
    assert world.records("proxy_request")[-1]["reason"].startswith("client nn-web of nn-jgsw")
    # an unconditional resource: both may (the provider unshaped, nn-jgsw shaped)
    r = await world.get(ROOMS, zhang)
    assert r.status_code == 200 and world.records("proxy_request")[-1]["extra"]["shape"]

    # nn-jgsw's grant for nn-web: each user gets the items granted to both
    apply_state(world.services, {"grants": [GRANT | {
        "items": ["plate_number", "brand", "driver_name", "driver_id_number",
                  "driver_phone"]}]})
    first = await _first(world, zhang)
    # the provider's user: nn-jgsw's grant, shaped (masked, encrypted to nn-web's key)
    assert set(first) == {"plate_number", "brand", "driver_name", "driver_id_number",
                          "driver_phone"}
    assert first["driver_id_number"] != ID_NUMBER and first["driver_id_number"].endswith(
        ID_NUMBER[-4:])
    assert _opens(first["driver_phone"], nn_key) == "13907710021"
    release = world.records("proxy_request")[-1]
    assert release["department"] == "jgswj" and release["extra"]["shape"]
    assert release["extra"]["client_department"] == "nn-jgsw"
    assert "user zhang.san of jgswj: provider department jgswj" in release["reason"]
    assert "client nn-web of nn-jgsw: grant" in release["reason"]
    # czt's user: czt's grant (no driver_id_number) within nn-jgsw's; czt's key is not
    # the receiving system's, nn-web's is
    first = await _first(world, zhao)
    assert set(first) == {"plate_number", "brand", "driver_name", "driver_phone"}
    assert first["driver_name"] == "李**"
    assert _opens(first["driver_phone"], nn_key) == "13907710021"
    release = world.records("proxy_request")[-1]
    assert release["items"] == ["plate_number", "brand", "driver_name", "driver_phone"]
    assert len(release["extra"]["grants"]) == 2 and release["purpose"] == "费用核算; 驾驶员核验"
    assert "user zhao.min of czt: grant" in release["reason"]

    # the same department: nn-jgsw's user through nn-jgsw's client, as before
    wang = world.token("nn-jgsw", "nn-web", sub="wang.wu")
    assert "driver_id_number" in await _first(world, wang)
    assert "client_department" not in world.records("proxy_request")[-1]["extra"]
    # forward-auth: the provider's user through nn-web would have the raw body pass
    r = await verify(world, VEHICLES, zhang)
    assert r.status_code == 403 and r.json()["type"].endswith(":shaping_required")
    assert "x-govgate-assertion" not in r.headers
    assert record_of(world, r)["extra"]["client_department"] == "nn-jgsw"
    own = world.token("jgswj", "office-web", sub="zhang.san")
    assert (await verify(world, VEHICLES, own)).status_code == 200
    # another method on the governed route (a lax upstream answers any): the provider's
    # own department reaches it, through its own client only
    for token, status in ((zhang, 403), (own, 405)):
        r = await world.http.post(VEHICLES, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == status, r.text
    assert "through the catalogue only" in world.records("proxy_request")[-2]["reason"]

async def test_clients_of_the_provider_and_client_tokens_decide_as_before(
        world: World) -> None:
    # the provider's own client: its user unshaped; czt's user gets czt's grant
    zhang = world.token("jgswj", "office-web", sub="zhang.san")
    first = await _first(world, zhang)
    assert first["driver_id_number"] == ID_NUMBER
    assert world.records("proxy_request")[-1]["extra"].get("shape") is None
    zhao = world.token("czt", "office-web", sub="zhao.min")
    first = await _first(world, zhao)
    # driver_phone: office-web registered no encryption key
    assert set(first) == {"plate_number", "brand", "driver_name"}
    release = world.records("proxy_request")[-1]
    assert release["extra"]["client_department"] == "jgswj"
    assert release["extra"]["withheld"]["driver_phone"] == (
        "the consuming client registered no encryption key")
    # a client-credentials token: the client's own department decides
    first = await _first(world, world.token("czt", "finance-system"))
    assert _opens(first["driver_phone"], ECKey.import_key(finance_private_key())) \
        == "13907710021"
    assert "client_department" not in world.records("proxy_request")[-1]["extra"]


async def test_a_token_naming_an_unregistered_client_gets_nothing_governed(
        world: World) -> None:
    for department, user in (("jgswj", "zhang.san"), ("czt", "zhao.min")):
        token = access_token(world.services, sub=user, department=department,
                             client_id="ghost-system", registered=False)
        for path in (VEHICLES, ROOMS):
            r = await world.get(path, token)
            assert r.status_code == 403, r.text
            refused = world.records("proxy_request")[-1]
            assert refused["outcome"] == "deny"
            assert "client ghost-system of no registration" in refused["reason"]
