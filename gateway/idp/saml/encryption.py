"""Encrypted assertions: whether an SP gets its assertion as an ``EncryptedAssertion``,
to which of its keys, and with which algorithms. No pysaml2 here (the state file's
checks use it); the engine hands the choice to xmlsec1 (``library.IdpServer``).

When: an SP whose metadata has a ``KeyDescriptor use="encryption"`` gets encrypted
assertions (Shibboleth SP's metadata has one by default); the system's
``saml_sp.encrypt_assertions`` overrides that either way (``true``: encrypt, to a
``use="encryption"`` key or else one with no ``use``, which SAML Metadata 2.4.1.1
makes good for both; ``false``: never, as Keycloak's "Encrypt assertions" off).

How (XML Encryption 1.1, W3C Recommendation 2013, section 5):

- the assertion's content key: AES-256-GCM (``xmlenc11#aes256-gcm``) when the SP's
  ``EncryptionMethod`` list with that key names it (AES-128-GCM when it names only
  that), else AES-256-CBC (``xmlenc#aes256-cbc``; AES-128-CBC when the SP names only
  that). CBC only because an SP that does not say it reads GCM may not: XML
  Encryption's CBC mode is open to the padding-oracle attack of Jager and
  Somorovsky ("How to Break XML Encryption", CCS 2011), which is why XML Encryption
  1.1 added GCM and the SAML V2.0 Metadata Profile for Algorithm Support (OASIS
  2011) lets the SP say in its metadata what it decrypts (``md:EncryptionMethod``).
  The assertion is signed inside the encryption and the Response outside it, so a
  changed ciphertext fails the Response's signature before the SP decrypts (the
  oracle needs it to decrypt).
- the key transport: RSA-OAEP (``xmlenc#rsa-oaep-mgf1p``, SHA-1 in OAEP and MGF1,
  the one xmlsec1 1.2 offers; OAEP's security does not rest on SHA-1's collision
  resistance). Never RSA PKCS#1 v1.5 (``xmlenc#rsa-1_5``: Bleichenbacher's attack;
  XML Encryption 1.1 section 5.5.1). pysaml2's own default, 3DES-CBC, is never used.

A key the SP cannot be sent to safely is refused, at registration (the state file,
the sign-on API) and again at each sign-in (a certificate expires while registered):
not X.509, not RSA, RSA under 2048 bits, outside its validity. Of several encryption
keys (a rollover) the first usable one is taken.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
#: xmlsec1's --session-key for each content algorithm
SESSION_KEYS = {AES256_GCM: "aes-256", AES128_GCM: "aes-128", AES256_CBC: "aes-256",
                AES128_CBC: "aes-128"}
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class EncryptionKey:
    """A key of the SP's metadata good for encryption."""

    cert: str  # base64 DER, as in the metadata
    methods: tuple[str, ...]  # the EncryptionMethod algorithms listed with it
    explicit: bool  # use="encryption" (False: no use, good for both)


@dataclass(frozen=True)
class Encryption:
    """How one assertion is encrypted."""

    cert: str  # base64 DER
    algorithm: str  # the content algorithm
    key_transport: str = RSA_OAEP_MGF1P

    @property
    def session_key(self) -> str:
        return SESSION_KEYS[self.algorithm]

    @property
    def cert_pem(self) -> str:
        lines = [self.cert[i:i + 64] for i in range(0, len(self.cert), 64)]
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def algorithm(methods: tuple[str, ...]) -> str:
    """The content algorithm for an SP that lists ``methods`` (see the module)."""
    for preferred in (AES256_GCM, AES128_GCM):
        if preferred in methods:
            return preferred
    if AES128_CBC in methods and AES256_CBC not in methods:
        return AES128_CBC
    return AES256_CBC


def key_problem(cert: str, now: datetime) -> str | None:
    """Why the SP's encryption certificate ``cert`` (base64 DER) is unusable, or None."""
    try:
        parsed = x509.load_der_x509_certificate(base64.b64decode(cert, validate=True))
    except ValueError:
        return "the encryption certificate is not an X.509 certificate"
    key = parsed.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "the encryption key is not RSA (assertions are encrypted with RSA-OAEP)"
    if key.key_size < MIN_RSA_BITS:
        return f"the encryption key is RSA {key.key_size}, under {MIN_RSA_BITS} bits"
    if now < parsed.not_valid_before_utc:
        return (f"the encryption certificate is not valid before "
                f"{parsed.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if now > parsed.not_valid_after_utc:
        return (f"the encryption certificate expired "
                f"{parsed.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    return None


def candidates(keys: tuple[EncryptionKey, ...], setting: bool | None
               ) -> tuple[EncryptionKey, ...]:
    """The keys an assertion may be encrypted to, best first; () when the SP's
    assertions are not encrypted."""
    explicit = tuple(k for k in keys if k.explicit)
    if setting is False or (setting is None and not explicit):
        return ()
    return explicit or tuple(k for k in keys if not k.explicit)


def wanted(keys: tuple[EncryptionKey, ...], setting: bool | None) -> bool:
    """Whether the SP's assertions are to be encrypted (whether or not a key is usable)."""
    return setting is True or (setting is None and any(k.explicit for k in keys))


def choose(keys: tuple[EncryptionKey, ...], setting: bool | None, now: datetime
           ) -> Encryption | None:
    """How the SP's assertion is encrypted; None: it is not. ValueError saying why
    none of its keys is usable (or that it has none where ``setting`` asks)."""
    if not wanted(keys, setting):
        return None
    found = candidates(keys, setting)
    if not found:
        raise ValueError("encrypt_assertions is true but the metadata has no "
                         "KeyDescriptor for encryption")
    problems = []
    for key in found:
        if problem := key_problem(key.cert, now):
            problems.append(problem)
            continue
        return Encryption(cert=key.cert, algorithm=algorithm(key.methods))
    raise ValueError(problems[0])


def usable_until(keys: tuple[EncryptionKey, ...], setting: bool | None, now: datetime
                 ) -> datetime | None:
    """When the last of the SP's encryption keys usable now expires (None: its
    assertions are not encrypted, or no key is usable now)."""
    ends = [x509.load_der_x509_certificate(base64.b64decode(k.cert)).not_valid_after_utc
            for k in candidates(keys, setting) if wanted(keys, setting)
            and key_problem(k.cert, now) is None]
    return max(ends, default=None)
