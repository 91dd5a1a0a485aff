from __future__ import annotations

import base64
import json
import warnings
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.clock import FrozenClock
from keys import (
    CorruptKey,
    InvalidSignature,
    KeyService,
    KeyStateError,
    UnknownAlgorithm,
    UnknownKey,
    UnknownUse,
)
from keys.tables import signing_keys


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _header(token: str) -> dict:
    seg = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def _active(svc: KeyService, use: str) -> str:
    return next(i.kid for i in svc.list_keys() if i.use == use and i.state == "active")


def test_bootstrap_is_idempotent(service: KeyService) -> None:
    service.bootstrap()
    infos = service.list_keys()
    # the RS256 ID-token key is made on its first need, not here (an RSA key's cost)
    assert sorted(i.use for i in infos) == ["assertion", "audit", "token"]
    assert {i.state for i in infos} == {"active"}
    assert {i.alg for i in infos} == {"ES256"}
    with pytest.raises(UnknownAlgorithm):
        service.rotate("token_rs256", "ES256")  # one algorithm, whatever is asked
    service.ensure_active("token_rs256")
    service.ensure_active("token_rs256")  # once
    made = [(i.alg, i.state) for i in service.list_keys() if i.use == "token_rs256"]
    assert made == [("RS256", "active")]


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_sign_verify_each_alg(make_service, alg: str) -> None:
    svc: KeyService = make_service(default_alg=alg)
    svc.bootstrap()
    token = svc.sign_jwt("token", {"sub": "zhang.san", "n": 1}, headers={"typ": "at+jwt"})
    header = _header(token)
    assert header == {"alg": alg, "kid": _active(svc, "token"), "typ": "at+jwt"}
    assert svc.verify_jwt("token", token) == {"sub": "zhang.san", "n": 1}
    # an independent JOSE library verifies the token against the published JWK
    from joserfc import jwt
    from joserfc.errors import SecurityWarning
    from joserfc.jwk import KeySet

    jwks = KeySet.import_key_set({"keys": [svc.public_jwk(header["kid"])]})
    chinese = svc.sign_jwt("token", {"name": "张三"})
    with warnings.catch_warnings():  # joserfc calls EdDSA deprecated (RFC 9864); RPs use it
        warnings.simplefilter("ignore", SecurityWarning)
        decoded = jwt.decode(token, jwks, algorithms=[alg])
        assert decoded.claims == {"sub": "zhang.san", "n": 1}
        assert decoded.header["typ"] == "at+jwt"
        assert jwt.decode(chinese, jwks, algorithms=[alg]).claims == {"name": "张三"}
    kid, sig = svc.sign("audit", b"checkpoint")
    svc.verify("audit", kid, b"checkpoint", sig)
    with pytest.raises(InvalidSignature):
        svc.verify("audit", kid, b"checkpoinT", sig)
    jwk = svc.public_jwk(kid)
    assert jwk["kid"] == kid and jwk["alg"] == alg and jwk["use"] == "sig"
    assert "d" not in jwk and "p" not in jwk


def test_headers_cannot_override_alg_or_kid(service: KeyService) -> None:
    token = service.sign_jwt("token", {"a": 1}, headers={"alg": "none", "kid": "evil"})
    header = _header(token)
    assert header["alg"] == "ES256" and header["kid"] == _active(service, "token")
    assert header["typ"] == "JWT"


def test_use_separates_domains(service: KeyService) -> None:
    token = service.sign_jwt("assertion", {"aud": "vehicles"})
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", token)
    kid, sig = service.sign("audit", b"x")
    with pytest.raises(InvalidSignature):
        service.verify("token", kid, b"x", sig)


