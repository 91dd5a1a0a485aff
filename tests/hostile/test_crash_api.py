"""What a stranger's schemathesis run (default settings, 2026-12-05 fourth session)
found in the API's answers: a 400 that the description did not list.

``POST /api/v1/admin/users/{username}/reset-password`` of a user whose password the
directory keeps is refused 400 (``org.directory_password``); the operation has no body
and no query, so its description listed no 400 and schemathesis reported ST103
(undocumented status). An operation whose ``rules`` say "400 when ..." now lists 400
whatever its parameters."""

from __future__ import annotations

from starlette.testclient import TestClient

from gateway.services import Services
from tests.admin.conftest import bearer, world  # noqa: F401 - a fixture
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.wiring import apply_state

RESET = "/api/v1/admin/users/{username}/reset-password"


def test_reset_password_of_a_directory_user_is_a_documented_400(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = world
    apply_state(services, {"users": [{"username": "dir.user", "name": "目录用户",
                                      "department": "jgswj", "roles": ["staff"],
                                      "source": "directory"}]})
    before = services.org.get_user("dir.user")
    r = client.post(RESET.format(username="dir.user"),
                    headers={**bearer(services, "sysadmin"), "Accept-Language": "en"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "directory" in r.json()["detail"]
    assert services.org.get_user("dir.user") == before  # nothing changed
    assert services.org.password_hash("dir.user") is None
    described = client.get("/api/v1/openapi.json").json()["paths"][RESET]["post"]
    assert "400" in described["responses"], sorted(described["responses"])
    assert "kept by the directory" in described["description"]


def test_every_operation_with_rules_lists_400(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    _, client = world
    doc = client.get("/api/v1/openapi.json").json()
    missing = [f"{method.upper()} {path}" for path, item in doc["paths"].items()
               for method, op in item.items()
               if "Beyond this description, 400 when" in op.get("description", "")
               and "400" not in op["responses"]]
    assert missing == []
