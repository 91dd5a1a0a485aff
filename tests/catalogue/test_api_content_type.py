"""CSRF through the JSON API: a page on a sibling subdomain is same-site, so the portal
session cookie (SameSite=Lax) rides along on its cross-origin POSTs. A browser sends
such a POST without a CORS preflight only with a "simple" body type (text/plain,
application/x-www-form-urlencoded, multipart/form-data) or with no body at all, never
as application/json. So a state-changing API call must declare JSON; the rest get 415.

Against a real gateway (uvicorn on 127.0.0.1), requests written byte for byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from tests.catalogue.conftest import audit_rows
from tests.proxy.conftest import Resp, Served, raw_request
from tests.tokens import access_token
from tests.wiring import parts

P = "/api/v1/catalogue"
APPLICATION = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
               "until": "2026-12-31"}


@dataclass
class Live:
    services: Services
    port: int

    def cookie(self, username: str) -> tuple[str, str]:
        store = parts(self.services).provider.store
        value, _ = store.create_session(username, "active", amr="pwd", absolute_seconds=3600)
        return ("Cookie", f"{SESSION_COOKIE}={value}")

    def bearer(self, username: str, department: str, roles: list[str]) -> tuple[str, str]:
        token = access_token(self.services, sub=username, department=department, roles=roles)
        return ("Authorization", f"Bearer {token}")

    async def send(self, method: str, path: str, headers: list[tuple[str, str]],
                   body: bytes | None = None) -> Resp:
        return await raw_request(self.port, method, path, headers, body)


@pytest.fixture
async def live(services: Services) -> AsyncIterator[Live]:
    from gateway.app import create_app

    async with Served(create_app(parts(services))) as server:
        yield Live(services, server.port)


def _applications(services: Services) -> list[dict[str, Any]]:
    return audit_rows(services, "application_")


def _is_415(r: Resp) -> None:
    assert r.status == 415, r.body
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 415
    assert problem["type"] == "urn:govgate:error:unsupported_media_type"


BODY = json.dumps(APPLICATION).encode()
CSRF_TYPES = [
    [("Content-Type", "text/plain")],
    [("Content-Type", "text/plain;charset=UTF-8")],
    [("Content-Type", "application/x-www-form-urlencoded")],
    [("Content-Type", "multipart/form-data; boundary=x")],
    [],  # a body without any Content-Type
    [("Content-Type", "text/plain; x=application/json")],
    [("Content-Type", "application/jsonp")],
    [("Content-Type", "application/json; charset=iso-8859-1")],
    [("Content-Type", "application/json; boundary=x")],
    # two Content-Type fields: which one a framework reads is anybody's guess
    [("Content-Type", "text/plain"), ("Content-Type", "application/json")],
    [("Content-Type", "application/json"), ("Content-Type", "text/plain")],
]


@pytest.mark.parametrize("ctype", CSRF_TYPES)
async def test_a_cross_site_post_with_the_session_cookie_is_415(
        live: Live, ctype: list[tuple[str, str]]) -> None:
    headers = [live.cookie("wang.wu"), ("Origin", "https://evil.gov.example"), *ctype]
    r = await live.send("POST", f"{P}/applications", headers, BODY)
    _is_415(r)
    assert _applications(live.services) == []  # nothing was submitted


async def test_a_bodyless_cross_site_post_with_the_session_cookie_is_415(live: Live) -> None:
    """``fetch(url, {method: "POST", mode: "no-cors", credentials: "include"})`` sends no
    Content-Type at all, and an empty ``<form method=post>`` sends a form type with an
    empty body: neither may retire a resource in the steward's name."""
    steward = live.cookie("zhang.san")
    for extra in ([], [("Content-Type", "application/x-www-form-urlencoded")],
                  [("Content-Type", "text/plain")]):
        for body in (None, b""):
            r = await live.send("POST", f"{P}/resources/JG-0001/retire",
                                [steward, *extra], body)
            _is_415(r)
    r = await live.send("GET", f"{P}/resources/JG-0001", [steward])
    assert r.status == 200 and r.json()["resource"]["status"] == "published"
    assert audit_rows(live.services, "resource_") == []


async def test_every_api_route_is_covered(live: Live) -> None:
    """The check sits in front of the router: the audit API (GET only today) and routes
    that do not exist yet answer 415 too, rather than depending on each handler."""
    for path in ("/api/v1/audit/records", "/api/v2/anything"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = await live.send(method, path, [live.cookie("wang.wu"),
                                               ("Content-Type", "text/plain")], b"{}")
            _is_415(r)


async def test_a_text_body_is_415_with_a_bearer_token_too(live: Live) -> None:
    token = live.bearer("wang.wu", "nn-jgsw", ["staff"])
    r = await live.send("POST", f"{P}/applications", [token, ("Content-Type", "text/plain")],
                        BODY)
    _is_415(r)
    assert _applications(live.services) == []


async def test_json_still_works(live: Live) -> None:
    r = await live.send("POST", f"{P}/applications", [
        live.cookie("wang.wu"), ("Content-Type", "application/json; charset=UTF-8")], BODY)
    assert r.status == 201, r.body
    r = await live.send("POST", f"{P}/applications", [
        live.bearer("wang.wu", "nn-jgsw", ["staff"]), ("Content-Type", "Application/JSON")],
        BODY)
    assert r.status == 201, r.body
    assert [a["event_type"] for a in _applications(live.services)] == [
        "application_submitted"] * 2
    # no body: with the session cookie it must still say JSON (forcing a CORS preflight);
    # a bearer token is never sent by a browser on its own, so it needs no Content-Type
    r = await live.send("POST", f"{P}/resources/JG-0002/retire", [
        live.cookie("zhang.san"), ("Content-Type", "application/json")])
    assert r.status == 200, r.body
    r = await live.send("POST", f"{P}/resources/JG-0001/retire", [
        live.bearer("zhang.san", "jgswj", ["staff", "data_steward"])])
    assert r.status == 200, r.body
    # without any credential it is the 401 it always was
    r = await live.send("POST", f"{P}/resources/CZ-0001/retire", [])
    assert r.status == 401
    # reading is untouched
    r = await live.send("GET", f"{P}/resources", [live.cookie("wang.wu"),
                                                  ("Content-Type", "text/plain")])
    assert r.status == 200


async def test_a_415_is_audited_with_the_target_as_sent(live: Live) -> None:
    target = f"{P}/applications?x=%3Cscript%3E"
    r = await live.send("POST", target, [live.cookie("wang.wu"),
                                         ("Content-Type", "text/plain")], BODY)
    _is_415(r)
    refused = audit_rows(live.services, "api_request")[-1]
    assert refused["outcome"] == "deny" and refused["status"] == 415
    assert refused["extra"]["path"] == target and refused["extra"]["method"] == "POST"
    assert refused["extra"]["code"] == "unsupported_media_type"