def test_rejects_none_hs_and_forgeries(service: KeyService) -> None:
    kid = _active(service, "token")
    good = service.sign_jwt("token", {"sub": "a"})
    h, p, s = good.split(".")
    jwk = service.public_jwk(kid)
    cases = [
        f"{_b64({'alg': 'none', 'kid': kid})}.{p}.",
        f"{_b64({'alg': 'HS256', 'kid': kid})}.{p}.{s}",
        f"{_b64({'alg': 'RS256', 'kid': kid})}.{p}.{s}",
        f"{_b64({'alg': 'ES256'})}.{p}.{s}",
        f"{_b64({'alg': 'ES256', 'kid': 'nope'})}.{p}.{s}",
        f"{_b64({'alg': 'ES256', 'kid': [kid]})}.{p}.{s}",
        f"{h}.{_b64({'sub': 'b'})}.{s}",
        f"{h}.{p}.{s[:-4]}AAAA",
        f"{h}.{p}",
        "not a token",
        "",
        f"{_b64({'alg': 'ES256', 'kid': kid, 'jwk': jwk})}.{p}.{s}",
        "a" * 20000,
        f"{_b64(['alg'])}.{p}.{s}",
        f"!!!.{p}.{s}",
    ]
    for token in cases:
        with pytest.raises(InvalidSignature):
            service.verify_jwt("token", token)
    # HS256 signed with the public key as the secret (alg confusion)
    import hashlib
    import hmac

    hs_head = _b64({"alg": "HS256", "kid": kid, "typ": "JWT"})
    secret = json.dumps(jwk).encode()
    mac = hmac.new(secret, f"{hs_head}.{p}".encode(), hashlib.sha256).digest()
    forged = f"{hs_head}.{p}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", forged)


def test_rotation_lifecycle(make_service, clock: FrozenClock) -> None:
    svc: KeyService = make_service(
        prepublish_seconds=3600, max_token_lifetime_seconds=600, clock_skew_seconds=60
    )
    svc.bootstrap()
    old = _active(svc, "token")
    old_token = svc.sign_jwt("token", {"sub": "old"})

    new = svc.rotate("token")
    assert new.state == "pending"
    # published at once, but does not sign
    assert [k["kid"] for k in svc.jwks("token")["keys"]] == [old, new.kid]
    assert _header(svc.sign_jwt("token", {}))["kid"] == old

    # prepublication delay honoured
    clock.advance(3599)
    assert svc.promote_due() == []
    assert _header(svc.sign_jwt("token", {}))["kid"] == old
    clock.advance(1)
    changed = {i.kid: i.state for i in svc.promote_due()}
    assert changed == {old: "retired", new.kid: "active"}
    assert _header(svc.sign_jwt("token", {}))["kid"] == new.kid

    # the old key never signs again, but its tokens verify while it is in the JWKS
    for _ in range(3):
        assert _header(svc.sign_jwt("token", {}))["kid"] == new.kid
    assert svc.sign("token", b"x")[0] == new.kid
    assert svc.verify_jwt("token", old_token) == {"sub": "old"}
    assert old in [k["kid"] for k in svc.jwks("token")["keys"]]
    retired = next(i for i in svc.list_keys() if i.kid == old)
    assert retired.leaves_jwks_at == clock.now + timedelta(seconds=660)

    clock.advance(659)
    assert svc.verify_jwt("token", old_token) == {"sub": "old"}
    assert svc.promote_due() == []
    clock.advance(1)
    assert old not in [k["kid"] for k in svc.jwks("token")["keys"]]
    with pytest.raises(InvalidSignature):
        svc.verify_jwt("token", old_token)
    # verification at an explicit earlier instant still accepts it
    assert svc.verify_jwt("token", old_token, at=clock.now - timedelta(seconds=10))
    destroyed = svc.promote_due()
    assert [(i.kid, i.state) for i in destroyed] == [(old, "destroyed")]
    with pytest.raises(InvalidSignature):
        svc.verify_jwt("token", old_token, at=clock.now - timedelta(seconds=10))
    with pytest.raises(UnknownKey):
        svc.public_jwk(old)
    assert svc.public_jwk(old, include_destroyed=True)["kid"] == old
    with svc.engine.connect() as conn:
        blob = conn.execute(
            sa.select(signing_keys.c.private_blob).where(signing_keys.c.kid == old)
        ).scalar()
    assert blob is None


