"""What SCIM refuses, as SCIM error bodies (RFC 7644 section 3.12): no or a wrong
credential, a token without the ``scim`` scope or of a person, 三员分立 and the admin
accounts, a client's department scope, bad filters, a stale ETag; refusals audited."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlalchemy as sa

from audit.tables import records
from gateway.tables import clients
from tests.scim.conftest import SECRET, World
from tests.tokens import access_token

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim_error(answer: httpx.Response, status: int, scim_type: str | None = None
               ) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/scim+json"
    body = answer.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    assert body.get("scimType") == scim_type and body["detail"]
    return dict(body)


def denials(world: World, event_type: str) -> list[dict[str, Any]]:
    with world.services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).where(records.c.event_type == event_type,
                                                     records.c.outcome == "deny")).all()
    return [{**r._mapping, "extra": json.loads(r.extra)} for r in rows]


def user_id(world: World, username: str) -> str:
    return str(world.services.org.get_user(username).id)


def add_member(role: str, member: str) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": member}]}]}


def test_credentials(world: World) -> None:
    answer = httpx.get(f"{world.base}/Users", timeout=10)
    scim_error(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    scim_error(httpx.get(f"{world.base}/Users", timeout=10,
                         headers={"Authorization": "Bearer not-a-token"}), 401)
    # a client registered without the scope: never granted it at the token endpoint ...
    refused = httpx.post(f"{world.issuer}/oauth2/token", auth=("no-scim", SECRET), timeout=10,
                         data={"grant_type": "client_credentials", "scope": "scim"})
    assert "scim" not in refused.json().get("scope", "").split(), refused.text
    # ... and its token for another scope opens nothing here
    with world.http("no-scim", scope="catalogue:read") as http:
        answer = http.get("/Users")
    scim_error(answer, 403)
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    # a person's token, even with the scope: SCIM is a client acting as itself
    person = access_token(world.services, sub="li.si", department="jgswj", scope="scim")
    scim_error(httpx.get(f"{world.base}/Users", timeout=10,
                         headers={"Authorization": f"Bearer {person}"}), 403)
    paths = [d["extra"]["path"] for d in denials(world, "api_request")]
    assert paths.count("/scim/v2/Users") >= 4


def test_separation_of_duties(world: World) -> None:
    sysadmin = user_id(world, "sysadmin")
    roles_before = world.services.org.get_user("li.si").roles
    with world.http() as http:
        # the sysadmin account given secadmin: 三员分立, whatever else would apply
        body = scim_error(http.patch("/Groups/secadmin", json=add_member("secadmin", sysadmin)),
                          400, "invalidValue")
        assert "三员分立" in body["detail"]
        # a plain account given an admin role: the operator's work
        li = user_id(world, "li.si")
        scim_error(http.patch("/Groups/auditor", json=add_member("auditor", li)), 403)
        # an admin account is read, never changed
        assert http.get(f"/Users/{sysadmin}").json()["userName"] == "sysadmin"
        scim_error(http.patch(f"/Users/{sysadmin}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}), 403)
        scim_error(http.delete(f"/Users/{sysadmin}"), 403)
    assert world.services.org.get_user("li.si").roles == roles_before
    assert world.services.org.get_user("sysadmin").status == "active"
    refused = [d for d in denials(world, "admin_change")
               if d["actor_client"] == "scim-platform"]
    [conflict] = [d for d in refused if d["status"] == 400]
    assert "三员分立" in conflict["reason"] and conflict["extra"]["user"] == "sysadmin"
    assert {d["extra"]["what"] for d in refused} >= {
        "PATCH /scim/v2/Groups/auditor", f"PATCH /scim/v2/Users/{sysadmin}",
        f"DELETE /scim/v2/Users/{sysadmin}"}


def test_department_scope(world: World) -> None:
    with world.http("scim-city") as http:
        listed = http.get("/Users").json()
        assert [u["userName"] for u in listed["Resources"]] == ["wang.wu"]
        scim_error(http.get(f"/Users/{user_id(world, 'li.si')}"), 404)
        schema = http.get(f"/Schemas/{ENTERPRISE}").json()
        assert schema["attributes"][0]["canonicalValues"] == ["nn-jgsw"]
        created = http.post("/Users", json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "he.shi", "displayName": "何十", ENTERPRISE: {"department": "jgswj"}})
        scim_error(created, 403)
        # the members of a role it sees are its department's
        staff = http.get("/Groups/staff").json()
        assert [m["display"] for m in staff["members"]] == ["王五"]
        moved = http.patch(f"/Users/{user_id(world, 'wang.wu')}", json={
            "schemas": [PATCH], "Operations": [
                {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "czt"}]})
        scim_error(moved, 403)
    assert world.services.org.get_user("wang.wu").department == "nn-jgsw"
    assert any(d["actor_client"] == "scim-city" and d["extra"]["what"] == "POST /scim/v2/Users"
               for d in denials(world, "admin_change"))


def test_bad_requests(world: World) -> None:
    with world.http() as http:
        for bad in ('userName eq', 'userName zz "a"', 'nickName eq "x"',
                    'emails[value eq "a"', 'active gt true', 'meta.created gt "yesterday"'):
            scim_error(http.get("/Users", params={"filter": bad}), 400, "invalidFilter")
        scim_error(http.post("/Users/.search", json={"filter": "((("}), 400, "invalidFilter")
        scim_error(http.post("/Users", content=b"{not json"), 400, "invalidSyntax")
        scim_error(http.post("/Users", content=b'{"a": "' + b"x" * (2 << 20) + b'"}'), 413)
        scim_error(http.post("/Users", json={"schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "BAD NAME!",
            "displayName": "x"}), 400, "invalidValue")
        scim_error(http.patch(f"/Users/{user_id(world, 'li.si')}", json={
            "schemas": [PATCH], "Operations": [{"op": "replace", "path": "emails[[",
                                                "value": "x"}]}), 400, "invalidPath")
        scim_error(http.get("/Users/99999"), 404)
        scim_error(http.get("/Users/not-a-number"), 404)
        scim_error(http.get("/Nothing/here"), 404)
        scim_error(http.post("/ServiceProviderConfig", json={}), 405)
        li = user_id(world, "li.si")
        scim_error(http.put(f"/Users/{li}", headers={"If-Match": 'W/"stale"'}, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "li.si",
            "displayName": "李四"}), 412)
        etag = http.get(f"/Users/{li}").headers["etag"]
        same = http.put(f"/Users/{li}", headers={"If-Match": etag}, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "li.si",
            "displayName": "李四", "active": True})
        assert same.status_code == 200, same.text


def test_a_disabled_client_is_refused_at_once(world: World) -> None:
    """Its department and status are read at each request, not taken from the token
    (the deny list would also stop the token within a second when the console disables
    it; this is the row alone)."""
    with world.http("scim-city") as http:
        assert http.get("/ServiceProviderConfig").status_code == 200
        with world.services.engine.begin() as conn:
            conn.execute(clients.update().where(clients.c.client_id == "scim-city")
                         .values(status="disabled"))
        try:
            scim_error(http.get("/ServiceProviderConfig"), 401)
        finally:
            with world.services.engine.begin() as conn:
                conn.execute(clients.update().where(clients.c.client_id == "scim-city")
                             .values(status="active"))


def test_root_search(world: World) -> None:
    with world.http() as http:
        found = http.post("/.search", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'displayName co "管理员"', "count": 3, "startIndex": 3}).json()
    # three admin accounts, then the roles named 管理员, one list, paged across both
    assert found["totalResults"] == 3 + 4 and found["itemsPerPage"] == 3
    kinds = [r["meta"]["resourceType"] for r in found["Resources"]]
    assert kinds == ["User", "Group", "Group"]
