"""What a SAML SP receives: the attributes its registration lists
(``saml_sp.attributes``); with nothing listed, the NameID only. A real pysaml2 SP on
127.0.0.1 against a live gateway, the response verified and read by the SP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.admin.systems import get_system
from gateway.idp.saml import sps
from tests.saml.conftest import World, register
from tests.saml.test_interop_pysaml2 import to_sp
from tests.tokens import access_token

pytestmark = [pytest.mark.slow]


def sign_on(world: World, **saml: Any) -> dict[str, Any]:
    register(world.services, world.sp, launch_url=f"{world.sp.base}/login", **saml)
    return signed_on(world)


def signed_on(world: World) -> dict[str, Any]:
    """What the SP reads from the response of a sign-on as the SP is registered now."""
    with httpx.Client(timeout=10) as browser:
        r = browser.get(f"{world.sp.base}/login?binding=redirect")
        return to_sp(browser, world, browser.get(r.headers["location"]))


def test_an_sp_with_nothing_listed_gets_the_name_id_only(world: World) -> None:
    got = sign_on(world)
    assert got["attributes"] == {}
    assert got["name_id"] and "zhang" not in got["name_id"]
    # the username, as registered, and nothing else
    assert sign_on(world, release_username=True)["attributes"] == {"uid": ["zhang.san"]}


def test_an_sp_gets_only_what_is_listed(world: World) -> None:
    got = sign_on(world, attributes=["roles", "name"])
    assert got["attributes"] == {"name": ["张三"], "roles": ["data_steward", "staff"]}
    got = sign_on(world, attributes=["department", "region"])
    assert got["attributes"] == {"department": ["jgswj"], "region": ["gx"]}


@pytest.mark.parametrize(("value", "message"), [
    (["name", "mail"], "unknown attribute 'mail'"),
    ({"name": True}, "must be a list"),
])
def test_a_bad_release_list_is_refused(value: Any, message: str) -> None:
    problems = sps.problems({"metadata": "<x/>", "attributes": value})
    assert problems and message in problems[0], problems


def test_the_list_is_stored_and_exported() -> None:
    value = {"entity_id": "e", "metadata": "<x/>", "attributes": ["roles", "name"]}
    assert sps.exported(value)["attributes"] == ["name", "roles"]
    assert "attributes" not in (sps.exported({"metadata": "<x/>", "attributes": []}) or {})


def test_the_release_set_through_the_admin_api_is_what_the_sp_receives(world: World) -> None:
    """The list was the state file's only (the fourth session's "Found and left"): the
    system administrator's ``PUT .../systems/{code}/release`` sets it, and the next
    response carries exactly it."""
    register(world.services, world.sp, launch_url=f"{world.sp.base}/login",
             attributes=["name"])
    api = f"{world.gateway}/api/v1/admin/systems/archives/release"
    admin = {"Authorization": "Bearer " + access_token(
        world.services, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    r = httpx.put(api, headers=admin, json={"saml": ["roles", "department"]}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["release"]["saml"] == ["department", "roles"]
    assert r.json()["release"]["cas"] is None
    assert signed_on(world)["attributes"] == {"department": ["jgswj"],
                                              "roles": ["data_steward", "staff"]}
    # [] is the NameID alone (what an SP of nothing listed gets: the first test)
    r = httpx.put(api, headers=admin, json={"saml": []}, timeout=10)
    assert r.status_code == 200 and r.json()["release"]["saml"] == []
    r = httpx.put(api, headers={**admin, "Accept-Language": "en"}, json={"cas": ["name"]},
                  timeout=10)
    assert r.status_code == 400 and "no CAS services" in r.json()["detail"]
    r = httpx.put(api, headers=admin, json={"saml": ["mail"]}, timeout=10)
    assert r.status_code == 400 and "name, department, region, roles" in r.text
    # the state file's entry as `govgate export` writes it: the NameID alone
    assert "attributes" not in get_system(world.services.engine, "archives")["saml_sp"]
