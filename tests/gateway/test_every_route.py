"""Every route of the application, every method it takes, fed the bad bodies of
``tests/catalogue/test_api_bodies.py`` (nested, 2 MB, invalid UTF-8, not an object)
under several content types, and a Basic header that is not UTF-8: whatever the
answer, it is never a 5xx. The routes come from the app's router, so a route added
later is walked too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from tests.catalogue.conftest import clock, services  # noqa: F401 - fixtures
from tests.catalogue.test_api import SEC, STEWARD_JG, Api
from tests.wiring import parts

#: sample values for path parameters (a system that does not exist keeps /s/ from
#: trying an upstream that is not running in this test)
PARAMS = {"system": "no-such-system", "path": "api/vehicles", "code": "JG-0001", "id": "1",
          "action": "approve", "username": "li.si", "client_id": "office-web"}
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

BODIES: dict[str, bytes] = {
    "nested": b"[" * 5000 + b"]" * 5000,
    "invalid UTF-8": b'{"a": "\xff\xfe\xfd"}\xc3(',
    "not an object": b'["a", 1]',
    "form with bad bytes": b"grant_type=%ff&username=\xff\xfe&token=%",
}
BIG = b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}'
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "text/plain")
BAD_BASIC = "Basic //46/w=="


def _targets(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    out = []
    for r in routes:
        if isinstance(r, Mount):
            out += [(m, r.path + "/x") for m in ("GET", "POST")]
            continue
        assert isinstance(r, Route), r
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS[m.group(1)], r.path)
        for method in sorted(r.methods or ALL_METHODS):
            out.append((method, path))
    return out


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:  # noqa: F811
    from gateway.app import create_app

    with TestClient(create_app(parts(services)), raise_server_exceptions=False,
                    base_url="http://127.0.0.1:8080") as c:
        yield c


def test_no_route_answers_bad_input_with_a_5xx(client: TestClient,
                                               services: Services) -> None:  # noqa: F811
    api = Api(services, client)
    cookie, _ = parts(services).provider.store.create_session(
        "zhang.san", "active", amr="pwd", absolute_seconds=3600)
    who = {
        "anonymous": {},
        "bad basic": {"Authorization": BAD_BASIC},
        "steward": api.token(*STEWARD_JG),
        "secadmin": api.token(*SEC),
        "session": {"Cookie": f"{SESSION_COOKIE}={cookie}"},
        "session and bad basic": {"Cookie": f"{SESSION_COOKIE}={cookie}",
                                  "Authorization": BAD_BASIC},
    }
    targets = _targets(list(client.app.routes))  # type: ignore[attr-defined]
    assert len(targets) > 60 and ("POST", "/oauth2/token") in targets
    failures: list[str] = []

    def check(method: str, path: str, headers: dict[str, str], body: bytes | None,
              what: str) -> None:
        r = client.request(method, path, headers=headers, content=body,
                           follow_redirects=False)
        if r.status_code >= 500:
            failures.append(f"{method} {path} {what}: {r.status_code} {r.text[:120]!r}")

    for method, path in targets:
        for name, headers in who.items():
            check(method, path, headers, None, name)
            if method in ("GET", "HEAD"):
                continue
            for body_name, body in BODIES.items():
                for ctype in CONTENT_TYPES:
                    check(method, path, {**headers, "Content-Type": ctype}, body,
                          f"{name}, {body_name} as {ctype}")
        if method not in ("GET", "HEAD"):
            check(method, path, {**who["steward"], "Content-Type": "application/json"}, BIG,
                  "steward, 2 MB")
            check(method, path, {"Content-Type": "application/x-www-form-urlencoded",
                                 "Authorization": BAD_BASIC}, BIG, "bad basic, 2 MB form")
    assert not failures, "\n".join(failures)
