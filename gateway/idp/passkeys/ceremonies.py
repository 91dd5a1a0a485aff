"""The two WebAuthn ceremonies, checked by py_webauthn (``webauthn``): registration
(``navigator.credentials.create``) and assertion (``navigator.credentials.get``),
as a second factor after the password or, with a discoverable credential and user
verification, as the whole sign-in.

What the library leaves to the relying party is done here: the challenge comes from
the store (single use, short-lived, bound to the session or the browser), the
credential must be the user's (or, passwordless, its user handle the one registered),
and the sign count must grow. The count is checked after the signature, so only a
genuine assertion with a count that went back is called a clone.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from gateway.idp.passkeys.store import CHALLENGE_SECONDS, Credential, PasskeyStore
from gateway.org import User
from gateway.settings import Settings, is_ip_address

USER_HANDLE_PURPOSE = "idp.webauthn_user"
MAX_NAME = 64
MIN_RSA_BITS = 2048
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,1400}")
# what the library raises on a bad answer, beside its own WebAuthnException
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


@functools.cache
def _lib() -> SimpleNamespace:
    """py_webauthn on the first ceremony, not at start: with cbor2 and its structures it
    is about 5 MiB of a server's resident memory that most servers never use."""
    from webauthn import (
        generate_authentication_options,
        generate_registration_options,
        options_to_json,
        verify_authentication_response,
        verify_registration_response,
    )
    from webauthn.helpers import (
        base64url_to_bytes,
        bytes_to_base64url,
        decode_credential_public_key,
        parse_authentication_credential_json,
    )
    from webauthn.helpers.decode_credential_public_key import DecodedRSAPublicKey
    from webauthn.helpers.exceptions import WebAuthnException
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    return SimpleNamespace(
        generate_authentication_options=generate_authentication_options,
        generate_registration_options=generate_registration_options,
        options_to_json=options_to_json,
        verify_authentication_response=verify_authentication_response,
        verify_registration_response=verify_registration_response,
        base64url_to_bytes=base64url_to_bytes, bytes_to_base64url=bytes_to_base64url,
        parse_authentication_credential_json=parse_authentication_credential_json,
        decode_credential_public_key=decode_credential_public_key,
        DecodedRSAPublicKey=DecodedRSAPublicKey,
        refused=(WebAuthnException, *_MALFORMED),
        AuthenticatorSelectionCriteria=AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor=PublicKeyCredentialDescriptor,
        ResidentKeyRequirement=ResidentKeyRequirement,
        UserVerificationRequirement=UserVerificationRequirement)


class CeremonyFailed(Exception):
    """The ceremony is refused; ``reason`` (English, no secret) goes to the audit record,
    ``clone`` when the sign count went back."""

    def __init__(self, reason: str, *, clone: bool = False,
                 credential: Credential | None = None) -> None:
        super().__init__(reason)
        self.reason = reason[:300]
        self.clone = clone
        self.credential = credential


@dataclass(frozen=True)
class RelyingParty:
    """Who the credentials are for: the RP ID (a host name: WebAuthn refuses an IP
    address) and the origins the browser may report."""

    rp_id: str
    origin: str
    name: str = "govgate"

    @property
    def usable(self) -> bool:
        """Whether a browser makes credentials for this RP ID: a host name, never an IP
        address (the issuer's host when no webauthn_rp_id is set: 127.0.0.1 in the demo)."""
        return bool(self.rp_id) and not is_ip_address(self.rp_id)

    @classmethod
    def from_settings(cls, settings: Settings) -> RelyingParty:
        issuer = urlsplit(settings.issuer)
        origin = settings.webauthn_origin or f"{issuer.scheme}://{issuer.netloc}"
        return cls(rp_id=settings.webauthn_rp_id or (issuer.hostname or ""),
                   origin=origin.rstrip("/"))


def passkeys_usable(settings: Settings) -> bool:
    """Whether the portal offers security keys at all: not on a gateway reached by an IP
    address, where a browser would only fail with an error of its own."""
    return RelyingParty.from_settings(settings).usable


