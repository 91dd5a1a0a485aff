"""What a SAML SP receives: the attributes its registration lists
(``saml_sp.attributes``); with nothing listed, the NameID only. A real pysaml2 SP on
127.0.0.1 against a live gateway, the response verified and read by the SP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.idp.saml import sps
from tests.saml.conftest import World, register
from tests.saml.test_interop_pysaml2 import to_sp

pytestmark = [pytest.mark.slow]


def sign_on(world: World, **saml: Any) -> dict[str, Any]:
    register(world.services, world.sp, launch_url=f"{world.sp.base}/login", **saml)
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
