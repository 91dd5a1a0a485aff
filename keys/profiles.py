"""Crypto profiles: ``standard`` (AES-256-GCM, SHA-256, HMAC-SHA-256) and ``gm``
(国密: SM4-GCM per GM/T 0002, SM3 and HMAC-SM3 per GM/T 0004).

The profile chooses the cipher for data at rest, the hash used across the project
(the audit chain included) and the signatures it offers: ``gm`` adds SM2 with SM3
(``SM2SM3``, GM/T 0003.2, from tongsuopy) and makes it the default; ``standard``
signs with ES256 by default and never accepts an SM2 token. Every sealed blob
records the profile it was sealed under, so switching the setting later strands
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from keys import _primitives
from keys.errors import UnknownProfile
from texts import Text


@dataclass(frozen=True)
class Profile:
    name: str
    hash_name: str  # "sha256" | "sm3"
    cipher: str  # "AES-256-GCM" | "SM4-GCM"
    profile_id: int  # the byte recorded in each blob
    data_key_size: int  # bytes of key the cipher takes
    signing_algs: tuple[str, ...]  # what the key ring may create, and accepts in tokens
    default_alg: str  # the signing_alg setting's default under this profile

    def hash(self, data: bytes) -> bytes:
        """SHA-256 or SM3 digest of ``data``."""
        return _primitives.digest(self.hash_name, data)

    def hmac(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SHA-256 or HMAC-SM3 of ``data`` under ``key``."""
        return _primitives.hmac_digest(self.hash_name, key, data)


_INTERNATIONAL = ("ES256", "RS256", "EdDSA")
STANDARD = Profile("standard", "sha256", "AES-256-GCM", 1, 32, _INTERNATIONAL, "ES256")
# the others stay accepted under gm, so keys made before a switch keep verifying
GM = Profile("gm", "sm3", "SM4-GCM", 2, 16, ("SM2SM3", *_INTERNATIONAL), "SM2SM3")

PROFILES = {p.name: p for p in (STANDARD, GM)}
_BY_ID = {p.profile_id: p for p in (STANDARD, GM)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; UnknownProfile (a KeyError) otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise UnknownProfile(Text(
            "keys.unknown_profile", "unknown crypto profile {name!r} (one of {known})",
            name=name, known=", ".join(PROFILES))) from None


def profile_by_id(profile_id: int) -> Profile:
    try:
        return _BY_ID[profile_id]
    except KeyError:
        raise UnknownProfile(Text("keys.unknown_profile_id", "unknown crypto profile id {id}",
                                  id=profile_id)) from None
