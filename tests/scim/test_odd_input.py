"""What a stranger sends a SCIM client's way (the attack of 2026-12-05,
docs/seams.md): text no database stores, numbers past a 64-bit integer. Each was a
500 (or, for a NUL on SQLite, a stored name PostgreSQL could not hold) before its fix;
now a SCIM error, and nothing written."""

from __future__ import annotations

import pytest

from gateway.errors import NotFound
from tests.scim.conftest import World
from tests.scim.test_refusals import PATCH, scim_error

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
HUGE = "99999999999999999999"


@pytest.mark.parametrize(("username", "name"), [
    ("odd.high", "\\ud800"), ("odd.low", "x\\udc00"), ("odd.nul", "a\\u0000b")])
def test_a_name_no_database_stores_is_refused(world: World, username: str, name: str
                                              ) -> None:
    """(An escaped pair, "\\ud83d\\ude00", is one character in JSON: a good name.)"""
    # by hand: json.dumps would escape the escape's backslash
    body = ('{"schemas": ["' + USER + '"], "userName": "' + username
            + '", "displayName": "' + name + '"}').encode()
    with world.http() as http:
        answer = http.post("/Users", content=body,
                           headers={"Content-Type": "application/scim+json"})
        scim_error(answer, 400, "invalidValue")
        scim_error(http.get("/Users", params={"filter": f'userName eq "{name}"'}), 400,
                   "invalidFilter")
    with pytest.raises(NotFound):
        world.services.org.get_user(username)


def test_numbers_past_a_64_bit_integer(world: World) -> None:
    with world.http() as http:
        listed = http.get("/Users", params={"startIndex": HUGE})
        assert listed.status_code == 200, listed.text
        assert listed.json()["Resources"] == []
        scim_error(http.get(f"/Users/{HUGE}"), 404)
        scim_error(http.patch(f"/Users/{HUGE}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}), 404)
        member = http.patch("/Groups/staff", json={"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": HUGE}]}]})
        assert member.status_code in (200, 204, 400, 404), member.text


def test_a_search_body_with_an_infinite_start(world: World) -> None:
    """``1e999`` is JSON for infinity in Python's reader: no integer (a 500 before)."""
    with world.http() as http:
        answer = http.post("/Users/.search", headers={"Content-Type": "application/scim+json"},
                           content=b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:'
                                   b'SearchRequest"], "startIndex": 1e999}')
        scim_error(answer, 400, "invalidValue")