def test_sign_promotes_a_due_key_itself(service: KeyService, clock: FrozenClock) -> None:
    new = service.rotate("assertion")
    clock.advance(3600)
    assert _header(service.sign_jwt("assertion", {}))["kid"] == new.kid


def test_audit_keys_are_not_auto_destroyed(service: KeyService, clock: FrozenClock) -> None:
    kid, sig = service.sign("audit", b"cp")
    service.rotate("audit", "EdDSA")
    clock.advance(3600)
    service.promote_due()
    clock.advance(365 * 86400)
    service.promote_due()
    service.verify("audit", kid, b"cp", sig)  # old checkpoints stay verifiable
    assert service.public_jwk(kid)["kid"] == kid
    assert service.sign("audit", b"x")[0] != kid


def test_rotate_bad_input(service: KeyService) -> None:
    before = service.list_keys()
    with pytest.raises(UnknownUse):
        service.rotate("email")
    with pytest.raises(UnknownAlgorithm):
        service.rotate("token", "HS256")
    with pytest.raises(UnknownAlgorithm):
        service.rotate("token", "none")
    assert service.list_keys() == before
    service.rotate("token", "RS256")
    with pytest.raises(KeyStateError, match="already pending"):
        service.rotate("token")
    assert len(service.list_keys()) == len(before) + 1
    with pytest.raises(UnknownUse):
        service.sign_jwt("bogus", {})
    with pytest.raises(UnknownUse):
        service.jwks("bogus")


def test_destroy_rules(service: KeyService, clock: FrozenClock) -> None:
    active = _active(service, "token")
    with pytest.raises(KeyStateError, match="only active"):
        service.destroy(active)
    with pytest.raises(UnknownKey):
        service.destroy("no-such-kid")
    pending = service.rotate("token")
    assert service.destroy(pending.kid).state == "destroyed"  # cancels the rotation
    with pytest.raises(KeyStateError, match="already destroyed"):
        service.destroy(pending.kid)
    assert service.sign("token", b"x")[0] == active
    token_by_old = service.sign_jwt("token", {"k": "old"})
    nxt = service.rotate("token")
    with pytest.raises(KeyStateError, match="no pending"):
        service.promote_now("assertion")
    service.promote_now("token")  # compromise: skip the prepublication delay
    assert _header(service.sign_jwt("token", {}))["kid"] == nxt.kid
    assert service.verify_jwt("token", token_by_old) == {"k": "old"}
    service.destroy(active)  # retired: allowed, verification stops at once
    assert active not in [k["kid"] for k in service.jwks()["keys"]]
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", token_by_old)


def test_scheduled_rotation(service: KeyService, clock: FrozenClock) -> None:
    assert service.maintain(90 * 86400) == []
    clock.advance(90 * 86400)
    created = service.maintain(90 * 86400)
    assert sorted((i.use, i.state) for i in created) == [
        ("assertion", "pending"), ("audit", "pending"), ("token", "pending")
    ]
    assert service.maintain(90 * 86400) == []  # pending already; not due yet
    clock.advance(3600)
    promoted = service.maintain(90 * 86400)
    assert sorted(i.state for i in promoted) == ["active"] * 3 + ["retired"] * 3


def test_jwks_public_parts_and_headers(make_service) -> None:
    svc: KeyService = make_service(default_alg="RS256", prepublish_seconds=3600)
    svc.bootstrap()
    doc = svc.jwks()
    assert len(doc["keys"]) == 3
    for k in doc["keys"]:
        assert set(k) == {"kty", "n", "e", "kid", "alg", "use"}
    assert svc.jwks_response_headers()["Cache-Control"] == "public, max-age=300"
    short: KeyService = make_service(prepublish_seconds=120)
    assert short.jwks_response_headers()["Cache-Control"] == "public, max-age=60"


