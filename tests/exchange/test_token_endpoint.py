"""Token exchange (RFC 8693) at ``POST /oauth2/token``: what is issued, and every
refusal with its RFC 8693 section 2.2.2 / RFC 6749 section 5.2 error, audited."""

from __future__ import annotations

from typing import Any

from gateway.idp.oauth2.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from tests.dpop_proofs import Holder
from tests.exchange.conftest import ISSUER, SECRET, World, claims_of
from tests.tokens import access_token
from tests.wiring import apply_state


async def test_exchange_issues_a_delegated_token_for_the_target(world: World) -> None:
    now = int(world.services.clock().timestamp())
    subject = world.user_token("wang.wu", "nn-jgsw", exp=now + 120)
    r = await world.exchange(subject, audience=None, resource=f"{ISSUER}/s/vehicles")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "proxy:vehicles"
    assert "refresh_token" not in body
    assert body["expires_in"] == 120  # never past the subject token's exp
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "wang.wu"
    assert claims["act"] == {"sub": "client:fin-portal"}
    assert claims["aud"] == f"{ISSUER}/s/vehicles"
    assert claims["client_id"] == "fin-portal"
    # proxy:vehicles releases none of the person's claims (the proxy reads the user as
    # stored); the subject token's department was its own
    assert "department" not in claims and "roles" not in claims
    assert claims["exp"] - claims["iat"] == 120
    # a long-lived subject token: at most 300 s, and the audience as a bare code
    long = await world.exchange(world.user_token("wang.wu", "nn-jgsw"), audience="vehicles",
                                scope="proxy:vehicles")
    assert long.status_code == 200, long.text
    assert long.json()["expires_in"] == 300
    issued = [r for r in world.records("token_issued")
              if r["extra"].get("grant_type") == TOKEN_EXCHANGE]
    assert len(issued) == 2
    rec = issued[0]
    assert (rec["actor_user"], rec["actor_client"], rec["system"]) == (
        "wang.wu", "fin-portal", "vehicles")
    assert rec["extra"]["act"] == {"sub": "client:fin-portal"}
    assert rec["extra"]["aud"] == f"{ISSUER}/s/vehicles"
    assert rec["extra"]["subject_jti"] == claims_of(subject)["jti"]
    discovery = await world.http.get("/.well-known/openid-configuration")
    assert TOKEN_EXCHANGE in discovery.json()["grant_types_supported"]


