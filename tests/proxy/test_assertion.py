"""Assertion minting: claims, lifetime, and signing across a key rotation."""

from __future__ import annotations

from gateway.idp.authenticator import Principal
from gateway.proxy.assertion import TYP, AssertionSigner, mint_assertion
from gateway.services import Services

WHO = Principal("finance-system", None, "czt", "gx", frozenset(), "finance-system",
                frozenset(), None, "jti1", "bearer")


def test_signer_matches_sign_jwt_and_follows_rotation(base_services: Services) -> None:
    s = base_services
    signer = AssertionSigner(s.keys)
    now = s.clock()
    fast = signer.mint(WHO, issuer="https://gw", system="vehicles", request_id="r1", now=now,
                       lifetime=600)
    slow = mint_assertion(s.keys, WHO, issuer="https://gw", system="vehicles",
                          request_id="r1", now=now)
    for token in (fast, slow):
        claims = s.keys.verify_jwt("assertion", token)
        assert claims["aud"] == "vehicles" and claims["exp"] - claims["iat"] == 60
        assert claims["client_id"] == "finance-system" and claims["username"] is None
        assert claims["request_id"] == claims["jti"] == "r1"
    import base64
    import json

    head = json.loads(base64.urlsafe_b64decode(fast.split(".")[0] + "=="))
    assert head["typ"] == TYP
    old_kid = head["kid"]
    s.keys.rotate("assertion")
    s.keys.promote_now("assertion")
    after = signer.mint(WHO, issuer="https://gw", system="vehicles", request_id="r2", now=now)
    head = json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "=="))
    assert head["kid"] != old_kid
    assert s.keys.verify_jwt("assertion", after)["request_id"] == "r2"


def test_cached_claims_equal_assertion_claims_for_every_call(base_services: Services) -> None:
    from gateway.proxy.assertion import assertion_claims

    s = base_services
    signer = AssertionSigner(s.keys)
    who = Principal('li.si"\\', '李四"', "czt", "gx", frozenset({"staff", "data_steward"}),
                    "finance-system", frozenset({"openid"}), "sid1", "jti2", "session")
    now = s.clock()
    for rid, system, method, path in (("r1", "vehicles", None, None),
                                      ("r2", "vehicles", "GET", "/api/车\"x"),
                                      ("r3", "assets", "POST", "/a%20b"),
                                      ("r4\\", "assets", "GET", "/a\\b\x01\x7f")):
        token = signer.mint(who, issuer="https://gw", system=system, request_id=rid, now=now,
                            method=method, path=path)
        claims = s.keys.verify_jwt("assertion", token)
        expected = assertion_claims(who, issuer="https://gw", system=system, request_id=rid,
                                    now=now, method=method, path=path)
        assert claims == expected
        assert ("htm" in claims) == (method is not None)


def test_a_delegated_call_and_the_users_own_get_their_own_assertions(
        base_services: Services) -> None:
    # the same user, client and system, once acting for the user through a delegated
    # token: the claims differ by ``act``, so the signer's cache must tell them apart
    import dataclasses

    from gateway.idp.authenticator import ActingClient

    s = base_services
    signer = AssertionSigner(s.keys)
    own = Principal("li.si", "li.si", "czt", "gx", frozenset({"staff"}), "finance-system",
                    frozenset(), None, "jti3", "bearer")
    delegated = dataclasses.replace(own, actor=ActingClient("finance-system", "czt", "gx"))
    now = s.clock()
    for first, second in ((own, delegated), (delegated, own)):
        signer = AssertionSigner(s.keys)
        for who in (first, second):
            claims = s.keys.verify_jwt("assertion", signer.mint(
                who, issuer="https://gw", system="vehicles", request_id="r", now=now))
            assert ("act" in claims) == (who.actor is not None), claims