def test_corrupt_rows(service: KeyService, engine: sa.Engine) -> None:
    kid = _active(service, "token")
    token = service.sign_jwt("token", {"a": 1})
    fresh = KeyService(engine, service.master, service.profile, clock=service.clock,
                       cache_seconds=0)
    # corrupt sealed private key: a clear error naming the key, no signing
    with engine.begin() as conn:
        conn.execute(signing_keys.update().where(signing_keys.c.kid == kid)
                     .values(private_blob=b"\x01\x01garbage" + b"\x00" * 40))
    with pytest.raises(CorruptKey, match=kid):
        fresh.sign_jwt("token", {})
    with pytest.raises(CorruptKey, match=kid):
        fresh.check()
    # corrupt public part: that key stops verifying, the others still work
    with engine.begin() as conn:
        conn.execute(signing_keys.update().where(signing_keys.c.kid == kid)
                     .values(public_jwk="{not json"))
    with pytest.raises(InvalidSignature):
        fresh.verify_jwt("token", token)
    with pytest.raises(CorruptKey, match=kid):
        fresh.public_jwk(kid)
    assert kid not in [k["kid"] for k in fresh.jwks()["keys"]]
    a = fresh.sign_jwt("assertion", {"x": 1})
    assert fresh.verify_jwt("assertion", a) == {"x": 1}
    # bad state value
    with engine.begin() as conn:
        conn.execute(signing_keys.update().where(signing_keys.c.kid == kid)
                     .values(state="weird"))
    with pytest.raises(CorruptKey, match=kid):
        fresh.list_keys()


def test_no_active_key(make_service) -> None:
    svc: KeyService = make_service()
    with pytest.raises(KeyStateError, match="govgate init"):
        svc.sign_jwt("token", {})


def test_two_processes_share_the_ring(make_service, clock: FrozenClock) -> None:
    a: KeyService = make_service()
    a.bootstrap()
    b: KeyService = make_service()
    new = a.rotate("token")
    clock.advance(3600)
    a.promote_due()
    token = b.sign_jwt("token", {"p": "b"})
    assert _header(token)["kid"] == new.kid
    assert a.verify_jwt("token", token) == {"p": "b"}


def test_cached_active_key_never_outlives_a_promotion(make_service, clock: FrozenClock) -> None:
    a: KeyService = make_service()
    a.bootstrap()
    b: KeyService = make_service(cache_seconds=3600.0)  # another process, long cache
    old = _header(b.sign_jwt("token", {}))["kid"]
    new = a.rotate("token")
    assert _header(b.sign_jwt("token", {}))["kid"] == old  # cached, still correct
    clock.advance(3600)
    a.promote_due()
    assert _header(b.sign_jwt("token", {}))["kid"] == new.kid
    assert b.sign("token", b"x")[0] == new.kid


def test_a_key_promoted_elsewhere_a_moment_after_a_read_is_found_at_once(
        make_service, clock: FrozenClock, engine: sa.Engine) -> None:
    """The other process read its ring a moment ago (its cache's expiry, or any
    verification); a key promoted since is looked up again on its first token, not
    refused until the cache expires. Made-up kids still cost at most one query per
    ``UNKNOWN_KID_SECONDS``."""
    a: KeyService = make_service()
    a.bootstrap()
    b: KeyService = make_service(cache_seconds=3600.0)  # another process, long cache
    assert b.verify_jwt("token", a.sign_jwt("token", {"n": 1})) == {"n": 1}  # b read now
    a.rotate("token")
    clock.advance(3600)
    a.promote_due()  # a rotation with "now", through the other process
    fresh = a.sign_jwt("token", {"n": 2})
    assert b.verify_jwt("token", fresh) == {"n": 2}  # within the same 0.1 s as b's read
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "signing_keys" in statement:
            reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for n in range(5):
            forged = fresh.split(".")
            header = json.loads(base64.urlsafe_b64decode(forged[0] + "=="))
            header["kid"] = f"made-up-{n}"
            forged[0] = base64.urlsafe_b64encode(
                json.dumps(header).encode()).rstrip(b"=").decode()
            with pytest.raises(InvalidSignature):
                b.verify_jwt("token", ".".join(forged))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(reads) <= 1
