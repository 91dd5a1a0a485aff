"""SM2 signatures (GM/T 0003.2, with SM3) from the Tongsuo project's binding, private
to ``keys``.

``cryptography`` offers no SM2, and we write no primitive: keys, signatures and the
SM3 digest come from ``tongsuopy`` (a ``cryptography`` fork with Tongsuo linked in,
its own OpenSSL, separate from ``cryptography``'s). A signature is GM/T 0003.2's:
``e = SM3(Z || M)``, Z over the default distinguishing identifier
``1234567812345678`` (GM/T 0009) and the public key; ``tests/keys/test_sm2.py``
proves it against the ``openssl`` command in both directions.

The JOSE form (docs/keys.md, "SM2"): the JWK is ``{"kty": "EC", "crv": "SM2", "x",
"y"}`` (32-byte coordinates, base64url), the JWS ``alg`` is ``SM2SM3`` and the
signature ``r || s`` (32 bytes each), as RFC 7518 section 3.4 encodes ES256.
:class:`SM2Key` and :data:`SM2SM3` plug that form into joserfc, which decodes and
checks every SM2 token as it does the others.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeAlias

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc.jwk import ECKey
from joserfc.jws import JWSAlgModel
from joserfc.util import base64_to_int, int_to_base64
from tongsuopy.crypto import hashes as ts_hashes
from tongsuopy.crypto import serialization as ts_serialization
from tongsuopy.crypto.asymciphers import ec as ts_ec
from tongsuopy.crypto.exceptions import InternalError, InvalidSignature

ALG = "SM2SM3"
CRV = "SM2"
SIZE = 32  # bytes of a coordinate, of r and of s
_SM3_SIGNATURE = ts_ec.ECDSA(ts_hashes.SM3())  # on an SM2 key: the SM2 scheme, Z included

# the classes, for isinstance; tongsuopy ships no type information, so in annotations
# its keys are Any
PRIVATE: Any = ts_ec.EllipticCurvePrivateKey
PUBLIC: Any = ts_ec.EllipticCurvePublicKey
PrivateKey: TypeAlias = Any
PublicKey: TypeAlias = Any


class SignatureFailure(Exception):
    """An SM2 signature did not verify (or was not 64 bytes)."""


def generate() -> PrivateKey:
    return ts_ec.generate_private_key(ts_ec.SM2())


def is_key(key: object) -> bool:
    return isinstance(key, PRIVATE | PUBLIC)


def private_to_der(key: PrivateKey) -> bytes:
    return bytes(key.private_bytes(
        ts_serialization.Encoding.DER, ts_serialization.PrivateFormat.PKCS8,
        ts_serialization.NoEncryption()))


def private_from_der(der: bytes) -> PrivateKey:
    """An SM2 private key from PKCS#8 DER; ValueError if it is anything else."""
    try:
        key = ts_serialization.load_der_private_key(der, password=None)
    except Exception as exc:  # tongsuopy raises ValueError, TypeError or its own errors
        raise ValueError(f"stored key is not an SM2 key ({type(exc).__name__})") from None
    if not isinstance(key, PRIVATE) or not isinstance(key.curve, ts_ec.SM2):
        raise ValueError("stored key is not an SM2 key")
    return key


def sign(key: PrivateKey, payload: bytes) -> bytes:
    """The SM2 signature of ``payload`` as ``r || s``."""
    r, s = decode_dss_signature(key.sign(payload, _SM3_SIGNATURE))
    return r.to_bytes(SIZE, "big") + s.to_bytes(SIZE, "big")


def verify(key: PublicKey, payload: bytes, signature: bytes) -> None:
    """SignatureFailure unless ``signature`` (``r || s``) is SM2's over ``payload``."""
    if len(signature) != 2 * SIZE:
        raise SignatureFailure("bad signature length")
    der = encode_dss_signature(int.from_bytes(signature[:SIZE], "big"),
                               int.from_bytes(signature[SIZE:], "big"))
    try:
        key.verify(der, payload, _SM3_SIGNATURE)
    except (InvalidSignature, InternalError) as exc:
        raise SignatureFailure("bad signature") from exc


