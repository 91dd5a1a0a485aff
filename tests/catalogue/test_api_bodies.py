"""Bad JSON bodies on the API: every route that reads a body reads it through one
parser (``gateway.web.api.body``) that bounds size and nesting depth, wants UTF-8 and one
JSON object, and answers RFC 9457 problem details; never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.services import Services
from gateway.web.api.body import MAX_BODY_BYTES, MAX_DEPTH
from gateway.web.api.operation import ApiRoute
from tests.catalogue.test_api import STEWARD_JG, Api
from tests.wiring import parts

P = "/api/v1/catalogue"
JSON = {"Content-Type": "application/json"}

#: name -> (body, expected status)
BAD_BODIES: dict[str, tuple[bytes, int]] = {
    "nested arrays": (b"[" * 5000 + b"]" * 5000, 400),
    "nested objects": (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400),
    "nested inside an object": (b'{"items": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
    "2 MB": (json.dumps({"purpose": "x" * (2 * 1024 * 1024)}).encode(), 413),
    "invalid UTF-8": (b'{"purpose": "\xff\xfe"}', 400),
    "UTF-16": ('{"purpose": "x"}'.encode("utf-16"), 400),
    "an array": (b'["resource"]', 400),
    "a string": (b'"resource"', 400),
    "a number": (b"1", 400),
    "null": (b"null", 400),
    "not JSON": (b"{resource: 1}", 400),
    "NaN": (b'{"purpose": NaN}', 400),
    "a NUL": (b'{"purpose": "a\\u0000b"}', 400),
    "a lone surrogate": (b'{"purpose": "\\ud800"}', 400),
}

#: who calls a route: its console's administrator (a role is checked before the
#: body is read), else the data steward
SYSADMIN = ("sys.admin", "platform", ("sysadmin",))
SECADMIN = ("sec.admin", "platform", ("secadmin",))
AUDITOR = ("audit.admin", "platform", ("auditor",))
CALLER = {"/api/v1/break-glass/{id}/approve": SECADMIN,
          "/api/v1/break-glass/{id}/end": SECADMIN,
          "/api/v1/break-glass/{id}/review": AUDITOR,
          "/api/v1/admin/users": SYSADMIN, "/api/v1/admin/departments": SYSADMIN,
          "/api/v1/admin/systems": SYSADMIN, "/api/v1/admin/clients": SYSADMIN,
          "/api/v1/admin/policies": SECADMIN, "/api/v1/admin/grants": SECADMIN,
          "/api/v1/admin/keys": SECADMIN}


def _caller(path: str) -> tuple[str, str, tuple[str, ...]]:
    return next((who for prefix, who in CALLER.items() if path.startswith(prefix)),
                STEWARD_JG)


def _url(path: str) -> str:
    # a department or a system code is lower case (gateway.org, gateway.tables)
    code = "jgswj" if path.startswith("/api/v1/admin/") else "JG-0001"
    if path.startswith("/api/v1/break-glass/"):  # its ids have a form of their own
        path = path.replace("{id}", "bg_" + "0" * 15 + "1")
    for name, value in (("{id}", "1"), ("{code}", code), ("{username}", "li.si"),
                        ("{client_id}", "office-web"), ("{line_id}", "1")):
        path = path.replace(name, value)
    return path


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    from gateway.app import create_app

    with TestClient(create_app(parts(services)), raise_server_exceptions=False,
                    headers={"Accept-Language": "en"}) as client:  # the refusals' English
        yield Api(services, client)


def json_routes(api: Api) -> list[str]:
    """Every POST route under /api/v1 that takes a JSON body, from the app's router (the
    routes that read no body declare none: the call names everything in its path)."""
    found = [r.path for r in api.client.app.routes  # type: ignore[attr-defined]
             if isinstance(r, ApiRoute) and r.path.startswith("/api/v1/")
             and "POST" in (r.methods or ()) and r.operation.body is not None]
    assert len(found) >= 7, found
    return found


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_every_json_route_refuses_a_bad_body(api: Api, name: str) -> None:
    body, status = BAD_BODIES[name]
    for path in json_routes(api):
        url = _url(path)
        auth = api.token(*_caller(path))
        r = api.client.post(url, content=body, headers={**JSON, **auth})
        assert r.status_code == status, (name, url, r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/problem+json", (name, url)
        problem = r.json()
        assert problem["status"] == status and problem["detail"], (name, url)


def test_the_limits_are_the_documented_ones(api: Api) -> None:
    """At the limits a body is read; one past them it is refused."""
    auth = {**JSON, **api.token(*STEWARD_JG)}
    url = f"{P}/applications"
    deep = b'{"resource": "JG-0001", "x": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    r = api.client.post(url, content=deep, headers=auth)
    assert r.status_code == 400 and "missing" in json.dumps(r.json()), r.text  # read, then
    too_deep = deep.replace(b"[", b"[[", 1).replace(b"]", b"]]", 1)
    r = api.client.post(url, content=too_deep, headers=auth)
    assert r.status_code == 400 and "nests deeper" in r.json()["detail"]
    # brackets inside strings are text, not nesting
    r = api.client.post(url, content=json.dumps({"purpose": "[" * 5000}).encode(), headers=auth)
    assert r.status_code == 400 and "missing" in json.dumps(r.json())
    pad = MAX_BODY_BYTES - len(b'{"x": ""}')
    r = api.client.post(url, content=b'{"x": "' + b"a" * pad + b'"}', headers=auth)
    assert r.status_code == 400 and "missing" in json.dumps(r.json())
    r = api.client.post(url, content=b'{"x": "' + b"a" * (pad + 1) + b'"}', headers=auth)
    assert r.status_code == 413


def test_an_empty_body_is_an_empty_object(api: Api) -> None:
    r = api.client.post(f"{P}/applications", content=b"", headers={
        **JSON, **api.token(*STEWARD_JG)})
    assert r.status_code == 400 and r.json()["errors"]


def test_the_depth_check_is_linear_and_ignores_strings() -> None:
    """Brackets and escaped quotes inside strings are text; a body of unclosed strings
    with escaped quotes (which makes a backtracking string pattern quadratic) is
    checked in one pass."""
    import time

    from gateway.web.api.body import nests_deeper_than

    assert not nests_deeper_than(b'["[[[[[[", "\\"[[[[[["]', 2)
    assert nests_deeper_than(b'[[["\\\\"]]]', 2)
    assert not nests_deeper_than(b'[["\\\\"]]', 2)
    assert nests_deeper_than(b'{"a": {"b": [1]}}', 2)
    started = time.perf_counter()
    nests_deeper_than(b'["' + b'a\\"' * 300_000, 16)
    assert time.perf_counter() - started < 2
