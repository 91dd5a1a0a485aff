"""The SAML IdP's signing key and certificate.

Made on first use with ``cryptography``: an RSA 3072 key (xmlsec1 and every SAML
stack verify RSA-SHA256; the 国密 profile's SM2 has no XML-signature identifier
SPs know) and a self-signed certificate valid ten years. SAML trusts the
certificate published in the IdP's metadata, not a CA, so self-signed is the norm.
The certificate is stored as PEM; the private key only sealed by the key ring
(``keys.seal``, context ``saml-idp:{kid}``). Two processes making it at once: the
first insert wins and both use that one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine

from gateway.clock import Clock
from gateway.idp.saml.tables import signing_keys

FIRST_KID = "saml-1"
VALID_DAYS = 3650


def seal_context(kid: str) -> str:
    return f"saml-idp:{kid}"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    cert_pem: str
    key_pem: str = field(repr=False)


def _new(common_name: str, clock: Clock) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = clock()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=VALID_DAYS))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), key_pem


def active_key(engine: Engine, keys: Any, clock: Clock, issuer: str) -> SigningKey:
    """The active signing key, made (and stored sealed) when there is none."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(signing_keys).where(signing_keys.c.status == "active")
                           .order_by(signing_keys.c.created_at.desc())).first()
    if row is None:
        cert_pem, key_pem = _new(f"govgate SAML IdP {urlsplit(issuer).hostname or ''}", clock)
        try:
            with engine.begin() as conn:
                conn.execute(signing_keys.insert().values(
                    kid=FIRST_KID, cert_pem=cert_pem, status="active", created_at=clock(),
                    key_sealed=keys.seal(key_pem.encode("ascii"), seal_context(FIRST_KID))))
        except sa.exc.IntegrityError:
            pass  # another process made it first: use theirs
        return active_key(engine, keys, clock, issuer)
    key = keys.open(bytes(row.key_sealed), seal_context(row.kid)).decode("ascii")
    return SigningKey(row.kid, row.cert_pem, key)
