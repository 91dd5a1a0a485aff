"""The key ring under attack (review of 2026-12-05, 密评): forged JWS headers, key
confusion between uses, AAD swaps, private members in the JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.clock import FrozenClock
from gateway.storage import create_engine
from keys import STANDARD, FileMasterKey, InvalidBlob, InvalidSignature, KeyService
from tests.conftest import fresh_database

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _seg(obj: Any) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _parts(token: str) -> tuple[dict[str, Any], str, str]:
    head, body, sig = token.split(".")
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))), body, sig


def _forge(service: KeyService, use: str, header: dict[str, Any], claims: dict[str, Any]
           ) -> str:
    """A token whose signature is the real key's over our own header (via keys.sign)."""
    signing_input = (_seg(header) + "." + _seg(claims)).encode()
    _kid, sig = service.sign(use, signing_input)
    return signing_input.decode() + "." + _b64(sig)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyService]:
    """One key ring for the module: no test here needs a fresh one (the JWKS test's
    pending keys change nothing the others look at)."""
    folder = tmp_path_factory.mktemp("attacks")
    with fresh_database(folder) as url:
        engine = create_engine(url)
        svc = KeyService(engine, FileMasterKey.create(folder / "master.key"), STANDARD,
                         clock=FrozenClock(), prepublish_seconds=3600,
                         max_token_lifetime_seconds=600, clock_skew_seconds=60)
        svc.bootstrap()
        yield svc
        engine.dispose()


@pytest.fixture
def token_kid(service: KeyService) -> str:
    return str(_parts(service.sign_jwt("token", {"sub": "a"}))[0]["kid"])


def test_alg_none_and_hs256_with_the_public_key_are_refused(
        service: KeyService, token_kid: str) -> None:
    none = _seg({"alg": "none", "kid": token_kid}) + "." + _seg({"sub": "x"}) + "."
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", none)
    jwk = service.public_jwk(token_kid)
    for secret in (json.dumps(jwk).encode(), json.dumps(jwk, separators=(",", ":")).encode()):
        signing_input = (_seg({"alg": "HS256", "kid": token_kid}) + "." + _seg({"sub": "x"}))
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(InvalidSignature):
            service.verify_jwt("token", signing_input + "." + _b64(mac))


def test_embedded_jwk_jku_x5u_are_ignored(service: KeyService, token_kid: str) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = ECKey.import_key(attacker.public_key()).as_dict(private=False)
    header = {"alg": "ES256", "kid": token_kid, "jwk": jwk,
              "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c.pem"}
    token = jwt.encode(header, {"sub": "admin"}, ECKey.import_key(attacker))
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", token)


def test_a_key_of_another_use_does_not_verify(service: KeyService) -> None:
    assertion = service.sign_jwt("assertion", {"sub": "a"})
    audit = service.sign_jwt("audit", {"sub": "a"})
    for token in (assertion, audit):
        with pytest.raises(InvalidSignature, match="use or algorithm"):
            service.verify_jwt("token", token)
    kid, sig = service.sign("assertion", b"payload")
    with pytest.raises(InvalidSignature):
        service.verify("token", kid, b"payload", sig)


STRANGE_KIDS = ["../../etc/passwd", "token-*", "", None, ["x"], {"a": 1}, "x" * 5000,
                "' OR 1=1 --"]
BAD_HEADERS = ["%%%", _b64(b"not json"), _b64(b"[1]"), _b64(b"\xff\xfe")]


def test_strange_kids_and_malformed_headers_are_a_plain_refusal(service: KeyService) -> None:
    tail = "." + _seg({"sub": "x"}) + "." + _b64(b"s" * 64)
    heads = [_seg({"alg": "ES256", "kid": kid}) for kid in STRANGE_KIDS] + BAD_HEADERS
    for head in heads:
        with pytest.raises(InvalidSignature):
            service.verify_jwt("token", head + tail)


def test_an_unknown_crit_header_is_refused_even_with_a_good_signature(
        service: KeyService, token_kid: str) -> None:
    header = {"alg": "ES256", "kid": token_kid, "typ": "JWT", "crit": ["x-govgate-bind"],
              "x-govgate-bind": "somewhere"}
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", _forge(service, "token", header, {"sub": "x"}))
    # the control: the same forging path with a plain header verifies
    header = {"alg": "ES256", "kid": token_kid, "typ": "JWT"}
    assert service.verify_jwt("token", _forge(service, "token", header, {"sub": "x"})) == {
        "sub": "x"}


def test_es256_signatures_in_der_are_refused(service: KeyService, token_kid: str) -> None:
    token = service.sign_jwt("token", {"sub": "a"})
    head, body, _sig = token.split(".")
    # sign again through the primitive, and encode the same (r, s) as DER
    info, private, _ = service.ring.active("token")
    assert info.alg == "ES256"
    der = private.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    decode_dss_signature(der)  # it is a valid DER signature
    with pytest.raises(InvalidSignature):
        service.verify_jwt("token", f"{head}.{body}.{_b64(der)}")


def test_the_jwks_holds_no_private_member(service: KeyService) -> None:
    for use in ("token", "token_rs256", "assertion", "audit"):
        service.rotate(use)  # a pending key too
    keys = service.jwks()["keys"]
    assert len(keys) == 7  # token_rs256's first key is active at once: nothing pending
    # the RS256 ID-token key is RSA whatever the default
    assert {(k["kty"], k["use"]) for k in keys} == {("EC", "sig"), ("RSA", "sig")}
    for jwk in keys:
        assert not PRIVATE_MEMBERS & set(jwk), jwk


def test_a_sealed_value_does_not_open_under_another_row(service: KeyService) -> None:
    blob = service.seal(b"JBSWY3DPEHPK3PXP", "users.totp_secret:1")
    assert service.open(blob, "users.totp_secret:1") == b"JBSWY3DPEHPK3PXP"
    for context in ("users.totp_secret:2", "users.totp_secret:10", "saml.key:1",
                    "users.totp_secret:1 "):
        with pytest.raises(InvalidBlob):
            service.open(blob, context)


def test_two_seals_never_share_a_nonce(service: KeyService) -> None:
    nonces = {service.seal(b"x", "c")[6:18] for _ in range(200)}
    assert len(nonces) == 200
