"""Raw primitives, private to ``keys``: AEAD, digests, HMAC, asymmetric keys, JWS.

Nothing here is home-made: AES-GCM, SM4-GCM, SHA-256, SM3, HMAC, ECDSA, RSA and
Ed25519 come from ``cryptography``; SM2 from the Tongsuo project's ``tongsuopy``
(``keys._sm2``); JWS decoding and verification from ``joserfc``.
Only modules of this package import this one; everyone else uses the recipes
(``KeyService.seal``/``open``/``sign``/``verify``/``jwks``).
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac as _hmac
import json
from typing import Any, cast

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as _chmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from keys import _sm2

__all__ = ["ALGORITHMS", "AeadFailure", "SignatureFailure"]

ALGORITHMS = ("ES256", "RS256", "EdDSA", _sm2.ALG)
NONCE_SIZE = 12
TAG_SIZE = 16

# SM2 keys (tongsuopy's) are Any to the type checker: tongsuopy ships no types
PrivateKey = (ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
              | _sm2.PrivateKey)
PublicKey = (ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
             | _sm2.PublicKey)


class AeadFailure(Exception):
    """Decryption failed (bad tag, bad length); callers map it to their own error."""


class SignatureFailure(Exception):
    """A raw signature did not verify."""


# --- digests and HMAC -------------------------------------------------------------


def digest(hash_name: str, data: bytes) -> bytes:
    if hash_name == "sha256":
        return hashlib.sha256(data).digest()
    if hash_name == "sm3":
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize()
    raise ValueError(f"unknown hash {hash_name}")


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    if hash_name == "sha256":
        return _hmac.new(key, data, hashlib.sha256).digest()
    if hash_name == "sm3":
        h = _chmac.HMAC(key, hashes.SM3())
        h.update(data)
        return h.finalize()
    raise ValueError(f"unknown hash {hash_name}")


# --- AEAD ---------------------------------------------------------------------------


def aead_encrypt(cipher: str, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Ciphertext followed by the 16-byte tag."""
    if cipher == "AES-256-GCM":
        return AESGCM(key).encrypt(nonce, plaintext, aad)
    if cipher == "SM4-GCM":
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        body = enc.update(plaintext) + enc.finalize()
        return body + enc.tag
    raise ValueError(f"unknown cipher {cipher}")


def aead_decrypt(cipher: str, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    if len(nonce) != NONCE_SIZE or len(data) < TAG_SIZE:
        raise AeadFailure("truncated")
    try:
        if cipher == "AES-256-GCM":
            return AESGCM(key).decrypt(nonce, data, aad)
        if cipher == "SM4-GCM":
            body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
            dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
            dec.authenticate_additional_data(aad)
            return dec.update(body) + dec.finalize()
    except (InvalidTag, ValueError) as exc:
        raise AeadFailure("authentication failed") from exc
    raise AeadFailure(f"unknown cipher {cipher}")


# --- asymmetric keys ----------------------------------------------------------------


def generate_private_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == _sm2.ALG:
        return _sm2.generate()
    raise ValueError(f"unknown algorithm {alg}")


def private_to_der(key: PrivateKey) -> bytes:
    if isinstance(key, _sm2.PRIVATE):
        return _sm2.private_to_der(key)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_from_der(alg: str, der: bytes) -> PrivateKey:
    if alg == _sm2.ALG:
        return _sm2.private_from_der(der)
    key: Any = serialization.load_der_private_key(der, password=None)
    expected = {
        "ES256": ec.EllipticCurvePrivateKey,
        "RS256": rsa.RSAPrivateKey,
        "EdDSA": ed25519.Ed25519PrivateKey,
    }[alg]
    if not isinstance(key, expected):
        raise ValueError(f"stored key is not a {alg} key")
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("stored EC key is not on P-256")
    return cast(PrivateKey, key)


def jose_key(key: PrivateKey | PublicKey) -> Any:
    if _sm2.is_key(key):
        return _sm2.SM2Key.from_key(key)
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ECKey.import_key(key)
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return RSAKey.import_key(key)
    return OKPKey.import_key(key)


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public JWK members (kty, crv, x, y / n, e) without kid, alg, use."""
    return dict(jose_key(key.public_key()).as_dict(private=False))


def thumbprint(jwk_public: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (base64url SHA-256), used as the kid."""
    kty = jwk_public["kty"]
    if kty == "EC" and jwk_public.get("crv") == _sm2.CRV:
        return str(_sm2.SM2Key.import_key(jwk_public).thumbprint())
    if kty == "EC":
        return str(ECKey.import_key(jwk_public).thumbprint())
    if kty == "RSA":
        return str(RSAKey.import_key(jwk_public).thumbprint())
    return str(OKPKey.import_key(jwk_public).thumbprint())


def public_from_jwk(jwk_public: dict[str, Any]) -> Any:
    """A joserfc public key from stored JWK members."""
    members = {k: v for k, v in jwk_public.items() if k not in ("kid", "alg", "use")}
    if "d" in members:
        raise ValueError("stored public JWK holds private members")
    kty = members.get("kty")
    if kty == "EC" and members.get("crv") == _sm2.CRV:
        return _sm2.SM2Key.import_key(members)
    if kty == "EC":
        return ECKey.import_key(members)
    if kty == "RSA":
        return RSAKey.import_key(members)
    if kty == "OKP":
        return OKPKey.import_key(members)
    raise ValueError(f"unknown kty {kty!r}")


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())  # immutable; built once, not per signature


