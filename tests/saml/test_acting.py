"""委托 in a SAML assertion: li.si, signed in and acting for zhang.san under a
delegation naming the SP's system, signs in to the real pysaml2 SP: the assertion
names zhang.san (his persistent NameID at that SP) with the attributes ``act``
(li.si's persistent NameID there: the SP gets no usernames) and ``delegation``;
audited naming both. Revoked, the same choice gets no assertion."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest

from gateway.delegations import Delegations
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.idp.oauth2.store import Store
from gateway.idp.saml.release import identity, persistent_id
from gateway.proxy.acting import ACT_COOKIE, choice
from tests.oauth2.helpers import audit_events
from tests.saml.conftest import World
from tests.saml.test_interop_pysaml2 import to_sp

pytestmark = [pytest.mark.slow]


def test_assertion_names_a_acted_for_by_b(world: World) -> None:
    services = world.services
    org = services.org
    delegations = Delegations(services)
    d = delegations.request(
        org.get_user("zhang.san"), delegate="li.si", roles=[], systems=["archives"],
        ends_at=services.clock() + timedelta(days=1), reason="出差期间代为办理",
        held_systems=lambda: {"archives"}, via="api")
    d = delegations.approve(org.get_user("zhou.ling"), d.id, via="api")
    cookie, row = Store(services.engine, services.keys, services.clock).create_session(
        "li.si", "active", amr="pwd", absolute_seconds=3600)
    jar = {SESSION_COOKIE: cookie, ACT_COOKIE: choice(services.keys, row.sid, d.id)}
    with httpx.Client(timeout=10, cookies=jar) as browser:
        r = browser.get(f"{world.sp.base}/login")
        got = to_sp(browser, world, browser.get(r.headers["location"]))
        # B as this SP knows B (it gets no usernames): B's persistent NameID there
        assert got["attributes"]["act"] == [
            persistent_id(services.keys, world.sp.entity_id, "li.si")]
        assert got["attributes"]["delegation"] == [str(d.id)]
        assert got["attributes"]["name"] == ["张三"]
        assert got["name_id"] == persistent_id(services.keys, world.sp.entity_id, "zhang.san")
        events = [e for e in audit_events(services, "saml_login") if e["outcome"] == "success"]
        assert events[-1]["actor_user"] == "zhang.san"
        extra = json.loads(events[-1]["extra"])
        assert extra["act"] == {"sub": "li.si"} and extra["delegation"] == d.id

        delegations.revoke(org.get_user("zhang.san"), d.id, via="api")
        r = browser.get(f"{world.sp.base}/login")
        r = browser.get(r.headers["location"])
        page = browser.get(world.gateway + r.headers["location"])
        assert page.status_code == 403 and "SAMLResponse" not in page.text
    refused = audit_events(services, "saml_login")[-1]
    assert (refused["outcome"], refused["actor_user"]) == ("deny", "li.si")
    assert f"delegation {d.id} is revoked" in refused["reason"]


def test_act_is_the_username_only_for_an_sp_that_gets_usernames() -> None:
    acting = SimpleNamespace(name="张三", department="jgswj", region="gx", roles={"staff"},
                             username="zhang.san", act="li.si", delegation=7)
    given = identity(acting, release_username=True, attributes=["name"],
                     pseudonym=lambda u: f"p-{len(u)}")
    assert (given["uid"], given["act"], given["delegation"]) == (["zhang.san"], ["li.si"],
                                                                 ["7"])
    kept = identity(acting, release_username=False, attributes=[],
                    pseudonym=lambda u: f"p-{len(u)}")
    assert "uid" not in kept and kept["act"] == ["p-5"]
    assert "li.si" not in json.dumps(kept) and "zhang.san" not in json.dumps(kept)