@dataclass(frozen=True)
class Assertion:
    credential: Credential
    user_verified: bool


def _descriptor(c: Credential) -> Any:
    w = _lib()
    return w.PublicKeyCredentialDescriptor(id=w.base64url_to_bytes(c.credential_id))


def _json(credential: Any) -> str:
    """The browser's credential as JSON text (the library parses it)."""
    return credential if isinstance(credential, str) else json.dumps(credential)


class Ceremonies:
    """Options for the browser, and the checks of its answers."""

    def __init__(self, rp: RelyingParty, store: PasskeyStore, keys: Any) -> None:
        self.rp = rp
        self.store = store
        self.keys = keys

    def user_handle(self, user: User) -> bytes:
        """The opaque WebAuthn user id: no name or number of ours in the authenticator."""
        return bytes(self.keys.mac(USER_HANDLE_PURPOSE, str(user.id).encode()))[:32]

    # -- registration --------------------------------------------------------------------

    def registration(self, user: User, name: str, sid: str) -> tuple[str, str]:
        """(options JSON, ceremony token) for a new credential of ``user`` named ``name``."""
        w = _lib()
        options = w.generate_registration_options(
            rp_id=self.rp.rp_id, rp_name=self.rp.name, user_name=user.username,
            user_id=self.user_handle(user), user_display_name=user.name or user.username,
            timeout=CHALLENGE_SECONDS * 1000,
            authenticator_selection=w.AuthenticatorSelectionCriteria(
                resident_key=w.ResidentKeyRequirement.PREFERRED,
                user_verification=w.UserVerificationRequirement.PREFERRED),
            exclude_credentials=[_descriptor(c) for c in self.store.of_user(user.id)])
        token = self.store.put("register", w.bytes_to_base64url(options.challenge), sid=sid,
                               user_id=user.id, name=name)
        return w.options_to_json(options), token

    def register(self, user: User, token: str, sid: str, credential: Any) -> Credential:
        """Check the browser's answer and keep the credential; CeremonyFailed else."""
        w = _lib()
        pending = self.store.take(token, "register", sid=sid)
        if pending is None or pending.user_id != user.id:
            raise CeremonyFailed("no registration under way for this session "
                                 "(expired, used or never made)")
        try:
            verified = w.verify_registration_response(
                credential=_json(credential),
                expected_challenge=w.base64url_to_bytes(pending.challenge),
                expected_rp_id=self.rp.rp_id, expected_origin=self.rp.origin)
            transports = [str(t) for t in (_transports(credential))]
        except w.refused as exc:
            raise CeremonyFailed(f"registration refused: {exc}") from None
        if (weak := _weak_key(verified.credential_public_key)) is not None:
            raise CeremonyFailed(f"registration refused: {weak}")
        credential_id = w.bytes_to_base64url(verified.credential_id)
        if not self.store.add(user.id, credential_id=credential_id,
                              public_key=verified.credential_public_key,
                              sign_count=verified.sign_count, transports=transports,
                              name=pending.name or "key"):
            raise CeremonyFailed("this credential is registered already")
        found = self.store.find(credential_id)
        assert found is not None
        return found

    # -- assertion -----------------------------------------------------------------------

    def assertion(self, *, user: User | None, sid: str | None, source: str | None = None,
                  at_most: int | None = None) -> tuple[str, str]:
        """(options JSON, ceremony token): for ``user``'s credentials as a second factor,
        or (``user`` None) for any discoverable credential, user verification required;
        then at most ``at_most`` unanswered at a time from ``source`` (an address key;
        TooManyCeremonies else)."""
        w = _lib()
        allowed = [_descriptor(c) for c in self.store.of_user(user.id)] if user else []
        options = w.generate_authentication_options(
            rp_id=self.rp.rp_id, timeout=CHALLENGE_SECONDS * 1000,
            allow_credentials=allowed,
            user_verification=w.UserVerificationRequirement.PREFERRED if user
            else w.UserVerificationRequirement.REQUIRED)
        token = self.store.put("verify" if user else "login",
                               w.bytes_to_base64url(options.challenge), sid=sid,
                               user_id=user.id if user else None,
                               name=source[:64] if source else None, at_most=at_most)
        return w.options_to_json(options), token

    def verify(self, token: str, credential: Any, *, user: User | None, sid: str | None,
               user_of: Any = None) -> Assertion:
        """Check an assertion. As a second factor (``user``): one of the user's credentials.
        Passwordless (``user`` None): the credential found by its id, its user handle the
        one registered for its user (``user_of(user_id)`` gives the User), and the user
        verified. The new sign count is stored; CeremonyFailed else."""
        w = _lib()
        pending = self.store.take(token, "verify" if user else "login", sid=sid)
        if pending is None or (user is not None and pending.user_id != user.id):
            raise CeremonyFailed("no sign-in with a key under way here "
                                 "(expired, used or never made)")
        try:
            parsed = w.parse_authentication_credential_json(_json(credential))
        except w.refused as exc:
            raise CeremonyFailed(f"malformed credential: {exc}") from None
        # base64url letters only: PostgreSQL's text holds no NUL, and no stored id is else
        found = self.store.find(parsed.id) if _CREDENTIAL_ID.fullmatch(parsed.id) else None
        if found is None:
            raise CeremonyFailed("unknown credential (not registered, or removed)")
        if user is not None and found.user_id != user.id:
            raise CeremonyFailed("the credential is not this user's")
        if user is None:
            owner = user_of(found.user_id)
            if owner is None or parsed.response.user_handle is None or \
                    parsed.response.user_handle != self.user_handle(owner):
                raise CeremonyFailed("the user handle is not the credential's user's",
                                     credential=found)
        try:
            # the count is compared below, after the signature (0: the library's own
            # comparison never refuses)
            verified = w.verify_authentication_response(
                credential=parsed, expected_challenge=w.base64url_to_bytes(pending.challenge),
                expected_rp_id=self.rp.rp_id, expected_origin=self.rp.origin,
                credential_public_key=found.public_key, credential_current_sign_count=0,
                require_user_verification=user is None)
        except w.refused as exc:
            raise CeremonyFailed(f"assertion refused: {exc}", credential=found) from None
        new = verified.new_sign_count
        if (new or found.sign_count) and new <= found.sign_count:
            raise CeremonyFailed(f"sign count {new} not above the stored {found.sign_count}: "
                                 "a cloned authenticator?", clone=True, credential=found)
        if not self.store.used(found, new):
            raise CeremonyFailed("the credential was used or removed meanwhile",
                                 credential=found)
        return Assertion(credential=found, user_verified=verified.user_verified)


def _weak_key(cose: bytes) -> str | None:
    """Why a verified credential's public key is too weak to keep, or None: the library
    checks its algorithm against the accepted list (ES256, EdDSA, RS256), not an RSA
    modulus's size, and 密评 (as NIST SP 800-131A) accepts RSA from 2048 bits."""
    decoded = _lib().decode_credential_public_key(cose)
    if isinstance(decoded, _lib().DecodedRSAPublicKey):
        bits = int.from_bytes(decoded.n, "big").bit_length()
        if bits < MIN_RSA_BITS:
            return f"{bits}-bit RSA key (at least {MIN_RSA_BITS} bits)"
    return None


def _transports(credential: Any) -> list[str]:
    data = json.loads(credential) if isinstance(credential, str) else credential
    found = (data.get("response") or {}).get("transports") or []
    if not isinstance(found, list):  # a string would be kept letter by letter
        return []
    return [t for t in found if isinstance(t, str) and t.isascii() and "," not in t][:8]


def key_name(raw: str) -> str:
    """A key's name as the user gave it, trimmed; empty when it cannot be one."""
    name = " ".join(raw.split())
    if not name or len(name) > MAX_NAME or any(ord(c) < 0x20 for c in name):
        return ""
    return name
