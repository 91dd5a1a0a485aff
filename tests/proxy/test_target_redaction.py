"""No credential in the audit record's request target (gateway.proxy.target_redaction):
a CAS ticket, an authorisation code or an access token on a proxied callback, a
session id as a path parameter, an API key in forward-auth's URI are masked in the
record, while the system still receives them as sent."""

from __future__ import annotations

import json

import pytest

from gateway.proxy.target_redaction import redact_target, secret_name
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers

SECRETS = ("ST-1-Zq8secretTicket", "authzCodeS3cret", "bearerS3cret", "s3ssionId")


def _record_text(world: World) -> str:
    rec = world.audit.records[-1]
    return json.dumps({"path": rec.extra.get("path"), "reason": rec.reason,
                       "extra": rec.extra}, ensure_ascii=False, default=str)


async def test_a_proxied_callback_keeps_its_credentials_out_of_the_record(
        world: World) -> None:
    query = (f"ticket={SECRETS[0]}&code={SECRETS[1]}&plate=%E4%BA%ACA1&"
             f"Access-Token={SECRETS[2]}&state=xyz")
    r = await world.request("GET", f"/s/echo/api/callback?{query}", token=world.token())
    assert r.status == 200
    assert world.echo.seen[-1]["query"] == query  # the system gets them as sent
    rec = world.audit.records[-1]
    assert rec.extra["path"] == ("/s/echo/api/callback?ticket=[redacted]&code=[redacted]&"
                                 "plate=%E4%BA%ACA1&Access-Token=[redacted]&state=xyz")
    text = _record_text(world)
    assert not any(s in text for s in SECRETS)


async def test_a_session_id_path_parameter_is_masked(world: World) -> None:
    r = await world.request("GET", f"/s/echo/api;jsessionid={SECRETS[3]}/x?y=1",
                            token=world.token())
    assert r.status == 200
    assert world.audit.records[-1].extra["path"] == "/s/echo/api;jsessionid=[redacted]/x?y=1"
    assert SECRETS[3] not in _record_text(world)
    # a segment read as empty is refused (docs/seams.md, forward-auth): masked there too
    r = await world.request("GET", f"/s/echo/;JSESSIONID={SECRETS[3]}/x", token=world.token())
    assert r.status == 400
    rec = world.audit.records[-1]
    assert rec.status == 400 and rec.extra["path"] == "/s/echo/;JSESSIONID=[redacted]/x"
    assert SECRETS[3] not in _record_text(world)


async def test_forward_auth_masks_the_uri_it_was_given(world: World) -> None:
    r = await world.request("GET", "/auth/verify", token=world.token(),
                            headers=verify_headers(f"/s/echo/api/x?api_key={SECRETS[2]}&n=2"))
    assert r.status == 200
    rec = world.audit.records[-1]
    assert rec.event_type == "forward_auth"
    assert rec.extra["path"] == "/s/echo/api/x?api_key=[redacted]&n=2"
    assert SECRETS[2] not in _record_text(world)


@pytest.mark.parametrize(("name", "secret"), [
    ("access_token", True), ("id_token_hint", True), ("ticket", True), ("code", True),
    ("SAMLResponse", True), ("X-Amz-Signature", True), ("sig", True), ("api-key", True),
    ("password", True), ("jsessionid", True), ("key", True), ("%74oken", True),
    # PHP's session cookie name, a SAML artifact (resolved to the assertion), a
    # one-time code, and names as lax servers read them (PHP's "code[]", "code ")
    ("PHPSESSID", True), ("SAMLart", True), ("otp", True), ("passcode", True),
    ("code[]", True), ("code%20", True), ("pin", True), ("private_key", True),
    ("code_verifier", True),
    ("spinner", False), ("shipping", False),
    ("plate", False), ("department_code", False), ("state", False), ("keyword", False),
    ("page", False), ("author", False),
])
def test_which_names_carry_a_credential(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_targets_without_credentials_are_unchanged() -> None:
    for target in ("/s/echo/a", "/s/echo/a?x=1&y", "/s/echo/a;v=1/b?=&code", "/s/e?code="):
        assert redact_target(target) == target


def test_a_semicolon_separated_query_is_masked_in_both_readings() -> None:
    """Perl's CGI and others split a query at ";" as at "&" (catalogue.query reads it
    so): a credential after a ";" is masked, and one whose value holds a ";" is masked
    whole, for the servers that split at "&" only."""
    assert (redact_target("/s/e/cb?state=x;ticket=ST-1-abc;n=2&code=c;d")
            == "/s/e/cb?state=x;ticket=[redacted];n=2&code=[redacted]")
