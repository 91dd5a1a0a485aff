"""SM2 in the key ring under the 国密 profile: the real GM/T 0003.2 signature (SM3, Z
over the default ID), proved against the ``openssl`` command both ways; keys made,
sealed, rotated and published like the others; refused under the standard profile."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.backends.openssl.backend import backend as crypto_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec
from tongsuopy.backends.tongsuo.backend import backend as tongsuo_backend
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto.asymciphers import ec as sm_ec

from audit.archive import JwksSigCheck
from audit.errors import ArchiveError
from gateway.clock import FrozenClock
from gateway.errors import SettingsError
from gateway.settings import Settings, load_settings
from govgate_upstream import AssertionVerifier, InvalidAssertion
from keys import GM, STANDARD, InvalidSignature, KeyService, UnknownAlgorithm
from keys import _primitives as primitives
from keys.tables import signing_keys
from tests.guomi.sm2_tools import (
    b64,
    openssl_key,
    openssl_sign,
    openssl_verifies,
    unb64,
)

Make = Callable[..., KeyService]


@pytest.fixture
def gm(make_service: Make) -> KeyService:
    svc = make_service(profile=GM, default_alg="SM2SM3")
    svc.bootstrap()
    return svc


def _jwk(svc: KeyService, kid: str) -> dict:
    return next(k for k in svc.jwks()["keys"] if k["kid"] == kid)


def _flip(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(unb64(sig))
    raw[5] ^= 1
    return f"{head}.{body}.{b64(bytes(raw))}"


def test_ring_signs_gmt0003_sm2_that_openssl_verifies(gm: KeyService, openssl: str,
                                                      tmp_path: Path) -> None:
    assert {(i.use, i.alg) for i in gm.list_keys()} == {
        ("token", "SM2SM3"), ("assertion", "SM2SM3"), ("audit", "SM2SM3")}
    for jwk in gm.jwks()["keys"]:  # the documented JWKS form (docs/keys.md, "SM2")
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "SM2", "SM2SM3", "sig")
        assert len(unb64(jwk["x"])) == len(unb64(jwk["y"])) == 32
    # a checkpoint signature (raw r || s)
    payload = b'{"v":1,"seq":1,"hash":"sm3"}'
    kid, sig = gm.sign("audit", payload)
    assert len(sig) == 64
    assert openssl_verifies(openssl, tmp_path, _jwk(gm, kid), payload, sig)
    # Z is over GM/T 0009's default ID: under any other ID the same signature fails
    assert not openssl_verifies(openssl, tmp_path, _jwk(gm, kid), payload, sig,
                                distid="1234567812345679")
    assert not openssl_verifies(openssl, tmp_path, _jwk(gm, kid), payload + b" ", sig)
    # a token: the JWS signature over header.payload
    token = gm.sign_jwt("token", {"sub": "zhang.san"}, headers={"typ": "at+jwt"})
    head, body, tsig = token.split(".")
    header = json.loads(unb64(head))
    assert header["alg"] == "SM2SM3" and header["typ"] == "at+jwt"
    assert openssl_verifies(openssl, tmp_path, _jwk(gm, header["kid"]),
                            f"{head}.{body}".encode(), unb64(tsig))
    assert gm.verify_jwt("token", token)["sub"] == "zhang.san"
    # tampered: one bit of the signature
    with pytest.raises(InvalidSignature):
        gm.verify_jwt("token", _flip(token))
    with pytest.raises(InvalidSignature):
        gm.verify("audit", kid, payload, sig[:5] + bytes([sig[5] ^ 1]) + sig[6:])


def test_openssl_signatures_verify_in_every_sm2_verifier(openssl: str, tmp_path: Path) -> None:
    """openssl signs; the gateway's joserfc path, the upstream helper and the offline
    archive check each accept it, and refuse it changed."""
    key, jwk = openssl_key(openssl, tmp_path)
    kid = "assertion-20270101-openssl"
    published = {**jwk, "kid": kid, "alg": "SM2SM3", "use": "sig"}
    now = 1_800_000_000
    claims = {"iss": "https://gw.example", "aud": "vehicles", "iat": now, "nbf": now,
              "exp": now + 30, "username": "zhang.san"}
    head = b64(json.dumps({"alg": "SM2SM3", "kid": kid, "typ": "govgate-assertion+jwt"}
                          ).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    token = f"{head}.{body}.{b64(openssl_sign(openssl, tmp_path, key, signing_input))}"

    jose_public = primitives.public_from_jwk(published)
    assert primitives.jwt_decode("SM2SM3", jose_public, token) == claims
    with pytest.raises(primitives.SignatureFailure):
        primitives.jwt_decode("SM2SM3", jose_public, _flip(token))
    with pytest.raises(primitives.SignatureFailure):  # an SM2 key never verifies ES256
        primitives.jwt_decode("ES256", jose_public, token)

    verifier = AssertionVerifier(issuer="https://gw.example", audience="vehicles",
                                 jwks={"keys": [published]}, clock=lambda: now + 1)
    assert verifier.verify(token)["username"] == "zhang.san"
    with pytest.raises(InvalidAssertion):
        verifier.verify(_flip(token))

    raw = openssl_sign(openssl, tmp_path, key, b"checkpoint")
    check = JwksSigCheck({"keys": [published]})
    check(kid, b"checkpoint", raw)
    with pytest.raises(ArchiveError):
        check(kid, b"checkpoint!", raw)


def test_sm2_keys_are_sealed_rotated_and_published_like_the_others(
        gm: KeyService, make_service: Make, clock: FrozenClock, engine: sa.Engine) -> None:
    old_token = gm.sign_jwt("token", {"n": 1})
    old_kid = json.loads(unb64(old_token.split(".")[0]))["kid"]
    pending = gm.rotate("token")
    assert (pending.alg, pending.state) == ("SM2SM3", "pending")
    assert pending.kid in {k["kid"] for k in gm.jwks("token")["keys"]}
    assert gm.published_algs("token") == ["SM2SM3"]
    clock.advance(3600)
    assert {i.kid: i.state for i in gm.promote_due()} == {old_kid: "retired",
                                                          pending.kid: "active"}
    # a new process: nothing cached, the private key opened from its sealed blob
    other = make_service(profile=GM, default_alg="SM2SM3")
    new_token = other.sign_jwt("token", {"n": 2})
    assert json.loads(unb64(new_token.split(".")[0]))["kid"] == pending.kid
    assert other.verify_jwt("token", old_token)["n"] == 1  # retired, still in the window
    with engine.connect() as conn:
        blob = conn.execute(sa.select(signing_keys.c.private_blob).where(
            signing_keys.c.kid == pending.kid)).scalar_one()
    assert bytes(blob)[:2] == b"\x01\x02"  # blob format 1, sealed under gm (SM4-GCM)
    private = primitives.private_to_der(other.ring.active("token")[1])
    assert private not in bytes(blob)
    assert other.check() is None


def test_the_standard_profile_accepts_no_sm2_token(gm: KeyService, make_service: Make) -> None:
    token = gm.sign_jwt("token", {"n": 1})
    kid, sig = gm.sign("audit", b"checkpoint")
    standard = make_service(profile=STANDARD)  # the same ring after a switch back
    with pytest.raises(InvalidSignature, match="not accepted"):
        standard.verify_jwt("token", token)
    with pytest.raises(UnknownAlgorithm):
        standard.rotate("token", "SM2SM3")
    standard.verify("audit", kid, b"checkpoint", sig)  # old checkpoints stay verifiable
    # scheduled rotation replaces the SM2 key by one of the profile's default
    assert {i.alg for i in standard.rotate_due(0)} == {"ES256"}


def test_signing_alg_setting_follows_the_profile(env: dict[str, str]) -> None:
    assert Settings().signing_alg == "ES256"  # the default profile: as before
    assert Settings(crypto_profile="gm").signing_alg == "SM2SM3"
    assert load_settings({**env, "GOVGATE_CRYPTO_PROFILE": "gm"}).signing_alg == "SM2SM3"
    chosen = load_settings({**env, "GOVGATE_CRYPTO_PROFILE": "gm",
                            "GOVGATE_SIGNING_ALG": "ES256"})
    assert chosen.signing_alg == "ES256"
    with pytest.raises(SettingsError, match="under crypto_profile 'standard'"):
        load_settings({**env, "GOVGATE_SIGNING_ALG": "SM2SM3"})


def test_tongsuo_and_cryptography_live_side_by_side() -> None:
    """Three OpenSSLs in one process: the system's (the ssl module), cryptography's
    and tongsuopy's own (Tongsuo, linked into its extension module, which Python loads
    RTLD_LOCAL), none taking another's symbols."""
    versions = {ssl.OPENSSL_VERSION, crypto_backend.openssl_version_text(),
                tongsuo_backend.openssl_version_text()}
    assert len(versions) == 3, versions
    ssl.create_default_context()
    p256 = crypto_ec.generate_private_key(crypto_ec.SECP256R1())
    sm2 = sm_ec.generate_private_key(sm_ec.SM2())
    for i in range(20):
        data = b"%d" % i
        p256.public_key().verify(p256.sign(data, crypto_ec.ECDSA(hashes.SHA256())), data,
                                 crypto_ec.ECDSA(hashes.SHA256()))
        sm2.public_key().verify(sm2.sign(data, sm_ec.ECDSA(sm_hashes.SM3())), data,
                                sm_ec.ECDSA(sm_hashes.SM3()))
