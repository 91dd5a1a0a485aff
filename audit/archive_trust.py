"""Which keys an archive's signatures count under: a trust anchor the auditor holds.

An archive carries its own public keys (``keys.json``): whoever rewrites an archive
can re-sign it with a key of their own and ship that key beside it, even under the
gateway's kid. So the keys in an archive prove nothing about who signed it; what
does is a key the auditor obtained separately (as a verifier of a CT log or an
X-Road archive holds the log's or the member's key):

* :class:`AnchorKeys`: the public keys of a trust file (``govgate audit keys``
  writes one: the JWK Set of the ``audit`` keys the gateway's ring made) and key
  fingerprints (``SHA-256:`` or ``SM3:`` over the RFC 7638 members of the JWK; the
  SHA-256 one is the RFC 7638 thumbprint the ring puts in each kid);
* :class:`RingTrust`: on the gateway, the ``audit`` keys its ring made
  (``audit.key_trust``: the private part opens under the master key) with the same
  public key as the archive's.

A key is matched by its public key material, never by its kid.
"""

from __future__ import annotations

import binascii
import hmac
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from audit.chain import hash_function
from audit.checkpoints import b64u, unb64u
from audit.errors import ArchiveError
from audit.key_trust import TrustedKids
from texts import Text, os_reason, where

# fingerprint name -> the chain's hash name (audit.chain.hash_function)
FINGERPRINT_HASHES = {"SHA-256": "sha256", "SM3": "sm3"}
# RFC 7638 section 3.2: the required members of each key type (SM2 is an EC key)
_REQUIRED = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
MAX_TRUST_FILE = 1 << 20  # a JWK Set of a ring's audit keys is a few kilobytes


class KeyTrust(Protocol):
    """Whether the key ``jwk`` (an archive's key for ``kid``) is one to trust."""

    def __call__(self, kid: str, jwk: dict[str, Any]) -> bool: ...


def refusal(trust: KeyTrust, kid: str) -> Text:
    """Why a signature by ``kid`` does not count under ``trust``."""
    if isinstance(trust, RingTrust):
        return Text("audit.kid_foreign", "signed by key {kid}, not made by this key ring (its "
                    "private part does not open under the master key)", kid=kid)
    return Text("audit.kid_unanchored", "signed by key {kid}, which the trust anchor does not "
                "hold (a key that came with the archive)", kid=kid)


class TrustFileError(ArchiveError):
    """A trust file or fingerprint that cannot be used (the operator's input)."""


def thumbprint_input(jwk: dict[str, Any]) -> bytes:
    """The RFC 7638 input: the key type's required members, sorted, no whitespace."""
    members = _REQUIRED.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise ValueError("not a public EC, RSA or OKP JWK")
    return json.dumps({m: jwk[m] for m in members}, separators=(",", ":"),
                      sort_keys=True).encode("utf-8")


def fingerprint(jwk: dict[str, Any], name: str = "SHA-256") -> str:
    """``NAME:base64url(digest)`` of the key's RFC 7638 members."""
    return f"{name}:{b64u(hash_function(FINGERPRINT_HASHES[name])(thumbprint_input(jwk)))}"


def parse_fingerprint(text: str) -> tuple[str, bytes]:
    """``SHA-256:...`` or ``SM3:...`` (base64url or hex, 32 bytes) as (name, digest)."""
    name, _, value = text.strip().partition(":")
    name = {"SHA256": "SHA-256"}.get(name.upper().replace("-", ""), name.upper())
    try:
        digest = bytes.fromhex(value) if len(value) == 64 else unb64u(value)
    except (ValueError, binascii.Error):
        digest = b""
    if name not in FINGERPRINT_HASHES or len(digest) != 32:
        raise TrustFileError(Text("audit.fingerprint_form", "{value!r} is not a key fingerprint "
                                  "(SHA-256:<base64url> or SM3:<base64url>)", value=text))
    return name, digest


def load_trust_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The public keys of a trust file: a JWK Set (``{"keys": [...]}``) or one JWK."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_TRUST_FILE + 1)
    except OSError as exc:
        raise TrustFileError(where(str(p), os_reason(exc))) from None
    try:
        if len(data) > MAX_TRUST_FILE:
            raise ValueError("too large")
        doc = json.loads(data)
        found = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
        if not isinstance(found, list) or not found:
            raise ValueError("no keys")
        for jwk in found:
            if not isinstance(jwk, dict) or "d" in jwk:  # a private key has no place here
                raise ValueError("not a public JWK")
            thumbprint_input(jwk)
    except (ValueError, UnicodeDecodeError):
        raise TrustFileError(where(str(p), Text(
            "audit.trust_file_form", "not a trust file: a JWK Set of public keys as "
            "`govgate audit keys` writes it"))) from None
    return found


class AnchorKeys:
    """Trusts a key whose RFC 7638 digest is that of a trusted key or fingerprint."""

    def __init__(self, jwks: Iterable[dict[str, Any]] = (),
                 fingerprints: Iterable[tuple[str, bytes]] = ()) -> None:
        self.digests: dict[str, list[bytes]] = {}
        for name, digest in fingerprints:
            self.digests.setdefault(name, []).append(digest)
        for jwk in jwks:
            data = thumbprint_input(jwk)
            self.digests.setdefault("SHA-256", []).append(hash_function("sha256")(data))

    def __call__(self, kid: str, jwk: dict[str, Any]) -> bool:
        try:
            data = thumbprint_input(jwk)
        except ValueError:
            return False
        for name, digests in self.digests.items():
            mine = hash_function(FINGERPRINT_HASHES[name])(data)
            if any(hmac.compare_digest(mine, d) for d in digests):
                return True
        return False


class RingTrust:
    """Trusts ``kid`` when this gateway's ring made it (``audit.key_trust``) and its
    public key there is the archive's. ``keys`` is a ``KeyService``."""

    def __init__(self, keys: Any) -> None:
        self.keys = keys
        self.made = TrustedKids(keys)

    def __call__(self, kid: str, jwk: dict[str, Any]) -> bool:
        if not self.made(kid):
            return False
        try:
            ours = self.keys.public_jwk(kid, include_destroyed=True)
            return hmac.compare_digest(thumbprint_input(ours), thumbprint_input(jwk))
        except Exception:  # any failure to prove it is a key not to trust
            return False


class AnyOf:
    """Trusts a key any of ``anchors`` trusts."""

    def __init__(self, anchors: Iterable[KeyTrust]) -> None:
        self.anchors = list(anchors)

    def __call__(self, kid: str, jwk: dict[str, Any]) -> bool:
        return any(a(kid, jwk) for a in self.anchors)


def any_of(anchors: list[KeyTrust]) -> KeyTrust | None:
    """One anchor of ``anchors`` (None: none)."""
    if len(anchors) <= 1:
        return anchors[0] if anchors else None
    return AnyOf(anchors)


def ring_keys(keys: Any) -> list[dict[str, Any]]:
    """The public JWKs (with kid and alg) of every ``audit`` key the ring made, for a
    trust file; keys not made by the ring (``audit.key_trust``) are left out."""
    made = TrustedKids(keys)
    out = []
    for info in keys.list_keys():
        if info.use == "audit" and made(info.kid):
            out.append({**keys.public_jwk(info.kid, include_destroyed=True), "kid": info.kid})
    return out
