"""Rotation seen from two processes (two key services on one database, each with its
own caches): a token the promoting process signs with the new key verifies at once in
the other, although that one's cached ring still shows the key pending."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from gateway.clock import FrozenClock
from gateway.proxy.assertion import TYP, AssertionSigner
from keys import KeyService


@pytest.fixture
def two(make_service: Callable[..., KeyService]) -> tuple[KeyService, KeyService]:
    # caches that outlive the test: only a deliberate re-read can show the promotion
    a, b = make_service(cache_seconds=60.0), make_service(cache_seconds=60.0)
    a.bootstrap()
    return a, b


def _published_pending(a: KeyService, b: KeyService) -> None:
    a.rotate("token")
    old = a.sign_jwt("token", {"sub": "before"})
    assert b.verify_jwt("token", old) == {"sub": "before"}
    # b's cached ring now holds the pending key, as every worker's JWKS does
    assert [k["kid"] for k in b.jwks("token")["keys"]][1].startswith("token-")


def test_a_scheduled_promotion_elsewhere_does_not_refuse_the_new_keys_tokens(
        two: tuple[KeyService, KeyService], clock: FrozenClock) -> None:
    a, b = two
    _published_pending(a, b)
    clock.advance(3600)
    new = a.sign_jwt("token", {"sub": "after"})  # a promotes the due key and signs
    assert b.verify_jwt("token", new) == {"sub": "after"}


def test_an_emergency_promotion_elsewhere_does_not_refuse_the_new_keys_tokens(
        two: tuple[KeyService, KeyService]) -> None:
    a, b = two
    _published_pending(a, b)
    a.promote_now("token")
    new = a.sign_jwt("token", {"sub": "after"})
    assert b.verify_jwt("token", new) == {"sub": "after"}
    kid, sig = a.sign("token", b"payload")
    b.verify("token", kid, b"payload", sig)


def test_the_proxy_signs_assertions_with_a_key_another_process_just_made_active(
        two: tuple[KeyService, KeyService], clock: FrozenClock) -> None:
    """`govgate keys rotate --use assertion --now` in the CLI while the gateway serves:
    the gateway's active key cache expires before its JWKS cache, and its signer met a
    kid that cache did not know (RuntimeError: a 500 for every proxied request)."""
    a, b = two
    signer = AssertionSigner(b)
    first = signer.sign({"sub": "before"})
    assert b.jwks("assertion")["keys"]  # b's ring is cached (60 s, monotonic)
    a.rotate("assertion")
    new = a.promote_now("assertion")
    clock.advance(3600)  # b's active-key cache (valid until its prepublication) ends
    token = signer.sign({"sub": "after"})
    assert token.split(".")[0] != first.split(".")[0]
    assert a.verify_jwt("assertion", token) == {"sub": "after"}
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")) == {
        "alg": new.alg, "kid": new.kid, "typ": TYP}