async def test_every_refusal_has_its_error_and_is_audited(world: World) -> None:
    w = world
    now = int(w.services.clock().timestamp())
    good = w.user_token("wang.wu", "nn-jgsw")
    delegated = (await w.exchange(good)).json()["access_token"]
    revoked = w.user_token("wang.wu", "nn-jgsw")
    assert (await w.http.post("/oauth2/revoke", data={"token": revoked},
                              auth=("fin-portal", SECRET))
            ).status_code == 200
    cases: list[tuple[str, Any, int, str, str]] = [
        # (what, the request, status, error, a word of the audited reason)
        ("client may not exchange", w.exchange(w.user_token(
            "zhao.min", "czt", roles=("staff", "data_steward"), client_id="plain-portal"),
            client="plain-portal"), 400, "unauthorized_client", "not registered"),
        ("wrong secret", w.http.post("/oauth2/token", auth=("fin-portal", "x" * 30), data={
            "grant_type": TOKEN_EXCHANGE, "subject_token": good,
            "subject_token_type": ACCESS_TOKEN_TYPE, "audience": "vehicles"}),
         401, "invalid_client", "client authentication failed"),
        ("not a token", w.exchange("not.a.token"), 400, "invalid_grant", "not valid"),
        ("expired", w.exchange(w.user_token("wang.wu", "nn-jgsw", exp=now - 120,
                                            iat=now - 700, nbf=now - 700)),
         400, "invalid_grant", "expired"),
        ("revoked", w.exchange(revoked), 400, "invalid_grant", "revoked"),
        ("chained", w.exchange(delegated), 400, "invalid_grant",
         "delegation is one level only"),
        ("another client's token", w.exchange(w.user_token(
            "wang.wu", "nn-jgsw", client_id="nn-portal")), 400, "invalid_grant",
         "issued to another client"),
        ("a client's own token", w.exchange(access_token_of_client(w)), 400,
         "invalid_grant", "not a user's"),
        ("actor_token", w.exchange(good, actor_token=good,
                                   actor_token_type=ACCESS_TOKEN_TYPE),
         400, "invalid_request", "actor_token is not supported"),
        ("subject token type", w.exchange(good, subject_token_type="urn:x:id_token"),
         400, "invalid_request", "subject_token_type"),
        ("unknown system", w.exchange(good, audience="payroll"), 400, "invalid_target",
         "not a registered system"),
        ("another issuer's URL", w.exchange(good, audience="https://evil.example/s/x"),
         400, "invalid_target", "names no system"),
        ("no audience", w.exchange(good, audience=None), 400, "invalid_target",
         "exactly one"),
        # characters an error description may not carry (RFC 6749 section 5.2): quoted
        # percent-encoded, never a 500
        ("a non-ASCII audience", w.exchange(good, audience="档案"), 400, "invalid_target",
         "'%E6%A1%A3%E6%A1%88' names no system"),
        ("quote and backslash", w.exchange(good, audience='a"b\\c'), 400,
         "invalid_target", "'a%22b%5Cc' names no system"),
        ("a code and a newline", w.exchange(good, audience="echo\n"), 400,
         "invalid_target", "'echo%0A' names no system"),
        ("two audiences", w.exchange(good, resource=f"{ISSUER}/s/echo"), 400,
         "invalid_target", "exactly one"),
        ("scope wider than the target", w.exchange(good, scope="proxy:vehicles openid"),
         400, "invalid_scope", "proxy:vehicles only, not openid"),
        # RFC 6749 section 5.2: a scope it may not have alone is refused, named
        ("a scope the client may not have", w.exchange(good, scope="admin"),
         400, "invalid_scope", "proxy:vehicles only, not admin"),
        ("scope the user's token lacks", w.exchange(w.user_token(
            "wang.wu", "nn-jgsw", scope="openid proxy:echo")), 400, "invalid_scope",
         "user's token does not hold"),
    ]
    for what, call, status, error, reason in cases:
        r = await call
        assert (r.status_code, r.json().get("error")) == (status, error), (what, r.text)
        denied = w.records(("token_denied", "client_authentication"))
        assert reason in (denied[-1]["reason"] or ""), (what, denied[-1])
    issued = [r for r in w.records("token_issued")
              if r["extra"].get("grant_type") == TOKEN_EXCHANGE]
    assert len(issued) == 1  # only the first, good exchange
    await _client_registration_limits_the_scope(w)


def access_token_of_client(w: World) -> str:
    return access_token(w.services, sub=None, department="czt", client_id="fin-portal",
                        scope="proxy")


async def _client_registration_limits_the_scope(world: World) -> None:
    apply_state(world.services, {"clients": [{
        "client_id": "fin-portal", "name": "fin-portal", "department": "czt",
        "grant_types": ["client_credentials"], "scope": "proxy:echo",
        "token_endpoint_auth_method": "client_secret_basic",
        "token_exchange": True}]})
    r = await world.exchange(world.user_token("wang.wu", "nn-jgsw"))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
    assert "client is not registered for proxy:vehicles" in r.json()["error_description"]
    # a client scoped to other systems learns nothing of which codes exist: the same
    # refusal for a system that does not exist as for one it may not reach (as the
    # proxy answers it, docs/proxy.md)
    r = await world.exchange(world.user_token("wang.wu", "nn-jgsw"), audience="payroll")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope"), r.text
    assert r.json()["error_description"] == \
        "the client is not registered for proxy:payroll"


async def test_a_dpop_bound_subject_token_is_exchanged_only_with_a_proof_of_its_key(
        world: World) -> None:
    """RFC 9449: the subject token bound to the client's key is worth nothing without a
    proof of it (refused, audited); with one, the delegated token is bound to it too."""
    holder = Holder()
    subject = world.user_token("wang.wu", "nn-jgsw", cnf={"jkt": holder.jkt})
    r = await world.exchange(subject)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "DPoP-bound" in world.records("token_denied")[-1]["reason"]
    r = await world.exchange(subject, headers_dpop=holder.proof(
        "POST", f"{ISSUER}/oauth2/token", iat=int(world.services.clock().timestamp())))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    assert claims_of(r.json()["access_token"])["cnf"] == {"jkt": holder.jkt}
