"""What the 国密 tests check SM2 with, independently of ``keys``: the ``openssl``
command (OpenSSL 3's SM2, a separate implementation from Tongsuo's) and the JWK
members a relying party reads from the JWKS."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import serialization
from tongsuopy.crypto.asymciphers import ec

from tests.guomi.conftest import DEFAULT_ID, openssl_run


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pem_of_jwk(jwk: dict[str, Any]) -> bytes:
    """The SubjectPublicKeyInfo PEM of an SM2 JWK, for ``openssl -pubin``."""
    assert (jwk["kty"], jwk["crv"]) == ("EC", "SM2")
    public = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64(jwk["x"]), "big"),
                                           int.from_bytes(unb64(jwk["y"]), "big"),
                                           ec.SM2()).public_key()
    return bytes(public.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def openssl_verifies(openssl: str, tmp: Path, jwk: dict[str, Any], data: bytes,
                     signature: bytes, distid: str = DEFAULT_ID) -> bool:
    """Does ``openssl pkeyutl`` accept ``signature`` (JWS ``r || s``) as the SM2
    signature of ``data`` (SM3, Z over ``distid``) by ``jwk``?"""
    assert len(signature) == 64
    (tmp / "pub.pem").write_bytes(pem_of_jwk(jwk))
    (tmp / "data").write_bytes(data)
    (tmp / "sig").write_bytes(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                                   int.from_bytes(signature[32:], "big")))
    done = openssl_run(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", tmp / "pub.pem",
                       "-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{distid}",
                       "-in", tmp / "data", "-sigfile", tmp / "sig")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0 and b"Verified Successfully" in done.stdout


def openssl_key(openssl: str, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A new SM2 key made by ``openssl genpkey``: its PEM file and its public JWK."""
    key = tmp / "openssl-sm2.pem"
    done = openssl_run(openssl, "genpkey", "-algorithm", "SM2", "-out", key)
    assert done.returncode == 0, done.stderr
    der = openssl_run(openssl, "pkey", "-in", key, "-pubout", "-outform", "DER")
    assert der.returncode == 0, der.stderr
    point = der.stdout[-65:]  # SubjectPublicKeyInfo ends with the point 04 || x || y
    assert point[0] == 4
    return key, {"kty": "EC", "crv": "SM2", "x": b64(point[1:33]), "y": b64(point[33:])}


def openssl_sign(openssl: str, tmp: Path, key: Path, data: bytes) -> bytes:
    """``openssl pkeyutl -sign`` (SM3, default ID) of ``data``, as JWS ``r || s``."""
    (tmp / "to-sign").write_bytes(data)
    done = openssl_run(openssl, "pkeyutl", "-sign", "-inkey", key, "-rawin", "-digest", "sm3",
                       "-pkeyopt", f"distid:{DEFAULT_ID}", "-in", tmp / "to-sign")
    assert done.returncode == 0, done.stderr
    r, s = decode_dss_signature(done.stdout)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