def public_from_coordinates(x: str, y: str) -> PublicKey:
    """The public key of a JWK's ``x`` and ``y``; ValueError off the curve."""
    numbers = ts_ec.EllipticCurvePublicNumbers(base64_to_int(x), base64_to_int(y), ts_ec.SM2())
    return numbers.public_key()


# --- joserfc: the SM2 key and the SM2SM3 algorithm ------------------------------------


class _SM2Binding:
    """joserfc's key binding (``joserfc._rfc7517.models.NativeKeyBinding``) for SM2:
    JWK members to and from tongsuopy keys. Only what ``SM2Key`` reaches is here."""

    use_key_ops_registry: ClassVar[dict[str, list[str]]] = {"sig": ["sign", "verify"]}

    @classmethod
    def convert_raw_key_to_dict(cls, raw_key: Any, private: bool) -> dict[str, Any]:
        public = raw_key.public_key() if isinstance(raw_key, PRIVATE) else raw_key
        numbers = public.public_numbers()
        out = {"crv": CRV, "x": int_to_base64(numbers.x, SIZE),
               "y": int_to_base64(numbers.y, SIZE)}
        if private and isinstance(raw_key, PRIVATE):
            out["d"] = int_to_base64(raw_key.private_numbers().private_value, SIZE)
        return out

    @classmethod
    def import_from_dict(cls, value: dict[str, Any]) -> Any:
        if value.get("crv") != CRV:
            raise ValueError("not an SM2 key")
        if "d" in value:
            raise ValueError("SM2 private keys are not imported from a JWK")
        return public_from_coordinates(str(value["x"]), str(value["y"]))

    @classmethod
    def import_from_bytes(cls, value: bytes, password: Any = None) -> Any:
        raise ValueError("SM2 keys are imported from a JWK")

    @classmethod
    def validate_dict_key_registry(cls, dict_key: dict[str, Any], registry: Any) -> None:
        ECKey.binding.validate_dict_key_registry(dict_key, registry)

    @classmethod
    def validate_dict_key_use_operations(cls, dict_key: dict[str, Any]) -> None:
        ECKey.binding.validate_dict_key_use_operations(dict_key)


class SM2Key(ECKey):
    """A JWK of ``kty`` EC on the SM2 curve, holding a tongsuopy key. It is an
    ``ECKey`` for joserfc (so ``jwt.decode`` takes it), but ES256 never accepts it
    (its curve is not P-256) and :data:`SM2SM3` accepts nothing else."""

    binding = _SM2Binding  # type: ignore[assignment]  # duck-typed: SM2 is no ECBinding curve

    @classmethod
    def from_key(cls, key: PrivateKey | PublicKey) -> SM2Key:
        return cls(key, key)

    @property
    def is_private(self) -> bool:
        return isinstance(self.raw_value, PRIVATE)

    @property
    def public_key(self) -> Any:
        raw: Any = self.raw_value
        return raw.public_key() if isinstance(raw, PRIVATE) else raw

    @property
    def private_key(self) -> Any:
        raw: Any = self.raw_value
        return raw if isinstance(raw, PRIVATE) else None

    @property
    def curve_name(self) -> str:
        return CRV

    @property
    def curve_key_size(self) -> int:
        return 8 * SIZE


class SM2SM3Algorithm(JWSAlgModel):
    """JWS ``alg`` ``SM2SM3``: SM2 signature with SM3 (GM/T 0003.2), ``r || s``."""

    name = ALG
    description = "SM2 signature with SM3 (GM/T 0003.2, default ID 1234567812345678)"
    key_type = "EC"

    def check_key(self, key: Any) -> None:
        super().check_key(key)
        if not isinstance(key, SM2Key):
            raise ValueError("SM2SM3 needs an SM2 key")

    def sign(self, msg: bytes, key: Any) -> bytes:
        return sign(key.get_op_key("sign"), msg)

    def verify(self, msg: bytes, sig: bytes, key: Any) -> bool:
        try:
            verify(key.get_op_key("verify"), msg, sig)
        except SignatureFailure:
            return False
        return True


SM2SM3 = SM2SM3Algorithm()
