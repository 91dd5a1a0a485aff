"""The API's description (``GET /api/v1/openapi.json``) comes from the declarations the
routes carry, and those declarations are what the handlers check their input with:

* every ``/api/v1`` route of the application is declared, and the served document names
  exactly the router's operations (a route added without a declaration fails here);
* the document is public, OpenAPI 3.1, with the OAuth2 scopes and the token URL;
* a declared schema uses only what ``gateway.web.api.schema_check`` asserts, and that
  checker's verdicts are jsonschema-rs's (Draft 2020-12) on generated values;
* the bugs the schemathesis run (tests/gateway/test_schemathesis.py) found stay fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.app import create_app, routes
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.idp.scopes import API_SCOPES
from gateway.services import Services
from gateway.web.api.openapi import PATH, operations
from gateway.web.api.operation import ApiRoute, Operation
from gateway.web.api.schema_check import JSON, problems, unsupported
from tests.catalogue.conftest import clock, services  # noqa: F401 - fixtures
from tests.catalogue.test_api import STEWARD_JG, Api
from tests.wiring import parts

DECLARED = operations(routes())
SYSADMIN = ("sysadmin", "platform", ("sysadmin",))


@pytest.fixture
def api(services: Services) -> Iterator[Api]:  # noqa: F811
    with TestClient(create_app(parts(services)), raise_server_exceptions=False,
                    base_url="http://127.0.0.1:8080") as client:
        yield Api(services, client)


def test_every_api_route_is_declared_and_described(api: Api) -> None:
    app_routes = api.client.app.routes  # type: ignore[attr-defined]
    api_routes = [r for r in app_routes  # and the one outside: the assertion keys
                  if isinstance(r, Route) and (r.path.startswith("/api/v1")
                                               or isinstance(r, ApiRoute))]
    undeclared = [r.path for r in api_routes if not isinstance(r, ApiRoute)]
    assert not undeclared, f"routes under /api/v1 without a declaration: {undeclared}"
    served = {(m.upper(), path) for path, ops in api.client.get(PATH).json()["paths"].items()
              for m in ops}
    routed = {(m, r.path) for r in api_routes for m in (r.methods or ()) if m != "HEAD"}
    assert served == routed and len(served) == len(DECLARED) == 91
    assert len({op.operation_id for op in DECLARED}) == len(DECLARED)


def test_the_description_is_public_openapi_31_with_the_scopes_and_token_url(api: Api) -> None:
    r = api.client.get(PATH)  # no token, no session
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": "http://127.0.0.1:8080"}]
    oauth2 = doc["components"]["securitySchemes"]["oauth2"]
    flow = oauth2["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://127.0.0.1:8080/oauth2/token"
    assert set(flow["scopes"]) == API_SCOPES
    assert doc["components"]["securitySchemes"]["portalSession"]["in"] == "cookie"
    audit = doc["paths"]["/api/v1/audit/records"]["get"]
    assert audit["security"] == [{"oauth2": ["audit:read"]}, {"portalSession": []}]
    assert audit["responses"]["401"]["content"]["application/problem+json"]
    assert doc["paths"][PATH]["get"]["security"] == []
    # what a schema cannot say is said in words
    assert "Beyond this description, 400 when" in doc["paths"][
        "/api/v1/catalogue/applications"]["post"]["description"]


def _schemas(op: Operation) -> Iterator[tuple[str, JSON]]:
    for p in (*op.path_params, *op.query):
        yield f"{op.method} {op.path} {p.name}", p.schema
    if op.body is not None:
        yield f"{op.method} {op.path} body", op.body


SCHEMAS = [s for op in DECLARED for s in _schemas(op)]


def test_declarations_use_only_what_is_checked() -> None:
    found = {name: unsupported(schema) for name, schema in SCHEMAS}
    assert not {k: v for k, v in found.items() if v}
    for _, schema in SCHEMAS:
        jsonschema_rs.Draft202012Validator(schema)  # a schema the standard reads


def _json() -> st.SearchStrategy[Any]:
    leaves = (st.none() | st.booleans() | st.integers(-3, 2**40) | st.sampled_from([1.0, 1.5])
              | st.text(max_size=8)
              | st.sampled_from(["", " ", "\u3000", "2026-12-31", "2026-02-30", "JG-0001",
                                 "jgswj", "x" * 65, "true", "GET", "/a", "http://h",
                                 "20261231", "2026-W01-1", "12", "-1", "１"]))
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                        max_leaves=6)


@st.composite
def _value_for(draw: st.DrawFn, schema: JSON) -> Any:
    """A value near ``schema``: its own property names and enum members, other values
    anywhere (random JSON alone would hardly ever reach past ``type``)."""
    if schema.get("enum") and draw(st.booleans()):
        return draw(st.sampled_from(schema["enum"]))
    props = schema.get("properties")
    if props and draw(st.integers(0, 3)):
        names = draw(st.lists(st.sampled_from(sorted(props)), unique=True))
        out = {n: draw(_value_for(props[n])) for n in names}
        if draw(st.integers(0, 4)) == 0:
            out[draw(st.text(max_size=3))] = draw(_json())
        return out
    items = schema.get("items")
    if items and draw(st.booleans()):
        return draw(st.lists(_value_for(items), max_size=3))
    edges = [schema[k] + d for k in ("minLength", "maxLength") if k in schema
             for d in (-1, 0, 1) if schema[k] + d >= 0]
    if edges and draw(st.booleans()):  # a length at a bound, and one past it
        return draw(st.sampled_from(["a", " ", "中"])) * draw(st.sampled_from(edges))
    if "format" in schema and draw(st.booleans()):
        return draw(st.sampled_from(["2026-12-31", "20261231", "2026-02-30", "2026-W01-1",
                                     "2026-12-31T00:00:00Z", "２０２６-１２-３１", None]))
    bounds = [schema[k] + d for k in ("minimum", "maximum") if k in schema for d in (-1, 0, 1)]
    if bounds and draw(st.booleans()):
        return draw(st.sampled_from(bounds))
    return draw(_json())


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_checker_agrees_with_jsonschema_rs(data: st.DataObject) -> None:
    name, schema = data.draw(st.sampled_from(SCHEMAS))
    value = data.draw(_value_for(schema))
    expected = jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(value)
    assert (not problems(schema, value)) == expected, (name, value, problems(schema, value))


CORPUS: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 1.5, 2**31, "", " ", "\u3000", "\x1c", "\ufeff", "a",
    "中", "0", "12", "１", "true", "GET", "get", "/", "/a", "http://h", "https://h/p",
    "JG-0001", "jgswj", "a\n", "2026-12-31", "20261231", "2026-02-30", "2026-W01-1",
    "２０２６-１２-３１", "2026-12-31T00:00:00Z", [], ["a"], ["a", "a"], [1], {}, {"a": 1},
]


def _subschemas(schema: JSON) -> Iterator[JSON]:
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from _subschemas(sub)
    if isinstance(schema.get("items"), dict):
        yield from _subschemas(schema["items"])


def _edges(schema: JSON) -> list[Any]:
    out: list[Any] = list(schema.get("enum", ()))
    for key in ("minLength", "maxLength"):
        if key in schema:
            out += [c * max(0, schema[key] + d) for d in (-1, 0, 1) for c in ("a", " ", "中")]
    for key in ("minimum", "maximum"):
        if key in schema:
            out += [schema[key] + d for d in (-1, 0, 1)]
    return out


def test_every_part_of_every_schema_judges_as_jsonschema_rs_does() -> None:
    """Each property and item schema, on a corpus of awkward values and its own bounds."""
    seen: set[str] = set()
    disagree = []
    for name, schema in SCHEMAS:
        for sub in _subschemas(schema):
            key = repr(sub)
            if key in seen:
                continue
            seen.add(key)
            rs = jsonschema_rs.Draft202012Validator(sub, validate_formats=True)
            disagree += [(name, sub, v) for v in CORPUS + _edges(sub)
                         if rs.is_valid(v) != (not problems(sub, v))]
    assert len(seen) > 50 and not disagree, disagree[:5]


# -- what schemathesis found ------------------------------------------------------------


def test_405_names_every_method_of_the_path(api: Api) -> None:
    h = api.token(*STEWARD_JG)
    r = api.client.put("/api/v1/catalogue/resources", headers=h)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    r = api.client.delete("/api/v1/admin/clients/office-web", headers=h)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"


def test_a_url_that_urlsplit_refuses_is_a_400_not_a_500(api: Api) -> None:
    r = api.client.post("/api/v1/admin/clients/office-web", headers={
        **api.token(*SYSADMIN), "Accept-Language": "en"}, json={"redirect_uris": ["https://[::1/cb"]})
    assert r.status_code == 400 and "bad URL 'https://[::1/cb'" in r.json()["errors"][0], r.text


@pytest.mark.parametrize("path", ["/api/v1/catalogue/applications/2147483648",
                                  "/api/v1/catalogue/applications/99999999999999999999"])
def test_an_id_past_its_column_is_404_on_every_database(api: Api, path: str) -> None:
    r = api.client.get(path, headers=api.token(*STEWARD_JG))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert api.client.get("/api/v1/catalogue/applications/2147483647",
                          headers=api.token(*STEWARD_JG)).status_code == 404


def test_the_application_page_past_its_column_is_404_too(api: Api) -> None:
    cookie, _ = parts(api.services).provider.store.create_session(
        "zhang.san", "active", amr="pwd", absolute_seconds=3600)
    api.client.cookies.set(SESSION_COOKIE, cookie)
    assert api.client.get("/portal/catalogue/applications/99999999999").status_code == 404
