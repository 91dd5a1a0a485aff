"""The two browser bindings' encodings (SAML 2.0 Bindings, sections 3.4 and 3.5),
read strictly and within bounds, and the HTTP-Redirect binding's query signature.

- HTTP-Redirect: ``SAMLRequest`` is the XML, DEFLATE-compressed (raw, RFC 1951),
  then base64; a signature covers the query's own octets
  ``SAMLRequest=...&RelayState=...&SigAlg=...`` exactly as sent (section 3.4.4.1),
  so it is checked over the raw query string, never over a re-encoding of it.
- HTTP-POST: ``SAMLRequest``/``SAMLResponse`` is the XML, base64; a signature is
  enveloped in the XML (checked by pysaml2 and xmlsec1).

Anything that is not base64, inflates past ``MAX_XML`` or is not UTF-8 raises
``Refused`` (the 400 page).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.idp.saml.errors import BadSignature, Refused

MAX_ENCODED = 128 * 1024
MAX_XML = 512 * 1024
MAX_RELAY_STATE = 1024  # the specification asks for at most 80 bytes; some SPs send more

#: the query signature algorithms accepted (SHA-1 and MD5 are not)
ALGORITHMS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", hashes.SHA512()),
}


def _b64(value: str) -> bytes:
    if len(value) > MAX_ENCODED:
        raise Refused(f"encoded message over {MAX_ENCODED} characters")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("the message is not base64") from None


def _xml(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the message is not UTF-8") from None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, MAX_XML)
    except zlib.error:
        raise Refused("the message is not DEFLATE-compressed") from None
    if inflater.unconsumed_tail:
        raise Refused(f"the message inflates past {MAX_XML} bytes")
    return out


def decode_redirect(value: str) -> str:
    return _xml(_inflate(_b64(value)))


def decode_post(value: str) -> str:
    data = _b64(value)
    if len(data) > MAX_XML:
        raise Refused(f"the message is over {MAX_XML} bytes")
    # the specification sends POST messages uncompressed; some SPs deflate them anyway
    return _xml(data if data.lstrip().startswith(b"<") else _inflate(data))


def _raw_params(raw_query: str) -> dict[str, str]:
    """Each parameter's first value as sent (still percent-encoded)."""
    out: dict[str, str] = {}
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        out.setdefault(unquote_plus(name), value)
    return out


def verify_redirect(raw_query: str, kind: str, certs: tuple[str, ...]) -> None:
    """Check the HTTP-Redirect signature of the ``kind`` (SAMLRequest, SAMLResponse)
    message in ``raw_query`` against the SP's signing certificates (base64 DER);
    BadSignature when it is missing, of an algorithm not accepted, or wrong."""
    raw = _raw_params(raw_query)
    if kind not in raw or "SigAlg" not in raw or "Signature" not in raw:
        raise BadSignature("unsigned (no SigAlg and Signature) where a signature is required")
    algorithm = unquote_plus(raw["SigAlg"])
    if algorithm not in ALGORITHMS:
        raise BadSignature(f"signature algorithm not accepted: {algorithm[:100]!r}")
    family, digest = ALGORITHMS[algorithm]
    signed = "&".join(f"{name}={raw[name]}" for name in (kind, "RelayState", "SigAlg")
                      if name in raw).encode("ascii", "replace")
    signature = _b64(unquote_plus(raw["Signature"]))
    for cert in certs:
        try:
            key = x509.load_der_x509_certificate(base64.b64decode(cert)).public_key()
            if family == "rsa" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), digest)
                return
            if family == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
                half = len(signature) // 2  # XML-DSig ECDSA values are r || s (RFC 4050)
                der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                           int.from_bytes(signature[half:], "big"))
                key.verify(der, signed, ec.ECDSA(digest))
                return
        except (InvalidSignature, ValueError):
            continue
    raise BadSignature("the query signature does not verify with the SP's certificates")
