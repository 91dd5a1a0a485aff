"""The keys package's error tree.

    KeysError                       code, description, status
    ├── InvalidBlob                 a sealed blob failed to open: tampered, truncated,
    │                               wrong context, unknown data key (one opaque type)
    ├── InvalidSignature            a signature or JWT failed verification (opaque)
    ├── MasterKeyError              the master key is missing, unreadable, unsafe or wrong;
    │                               the message names the provider, on one line
    ├── KeyStateError               the request contradicts the ring's state: a rotation
    │                               already pending, destroying the only active key, no
    │                               active key for a use
    ├── UnknownAlgorithm            an algorithm the ring does not offer
    ├── UnknownUse                  a key use other than token, assertion, audit
    ├── UnknownProfile              a crypto profile other than standard, gm (also a KeyError)
    ├── UnknownKey                  no key with that kid (or it is destroyed)
    └── CorruptKey                  a stored key row cannot be decoded

Outward, callers turn InvalidBlob and InvalidSignature into one opaque answer; the
description carries the inward reason for logs and the audit record.
"""

from __future__ import annotations


class KeysError(Exception):
    code = "keys_error"
    status = 500
    title = "Key management error"

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.title)
        self.description = description or self.title

    def __str__(self) -> str:  # KeyError subclasses would otherwise print repr()
        return self.description


class InvalidBlob(KeysError):
    code = "invalid_blob"
    status = 400
    title = "Sealed data cannot be opened"


class InvalidSignature(KeysError):
    code = "invalid_signature"
    status = 401
    title = "Signature verification failed"


class MasterKeyError(KeysError):
    code = "master_key"
    status = 503
    title = "Master key unavailable"


class KeyStateError(KeysError):
    code = "key_state"
    status = 409
    title = "Key ring state conflict"


class UnknownAlgorithm(KeysError):
    code = "unknown_algorithm"
    status = 400
    title = "Unknown algorithm"


class UnknownUse(KeysError):
    code = "unknown_use"
    status = 400
    title = "Unknown key use"


class UnknownProfile(KeysError, KeyError):
    code = "unknown_profile"
    status = 400
    title = "Unknown crypto profile"


class UnknownKey(KeysError):
    code = "unknown_key"
    status = 404
    title = "Unknown key"


class CorruptKey(KeysError):
    code = "corrupt_key"
    status = 500
    title = "Stored key is corrupt"