def sign_raw(alg: str, key: PrivateKey, payload: bytes) -> bytes:
    """Signature bytes in the JWS encoding (ES256: r||s, 64 bytes)."""
    if alg == "ES256":
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(payload, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "RS256":
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    if alg == "EdDSA":
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign(payload)
    if alg == _sm2.ALG:
        assert isinstance(key, _sm2.PRIVATE)
        return _sm2.sign(key, payload)
    raise ValueError(f"unknown algorithm {alg}")


def verify_raw(alg: str, jose_public: Any, payload: bytes, signature: bytes) -> None:
    public = jose_public.public_key
    try:
        if alg == "ES256":
            if len(signature) != 64 or not isinstance(public, ec.EllipticCurvePublicKey):
                raise SignatureFailure("bad signature")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public.verify(der, payload, ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256" and isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "EdDSA" and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, payload)
        elif alg == _sm2.ALG and isinstance(public, _sm2.PUBLIC):
            _sm2.verify(public, payload, signature)
        else:
            raise SignatureFailure("key does not match algorithm")
    except (_CryptoInvalidSignature, _sm2.SignatureFailure) as exc:
        raise SignatureFailure("bad signature") from exc


# --- JWS / JWT ----------------------------------------------------------------------

# joserfc flags "EdDSA" as deprecated by RFC 9864 in favour of "Ed25519" and warns on
# every use. Relying parties still expect "EdDSA" (RFC 8037), so a private registry
# holds a copy of the same algorithm object without the warning.
_quiet_eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
_quiet_eddsa.security_warning = None


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _quiet_eddsa,  # noqa: RUF012
                  _sm2.ALG: _sm2.SM2SM3}


_REGISTRIES = {alg: _Registry(algorithms=[alg]) for alg in ALGORITHMS}


def jwt_encode(alg: str, private: PrivateKey, header: dict[str, Any],
               claims: dict[str, Any]) -> str:
    """The compact JWS (RFC 7515 §7.1) of ``claims``: BASE64URL(header) "."
    BASE64URL(claims) "." BASE64URL(signature), the signature from :func:`sign_raw`.

    Built here rather than through joserfc's ``jwt.encode``, which costs several times
    the ECDSA signature itself and capped the token endpoint; joserfc still decodes
    and verifies every token (tests check its view of these tokens)."""
    items = tuple(header.items())
    if all(type(v) is str for _, v in items):
        encoded_header = _encoded_header(items)
    else:  # not a cache key: lists; and True == 1 would share an entry
        encoded_header = _b64url(_compact_json(header))
    signing_input = encoded_header + b"." + _b64url(_compact_json(claims))
    return (signing_input + b"." + _b64url(sign_raw(alg, private, signing_input))
            ).decode("ascii")


_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False).encode


@functools.lru_cache(maxsize=256)
def _encoded_header(items: tuple[tuple[str, str], ...]) -> bytes:
    """BASE64URL(header): a key's header (alg, kid, typ) is the same for every token."""
    return _b64url(_compact_json(dict(items)))


def _b64url(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt_decode(alg: str, jose_public: Any, token: str) -> dict[str, Any]:
    """Claims of ``token`` after checking its signature; raises SignatureFailure."""
    try:
        decoded = jwt.decode(token, jose_public, algorithms=[alg], registry=_REGISTRIES[alg])
    except Exception as exc:  # joserfc raises a variety of JoseError/ValueError types
        raise SignatureFailure(type(exc).__name__) from exc
    if decoded.header.get("alg") != alg:
        raise SignatureFailure("alg mismatch")
    return dict(decoded.claims)
