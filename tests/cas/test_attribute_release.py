"""What a CAS service receives: the attributes its system is registered for
(``cas_attributes``), read at validation; with nothing listed, the username only.
Through the real endpoints: portal sign-in, ``/cas/login``, ``/cas/p3/serviceValidate``;
the registration through the state file as ``govgate state apply`` reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from starlette.testclient import TestClient

from audit.tables import records
from gateway.errors import StateFileError
from gateway.services import Services
from tests.cas.conftest import CAS_SYSTEM, govgate_cli, register_cas, sysadmin_console
from tests.cas.test_flows import NS, cas_login, p3, sign_in_from, ticket_of
from tests.oauth2.helpers import csrf_of
from tests.tokens import access_token
from tests.wiring import apply_state

FIXED = ("authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin")


def released(client: TestClient, ticket: str) -> dict[str, list[str]]:
    """The user and the attributes of a p3 validation, the protocol's own left out."""
    success = p3(client, ticket).find(f"{NS}authenticationSuccess")
    assert success is not None
    out: dict[str, list[str]] = {"user": [success.find(f"{NS}user").text]}
    for e in success.find(f"{NS}attributes"):
        name = e.tag.removeprefix(NS)
        if name not in FIXED:
            out.setdefault(name, []).append(e.text)
    return out


def registered(idp: Services, **changes: Any) -> None:
    register_cas(idp, {k: v for k, v in (CAS_SYSTEM | changes).items() if v is not None})


def test_a_service_with_nothing_listed_gets_the_username_only(client: TestClient,
                                                              idp: Services) -> None:
    registered(idp, cas_attributes=None)
    ticket = ticket_of(sign_in_from(client, cas_login(client)))
    assert released(client, ticket) == {"user": ["zhang.san"]}


def test_a_service_gets_only_what_is_listed_as_registered_at_validation(
        client: TestClient, idp: Services) -> None:
    registered(idp, cas_attributes=["roles", "name"])
    ticket = ticket_of(sign_in_from(client, cas_login(client)))
    assert released(client, ticket) == {"user": ["zhang.san"], "name": ["张三"],
                                        "roles": ["data_steward", "staff"]}
    # a ticket issued before the registration narrowed releases what it says now
    ticket = ticket_of(cas_login(client))
    registered(idp, cas_attributes=["department"])
    assert released(client, ticket) == {"user": ["zhang.san"], "department": ["jgswj"]}
    registered(idp, cas_attributes=[])
    assert released(client, ticket_of(cas_login(client))) == {"user": ["zhang.san"]}


@pytest.mark.parametrize(("value", "message"), [
    (["name", "email"], "unknown attribute 'email'"),
    ("name", "must be a list"),
    (["name", "name"], "listed twice"),
])
def test_a_bad_release_list_is_refused(idp: Services, value: Any, message: str) -> None:
    with pytest.raises(StateFileError) as refused:
        registered(idp, cas_attributes=value)
    assert message in str(refused.value.problems)


def test_a_release_list_without_cas_services_is_refused(idp: Services) -> None:
    with pytest.raises(StateFileError) as refused:
        apply_state(idp, {"systems": [{k: v for k, v in CAS_SYSTEM.items()
                                       if k != "cas_services"}]})
    assert "only with cas_services" in str(refused.value.problems)


def test_the_list_is_exported_and_applies_back(client: TestClient, idp: Services) -> None:
    from gateway.statefile import export_state

    registered(idp, cas_attributes=["roles", "name"])
    entry = next(s for s in export_state(idp.engine)["systems"] if s["code"] == "offices")
    assert entry["cas_attributes"] == ["name", "roles"]
    registered(idp, cas_attributes=None)
    entry = next(s for s in export_state(idp.engine)["systems"] if s["code"] == "offices")
    assert "cas_attributes" not in entry


