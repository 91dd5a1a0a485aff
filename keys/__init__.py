"""keys: the bottom layer. Signing key ring and JWKS, master key, envelope
encryption, crypto profiles. Imports nothing else of govgate."""

from keys.errors import (
    CorruptKey,
    InvalidBlob,
    InvalidSignature,
    KeysError,
    KeyStateError,
    MasterKeyError,
    UnknownAlgorithm,
    UnknownKey,
    UnknownProfile,
    UnknownUse,
)
from keys.master import (
    EnvMasterKey,
    FileMasterKey,
    MasterKeyProvider,
    Pkcs11MasterKey,
    master_key_from_settings,
)
from keys.profiles import GM, PROFILES, STANDARD, Profile, get_profile
from keys.ring import ALGORITHMS, USES, KeyInfo
from keys.service import KeyService, jwks_cache_control

__all__ = [
    "ALGORITHMS",
    "GM",
    "PROFILES",
    "STANDARD",
    "USES",
    "CorruptKey",
    "EnvMasterKey",
    "FileMasterKey",
    "InvalidBlob",
    "InvalidSignature",
    "KeyInfo",
    "KeyService",
    "KeyStateError",
    "KeysError",
    "MasterKeyError",
    "MasterKeyProvider",
    "Pkcs11MasterKey",
    "Profile",
    "UnknownAlgorithm",
    "UnknownKey",
    "UnknownProfile",
    "UnknownUse",
    "get_profile",
    "jwks_cache_control",
    "master_key_from_settings",
]
