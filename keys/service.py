"""KeyService: the one object other packages use (recipes over primitives).

It composes the envelope (``seal``/``open``/``mac``), the signing key ring
(``sign_jwt``/``verify_jwt``/``sign``/``verify``/``jwks``) and the master key.
Take an engine, a master-key provider and a profile; nothing here reads settings.
"""

from __future__ import annotations

import contextlib
import hmac as _hmac
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keys.envelope import Envelope
from keys.errors import InvalidBlob, InvalidSignature, KeyStateError, MasterKeyError
from keys.master import MasterKeyProvider
from keys.profiles import PROFILES, Profile
from keys.ring import KeyInfo, KeyRing
from keys.tables import sealed_secrets
from texts import Text

JWKS_MAX_AGE = 300
_MAC_ROOT = "mac-root"


def utcnow() -> datetime:
    return datetime.now(UTC)


def jwks_cache_control(prepublish_seconds: int = 3600) -> str:
    """Cache-Control for the JWKS: caches must refetch well within the prepublication
    delay, so a new key is seen before it signs."""
    return f"public, max-age={max(0, min(JWKS_MAX_AGE, prepublish_seconds // 2))}"


class KeyService:
    def __init__(
        self,
        engine: Engine,
        master: MasterKeyProvider,
        profile: Profile,
        *,
        clock: Callable[[], datetime] = utcnow,
        default_alg: str = "ES256",
        prepublish_seconds: int = 3600,
        max_token_lifetime_seconds: int = 3600,
        clock_skew_seconds: int = 60,
        cache_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.clock = clock
        self.prepublish_seconds = prepublish_seconds
        self.envelope = Envelope(engine, master, profile, clock=clock)
        self.ring = KeyRing(
            engine, self.envelope, clock=clock, default_alg=default_alg,
            prepublish_seconds=prepublish_seconds,
            max_token_lifetime_seconds=max_token_lifetime_seconds,
            clock_skew_seconds=clock_skew_seconds, cache_seconds=cache_seconds,
        )
        self._lock = threading.Lock()
        self._mac_keys: dict[tuple[str, str], bytes] = {}

    @property
    def master(self) -> MasterKeyProvider:
        return self.envelope.master

    # --- start-up -----------------------------------------------------------------

    def bootstrap(self) -> None:
        """Idempotent: the first data key, the MAC root key, one active key per use."""
        self.envelope.check()
        self.envelope.ensure_data_key()
        self._mac_root()
        self.ring.bootstrap()

    def check(self) -> None:
        """Prove the master key opens every stored data key (MasterKeyError otherwise)
        and that every active signing key opens (CorruptKey otherwise)."""
        self.envelope.check()
        self.ring.check()

    # --- envelope -----------------------------------------------------------------

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """AEAD-encrypt ``plaintext`` bound to ``context`` (e.g. "clients.secret:42")."""
        return self.envelope.seal(plaintext, context)

    def open(self, blob: bytes, context: str) -> bytes:
        """The plaintext; InvalidBlob for any failure."""
        try:
            return self.envelope.open(blob, context)
        except InvalidBlob:
            raise
        except Exception as exc:  # never leak another type from open()
            raise InvalidBlob(f"blob does not open: {type(exc).__name__}") from None

    def rotate_data_key(self) -> None:
        self.envelope.rotate_data_key()

    def rotate_master(self, new_master: MasterKeyProvider) -> int:
        """Re-wrap every data key under ``new_master``; returns how many."""
        return self.envelope.rotate_master(new_master)

    # --- keyed hashes -------------------------------------------------------------

    def _mac_root(self) -> bytes:
        context = f"keys_secrets/{_MAC_ROOT}"
        with self.engine.connect() as conn:
            blob = conn.execute(
                sa.select(sealed_secrets.c.blob).where(sealed_secrets.c.name == _MAC_ROOT)
            ).scalar()
        if blob is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(sealed_secrets.insert().values(
                        name=_MAC_ROOT, created_at=self.clock(),
                        blob=self.seal(secrets.token_bytes(32), context),
                    ))
            except sa.exc.IntegrityError:
                pass  # created concurrently
            return self._mac_root()
        try:
            return self.open(bytes(blob), context)
        except InvalidBlob as exc:
            raise MasterKeyError(Text("keys.mac_root", "MAC root key cannot be opened: {detail}",
                                      detail=exc.description)) from None

    def _mac_key(self, profile: Profile, purpose: str) -> bytes:
        if not isinstance(purpose, str) or not purpose:
            raise ValueError("purpose must be a non-empty string")
        with self._lock:
            key = self._mac_keys.get((profile.name, purpose))
        if key is None:
            key = profile.hmac(self._mac_root(), b"govgate mac v1\x00" + purpose.encode())
            with self._lock:
                self._mac_keys[(profile.name, purpose)] = key
        return key

    def mac(self, purpose: str, data: bytes) -> bytes:
        """HMAC (SHA-256 or SM3 per profile) of ``data`` under a per-purpose secret key."""
        return self.profile.hmac(self._mac_key(self.profile, purpose), data)

    def check_mac(self, purpose: str, data: bytes, tag: bytes) -> None:
        """Constant-time check of a tag made by ``mac`` under the current profile or,
        after a profile switch, the other one; InvalidSignature otherwise."""
        for profile in (self.profile, *(p for p in PROFILES.values() if p is not self.profile)):
            if _hmac.compare_digest(profile.hmac(self._mac_key(profile, purpose), data), tag):
                return
        raise InvalidSignature("MAC does not match")

    # --- signing ------------------------------------------------------------------

    def sign_jwt(self, use: str, claims: dict[str, Any], *,
                 headers: dict[str, Any] | None = None) -> str:
        """A compact JWS of ``claims`` by the active key of ``use``; the header carries
        kid and alg (set here) and typ (from ``headers``, default "JWT")."""
        return self.ring.sign_jwt(use, claims, headers)

    def verify_jwt(self, use: str, token: str, *, at: datetime | None = None) -> dict[str, Any]:
        """Claims, after checking the signature against the key named by kid (active, or
        retired and still in the JWKS at ``at``). Does not check exp/aud."""
        return self.ring.verify_jwt(use, token, at)

    def still_verifies(self, use: str, kid: str, *, at: datetime | None = None) -> bool:
        """Whether a token of ``use`` that ``kid`` verified would still verify now (the
        ring as cached, at most ``cache_seconds`` old): destroyed or out of its window
        is False."""
        return self.ring.still_verifies(use, kid, at)

    def sign(self, use: str, payload: bytes) -> tuple[str, bytes]:
        return self.ring.sign(use, payload)

    def verify(self, use: str, kid: str, payload: bytes, signature: bytes) -> None:
        self.ring.verify(use, kid, payload, signature)

    def jwks(self, use: str | None = None, *, at: datetime | None = None) -> dict[str, Any]:
        """{"keys": [...]}: public parts of pending, active and in-window retired keys."""
        return self.ring.jwks(use, at)

    def ensure_active(self, use: str) -> None:
        """An active key of ``use``, made now (active at once: nothing it signs exists
        yet) if the ring has none: the uses ``bootstrap`` leaves to their first need."""
        try:
            self.ring.active(use)
        except KeyStateError:
            with contextlib.suppress(KeyStateError):  # made concurrently
                self.ring.rotate(use)
            self.ring.active(use)

    def signing_alg(self, use: str) -> str:
        """The algorithm the active key of ``use`` signs with now (an ID token's
        ``at_hash`` follows it: SM3 for SM2SM3)."""
        return self.ring.active(use)[0].alg

    def published_algs(self, use: str) -> list[str]:
        """The algorithms of the active and pending keys of ``use``, the active key's
        first: what a relying party may see signed (discovery lists them)."""
        infos = [i for i in self.list_keys() if i.use == use and i.state in ("active",
                                                                             "pending")]
        infos.sort(key=lambda i: i.state != "active")
        return list(dict.fromkeys(i.alg for i in infos))

    def jwks_response_headers(self) -> dict[str, str]:
        return {"Cache-Control": jwks_cache_control(self.prepublish_seconds),
                "Content-Type": "application/jwk-set+json"}

    def public_jwk(self, kid: str, *, include_destroyed: bool = False) -> dict[str, Any]:
        return self.ring.public_jwk(kid, include_destroyed)

    # --- ring management ----------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        return self.ring.list_keys()

    def rotate(self, use: str, alg: str | None = None) -> KeyInfo:
        return self.ring.rotate(use, alg)

    def rotate_due(self, max_age_seconds: int) -> list[KeyInfo]:
        return self.ring.rotate_due(max_age_seconds)

    def promote_due(self) -> list[KeyInfo]:
        return self.ring.promote_due()

    def promote_now(self, use: str) -> KeyInfo:
        return self.ring.promote_now(use)

    def maintain(self, rotate_after_seconds: int | None = None) -> list[KeyInfo]:
        """The periodic job: scheduled rotation (if configured), then promotion."""
        created = self.rotate_due(rotate_after_seconds) if rotate_after_seconds else []
        return created + self.promote_due()

    def destroy(self, kid: str) -> KeyInfo:
        return self.ring.destroy(kid)