def test_the_release_is_set_by_the_api_the_cli_and_the_console(
        client: TestClient, idp: Services, tmp_path: Path) -> None:
    """The list was the state file's only (the fourth session's "Found and left"): now
    the system administrator sets it through ``PUT /api/v1/admin/systems/{code}/release``,
    ``govgate system release`` and the system's console page; the next validation
    releases exactly it, ``govgate export`` writes it and applies back unchanged."""
    api = "/api/v1/admin/systems/offices/release"
    admin = {"Authorization": "Bearer " + access_token(
        idp, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    registered(idp, cas_attributes=["name"])
    assert client.get(api, headers=admin).json()["release"] == {
        "cas": ["name"], "saml": None, "forward_auth": [],
        "attributes": ["name", "department", "region", "roles"],
        "forward_auth_attributes": ["name", "region"]}

    r = client.put(api, headers=admin, json={"cas": ["roles", "region"]})
    assert r.status_code == 200 and r.json()["release"]["cas"] == ["region", "roles"]
    assert released(client, ticket_of(sign_in_from(client, cas_login(client)))) == {
        "user": ["zhang.san"], "region": ["gx"], "roles": ["data_steward", "staff"]}
    record = changes_of(idp, "system_release_changed")[-1]
    assert record["before"] == {"cas": ["name"], "saml": None, "forward_auth": []}
    assert record["after"] == {"cas": ["region", "roles"], "saml": None, "forward_auth": []}
    # unknown names: a problem naming the known ones; none is stored
    r = client.put(api, headers=admin, json={"cas": ["name", "email"]})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "name, department, region, roles" in json.dumps(r.json())
    assert client.put(api, headers=admin, json={}).status_code == 400  # names nothing
    r = client.put(api, headers={**admin, "Accept-Language": "en"}, json={"saml": ["name"]})
    assert r.status_code == 400 and "no SAML service provider" in r.json()["detail"]
    # an empty list: the username alone
    assert client.put(api, headers=admin, json={"cas": []}).json()["release"]["cas"] == []
    assert released(client, ticket_of(cas_login(client))) == {"user": ["zhang.san"]}

    # the CLI, as the operator
    run = govgate_cli(idp)
    code, out = run("system", "release", "offices", "--cas", "department,name")
    assert code == 0 and "cas\tname,department\n" in out and "saml\t(not registered)" in out
    assert released(client, ticket_of(cas_login(client))) == {
        "user": ["zhang.san"], "name": ["张三"], "department": ["jgswj"]}
    code, out = run("system", "release", "offices", "--cas", "name,mail")
    assert code != 0 and "unknown attribute 'mail' (one of name, department, region, roles)" \
        in out
    code, out = run("system", "release", "offices", "--saml", "name", lang="zh_CN.UTF-8")
    assert code != 0 and "没有登记 SAML 服务提供方" in out
    code, out = run("export", "-o", str(tmp_path / "state.yaml"))
    assert code == 0
    exported = yaml.safe_load((tmp_path / "state.yaml").read_text(encoding="utf-8"))
    entry = next(s for s in exported["systems"] if s["code"] == "offices")
    assert entry["cas_attributes"] == ["name", "department"]
    code, out = run("apply", "-f", str(tmp_path / "state.yaml"), "--dry-run")
    assert code == 0 and "offices" not in out  # the export applies back unchanged

    # the console's system page: the ticked boxes (in Chinese by default)
    console = sysadmin_console(client, idp)
    page = console.get("/portal/admin/systems/offices")
    assert page.status_code == 200 and "属性发布" in page.text
    assert 'id="r-cas-name" checked' in page.text and 'id="release-saml"' not in page.text
    r = console.post("/portal/admin/systems/offices/release", follow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "protocol": "cas", "cas": ["roles"]})
    assert r.status_code == 303
    assert "已保存系统 offices 的属性发布" in console.get(r.headers["location"]).text
    assert released(client, ticket_of(cas_login(client))) == {
        "user": ["zhang.san"], "roles": ["data_steward", "staff"]}
    r = console.post("/portal/admin/systems/offices/release?lang=en", data={
        "csrf_token": csrf_of(page.text), "protocol": "cas", "cas": ["roles", "phone"]})
    assert r.status_code == 400 and "unknown attribute &#39;phone&#39;" in r.text
    assert changes_of(idp, "system_release_changed")[-1]["after"]["cas"] == ["roles"]


def changes_of(services: Services, change: str) -> list[dict[str, Any]]:
    """The ``extra`` of the successful admin_change records of ``change``, oldest first."""
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "admin_change", records.c.outcome == "success",
            records.c.reason == change).order_by(records.c.id)).scalars().all()
    return [json.loads(r) for r in rows]
