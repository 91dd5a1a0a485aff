"""The signing key ring: keys, states and rotation.

Each key has a ``kid`` (``<use>-<yyyymmdd>-<RFC 7638 thumbprint>``), a use
(``token``, ``token_rs256``, ``assertion``, ``audit``), an algorithm (ES256, RS256,
EdDSA; SM2SM3 under the ``gm`` profile only) and a state::

    pending --(prepublication delay passed: promote_due)--> active
    active  --(the next key is promoted)-----------------> retired
    retired --(left the JWKS window, or destroy)---------> destroyed

Exactly one active key per use (a partial unique index enforces it, as it does "at
most one pending"). The active key signs; pending keys are published in the JWKS
but never sign; retired keys verify (and stay in the JWKS) until
``retired_at + max_token_lifetime + clock_skew``; destroyed keys have their private
part erased and never verify. Audit keys are never destroyed automatically, since
old checkpoints must stay verifiable; ``destroy`` does it on request.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keys import _primitives
from keys.envelope import Envelope, _aware
from keys.errors import (
    CorruptKey,
    InvalidBlob,
    InvalidSignature,
    KeyStateError,
    UnknownAlgorithm,
    UnknownKey,
    UnknownUse,
)
from keys.tables import signing_keys
from texts import Text

USES = ("token", "token_rs256", "assertion", "audit")
#: uses whose keys are of one algorithm whatever the profile's default: ``token_rs256``
#: signs the ID tokens of relying parties that verify RS256 only (OpenID Connect Core
#: section 15.1 has every OP support it; client metadata id_token_signed_response_alg),
#: beside the ``token`` key of the default algorithm. A use of its own, not a second
#: active ``token`` key, so that "one active and one pending key per use" and rotation
#: hold as they are, and an access token signed by it is refused (it signs none)
FIXED_ALGS = {"token_rs256": "RS256"}
#: uses ``bootstrap`` leaves alone: made on first need (``KeyService.ensure_active``), as
#: an RSA-3072 key costs a third of a second to make and most gateways never need one
ON_DEMAND = ("token_rs256",)
ALGORITHMS = _primitives.ALGORITHMS
STATES = ("pending", "active", "retired", "destroyed")
MAX_JWT_LENGTH = 16 * 1024


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    use: str
    alg: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    destroyed_at: datetime | None
    leaves_jwks_at: datetime | None  # retired keys: when they drop out of the JWKS

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True)
class _Public:
    info: KeyInfo
    jwk: dict[str, Any]  # kty.., kid, alg, use
    key: Any  # joserfc public key


def check_use(use: str) -> str:
    if use not in USES:
        raise UnknownUse(Text("keys.unknown_use", "unknown key use {use!r} (one of {known})",
                              use=use, known=", ".join(USES)))
    return use


def check_alg(alg: str, offered: tuple[str, ...] = ALGORITHMS) -> str:
    """``alg`` if the profile offers it (``offered``: its ``signing_algs``)."""
    if alg not in offered:
        raise UnknownAlgorithm(Text("keys.unknown_alg",
                                    "unknown algorithm {alg!r} (one of {known})",
                                    alg=alg, known=", ".join(offered)))
    return alg


def _private_context(kid: str) -> str:
    return f"keys_signing_keys/{kid}/private"


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


UNKNOWN_KID_SECONDS = 0.1


class KeyRing:
    def __init__(
        self,
        engine: Engine,
        envelope: Envelope,
        *,
        clock: Callable[[], datetime],
        default_alg: str,
        prepublish_seconds: int,
        max_token_lifetime_seconds: int,
        clock_skew_seconds: int,
        cache_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.envelope = envelope
        self.clock = clock
        # what this profile signs with and accepts in a token (SM2SM3 under gm only)
        self.offered = envelope.profile.signing_algs
        self.default_alg = check_alg(default_alg, self.offered)
        self.prepublish = timedelta(seconds=prepublish_seconds)
        self.window = timedelta(seconds=max_token_lifetime_seconds + clock_skew_seconds)
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._private: dict[str, Any] = {}  # kid -> (private key, joserfc key)
        self._snapshot: tuple[float, dict[str, _Public | CorruptKey]] | None = None
        self._unknown_kid_read_at = -UNKNOWN_KID_SECONDS  # monotonic: the last such re-read
        self._active: dict[str, tuple[tuple[KeyInfo, Any, Any], datetime, float]] = {}

    # --- rows -----------------------------------------------------------------------

    def _info(self, row: sa.Row) -> KeyInfo:
        if row.key_use not in USES or row.alg not in ALGORITHMS or row.state not in STATES:
            raise CorruptKey(Text("keys.bad_row",
                                  "signing key {kid}: bad use, alg or state in its row",
                                  kid=row.kid))
        retired_at = _aware(row.retired_at)
        leaves = retired_at + self.window if retired_at is not None else None
        created_at = _aware(row.created_at)
        assert created_at is not None
        return KeyInfo(
            row.kid, row.key_use, row.alg, row.state, created_at,
            _aware(row.activated_at), retired_at, _aware(row.destroyed_at), leaves,
        )

    def _public(self, row: sa.Row) -> _Public:
        info = self._info(row)
        try:
            members = json.loads(row.public_jwk)
            key = _primitives.public_from_jwk(members)
            parts = row.kid.split("-", 2)
            if len(parts) != 3 or parts[0] != row.key_use or \
                    _primitives.thumbprint(key.as_dict(private=False)) != parts[2]:
                raise ValueError("thumbprint does not match kid")
        except (ValueError, TypeError, KeyError) as exc:
            raise CorruptKey(Text("keys.public_unreadable",
                                  "signing key {kid}: public key unreadable: {detail}",
                                  kid=row.kid, detail=str(exc))) from None
        jwk = {**key.as_dict(private=False), "kid": row.kid, "alg": row.alg, "use": "sig"}
        return _Public(info, jwk, key)

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None
            self._active.clear()

    def _unknown_kid_read_due(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._unknown_kid_read_at < UNKNOWN_KID_SECONDS:
                return False
            self._unknown_kid_read_at = now
            return True

    def _publics(self, max_age: float | None = None) -> dict[str, _Public | CorruptKey]:
        with self._lock:
            snap = self._snapshot
        age = self.cache_seconds if max_age is None else max_age
        if snap is not None and time.monotonic() - snap[0] < age:
            return snap[1]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(signing_keys).where(signing_keys.c.state != "destroyed")
            ).all()
        out: dict[str, _Public | CorruptKey] = {}
        for row in rows:
            try:
                out[row.kid] = self._public(row)
            except CorruptKey as exc:
                out[row.kid] = exc
        with self._lock:
            self._snapshot = (time.monotonic(), out)
        return out

    def _create(self, conn: sa.Connection, use: str, alg: str, state: str) -> KeyInfo:
        now = self.clock()
        private = _primitives.generate_private_key(alg)
        public = _primitives.public_jwk(private)
        # readable, never starts with "-" (CLI-safe), and self-checking: the last part
        # is the RFC 7638 thumbprint of the public key
        kid = f"{use}-{now:%Y%m%d}-{_primitives.thumbprint(public)}"
        blob = self.envelope.seal(_primitives.private_to_der(private), _private_context(kid))
        conn.execute(
            signing_keys.insert().values(
                kid=kid, key_use=use, alg=alg, state=state, private_blob=blob,
                public_jwk=json.dumps(public, sort_keys=True), created_at=now,
                activated_at=now if state == "active" else None,
            )
        )
        with self._lock:
            self._private[kid] = (private, _primitives.jose_key(private))
        return KeyInfo(kid, use, alg, state, now, now if state == "active" else None,
                       None, None, None)

    # --- lifecycle ----------------------------------------------------------------

    def bootstrap(self) -> None:
        """One active key per use (idempotent)."""
        for use in USES:
            if use in ON_DEMAND:
                continue
            with self.engine.connect() as conn:
                states = set(
                    conn.execute(
                        sa.select(signing_keys.c.state).where(signing_keys.c.key_use == use)
                    ).scalars()
                )
            if "active" in states:
                continue
            try:
                with self.engine.begin() as conn:
                    self._create(conn, use, FIXED_ALGS.get(use, self.default_alg), "active")
            except sa.exc.IntegrityError:
                pass  # another process bootstrapped concurrently
        self.invalidate()

    def list_keys(self) -> list[KeyInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(signing_keys).order_by(
                    signing_keys.c.key_use, signing_keys.c.created_at, signing_keys.c.kid
                )
            ).all()
        return [self._info(r) for r in rows]

    def rotate(self, use: str, alg: str | None = None) -> KeyInfo:
        """Create the next key of ``use`` as pending (active at once if the use has none)."""
        check_use(use)
        alg = check_alg(alg or FIXED_ALGS.get(use, self.default_alg),
                        (FIXED_ALGS[use],) if use in FIXED_ALGS else self.offered)
        # sealing the new key may have to create the profile's data key: not while this
        # transaction holds the write lock
        self.envelope.ensure_data_key()
        try:
            # reads the use's states, then inserts: begins as a writer (see
            # Envelope.ensure_data_key)
            with self.engine.execution_options(govgate_write=True).begin() as conn:
                states = set(
                    conn.execute(
                        sa.select(signing_keys.c.state).where(signing_keys.c.key_use == use)
                    ).scalars()
                )
                if "pending" in states:
                    raise KeyStateError(Text(
                        "keys.pending",
                        "a {use} key is already pending; promote or destroy it first", use=use))
                info = self._create(conn, use, alg, "active" if "active" not in states
                                    else "pending")
        except sa.exc.IntegrityError:
            raise KeyStateError(Text("keys.rotating",
                                    "a {use} key rotation is already in progress",
                                    use=use)) from None
        self.invalidate()
        return info

    def rotate_due(self, max_age_seconds: int) -> list[KeyInfo]:
        """Scheduled rotation: a pending key for each use whose active key is older than
        ``max_age_seconds`` and that has no pending key. Keeps the active key's alg while
        the profile offers it (an SM2 key after a switch back to ``standard`` is
        replaced by one of the default algorithm)."""
        now = self.clock()
        created = []
        for info in self.list_keys():
            if info.state != "active" or info.activated_at is None:
                continue
            if now - info.activated_at < timedelta(seconds=max_age_seconds):
                continue
            try:
                alg = info.alg if info.alg in self.offered else self.default_alg
                created.append(self.rotate(info.use, alg))
            except KeyStateError:
                continue  # already pending
        return created

    def _promote(self, kid: str, use: str, now: datetime) -> list[str]:
        """Make pending ``kid`` active and retire the active key of ``use``, atomically.
        Returns the kids changed; [] if another process did it first."""
        try:
            with self.engine.begin() as conn:
                old = conn.execute(
                    signing_keys.update()
                    .where(signing_keys.c.key_use == use, signing_keys.c.state == "active")
                    .values(state="retired", retired_at=now)
                    .returning(signing_keys.c.kid)
                ).scalars().all()
                done = conn.execute(
                    signing_keys.update()
                    .where(signing_keys.c.kid == kid, signing_keys.c.state == "pending")
                    .values(state="active", activated_at=now)
                ).rowcount
                if done != 1:
                    raise KeyStateError("lost a promotion race")
        except (KeyStateError, sa.exc.IntegrityError):
            return []
        self.invalidate()
        return [*old, kid]

    def promote_now(self, use: str) -> KeyInfo:
        """Promote the pending key of ``use`` at once, skipping the prepublication delay
        (for a compromised key: caches may reject tokens until they refetch the JWKS)."""
        check_use(use)
        pending = [i for i in self.list_keys() if i.use == use and i.state == "pending"]
        if not pending:
            raise KeyStateError(Text("keys.no_pending", "no pending {use} key to promote",
                                    use=use))
        if not self._promote(pending[0].kid, use, self.clock()):
            raise KeyStateError(Text("keys.promoted_concurrently",
                                    "the pending {use} key was promoted concurrently", use=use))
        return next(i for i in self.list_keys() if i.kid == pending[0].kid)

    def promote_due(self) -> list[KeyInfo]:
        """Promote pending keys past the prepublication delay, retire the keys they
        replace, destroy retired token/assertion keys that have left the JWKS."""
        now = self.clock()
        changed: list[str] = []
        for info in self.list_keys():
            if info.state == "pending" and now - info.created_at >= self.prepublish:
                changed += self._promote(info.kid, info.use, now)
            elif (
                info.state == "retired" and info.use != "audit"
                and info.leaves_jwks_at is not None and now >= info.leaves_jwks_at
            ):
                self._destroy_row(info.kid, now)
                changed.append(info.kid)
        if changed:
            self.invalidate()
        by_kid = {i.kid: i for i in self.list_keys()}
        return [by_kid[k] for k in changed if k in by_kid]

    def _destroy_row(self, kid: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                signing_keys.update()
                .where(signing_keys.c.kid == kid, signing_keys.c.state.in_(("pending", "retired")))
                .values(state="destroyed", private_blob=None, destroyed_at=now)
            )
        with self._lock:
            self._private.pop(kid, None)

    def destroy(self, kid: str) -> KeyInfo:
        """Erase a pending or retired key's private part; the active key is refused."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).first()
        if row is None:
            raise UnknownKey(Text("keys.unknown_kid", "no signing key {kid!r}", kid=kid))
        info = self._info(row)
        if info.state == "active":
            raise KeyStateError(Text(
                "keys.only_active",
                "key {kid} is the only active {use} key; rotate and promote first",
                kid=kid, use=info.use))
        if info.state == "destroyed":
            raise KeyStateError(Text("keys.already_destroyed", "key {kid} is already destroyed",
                                    kid=kid))
        self._destroy_row(kid, self.clock())
        self.invalidate()
        return next(i for i in self.list_keys() if i.kid == kid)

    # --- signing ------------------------------------------------------------------

    def _load_private(self, row: sa.Row) -> Any:
        with self._lock:
            cached = self._private.get(row.kid)
        if cached is not None:
            return cached
        if row.private_blob is None:
            raise CorruptKey(Text("keys.private_missing", "signing key {kid}: private key missing",
                                  kid=row.kid))
        try:
            der = self.envelope.open(bytes(row.private_blob), _private_context(row.kid))
            private = _primitives.private_from_der(row.alg, der)
        except (InvalidBlob, ValueError) as exc:
            detail = exc.description if isinstance(exc, InvalidBlob) else str(exc)
            raise CorruptKey(Text("keys.private_unopenable",
                                  "signing key {kid}: private key cannot be opened: {detail}",
                                  kid=row.kid, detail=detail)) from None
        value = (private, _primitives.jose_key(private))
        with self._lock:
            self._private[row.kid] = value
        return value

    def active(self, use: str) -> tuple[KeyInfo, Any, Any]:
        """The active key of ``use`` (promoting a due pending key first).

        Cached per process, but never past the moment a pending key could become
        due (a normal promotion cannot retire the cached key before then), nor longer
        than ``cache_seconds`` (so ``promote_now`` elsewhere is seen quickly).
        """
        check_use(use)
        now = self.clock()
        with self._lock:
            cached = self._active.get(use)
        if cached is not None:
            value, valid_until, loaded = cached
            if now < valid_until and time.monotonic() - loaded < self.cache_seconds:
                return value
        for _ in range(2):
            loaded = time.monotonic()
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(signing_keys).where(
                        signing_keys.c.key_use == use,
                        signing_keys.c.state.in_(("active", "pending")),
                    )
                ).all()
            pending = [r for r in rows if r.state == "pending"]
            due: datetime | None = None
            if pending:
                created = _aware(pending[0].created_at)
                assert created is not None
                due = created + self.prepublish
            if due is not None and now >= due:
                self.promote_due()
                continue
            active = [r for r in rows if r.state == "active"]
            if not active:
                raise KeyStateError(Text("keys.no_active",
                                         "no active {use} key; run `govgate init`",
                                        use=use))
            row = active[0]
            info = self._info(row)
            if info.alg not in self.offered:
                # an SM2 key after a switch back to the standard profile: what it signed
                # would be refused here, so it signs nothing (fail closed, say the fix)
                raise KeyStateError(Text(
                    "keys.alg_not_offered",
                    "the active {use} key {kid} is {alg}, which this crypto profile does "
                    "not offer; run `govgate keys rotate --use {use} --now`",
                    use=use, kid=info.kid, alg=info.alg))
            private, jose_private = self._load_private(row)
            value = (info, private, jose_private)
            with self._lock:
                self._active[use] = (
                    value, due if due is not None else now + self.prepublish, loaded
                )
            return value
        raise KeyStateError(Text("keys.no_active_after", "no active {use} key after promotion",
                                use=use))

    def sign_jwt(self, use: str, claims: dict[str, Any], headers: dict[str, Any] | None) -> str:
        info, private, _jose = self.active(use)
        header = {k: v for k, v in (headers or {}).items() if k not in ("alg", "kid")}
        header.setdefault("typ", "JWT")
        header.update(alg=info.alg, kid=info.kid)
        return _primitives.jwt_encode(info.alg, private, header, claims)

    def sign(self, use: str, payload: bytes) -> tuple[str, bytes]:
        info, private, _jose = self.active(use)
        return info.kid, _primitives.sign_raw(info.alg, private, payload)

    # --- verification -------------------------------------------------------------

    def _lookup(self, kid: Any) -> _Public:
        if not isinstance(kid, str):
            raise InvalidSignature("kid missing")
        entry = self._publics().get(kid)
        if entry is None or (isinstance(entry, _Public) and entry.info.state == "pending"):
            # a key another process promoted a moment ago (its scheduled promotion, or
            # ``promote_now``): this cache may not know it, or still know it pending,
            # and the pending state would refuse its tokens until the cache expires.
            # Read the ring again rather than refuse them. Such re-reads at most every
            # UNKNOWN_KID_SECONDS, so made-up or pending kids cannot cost a query each;
            # a read for any other reason (the cache's expiry) does not count, since the
            # key may have been promoted just after it
            entry = self._publics(0.0 if self._unknown_kid_read_due() else None).get(kid)
        if entry is None:
            raise InvalidSignature(f"unknown kid {kid!r}")
        if isinstance(entry, CorruptKey):
            raise InvalidSignature(str(entry))
        return entry

    def _in_window(self, info: KeyInfo, at: datetime) -> bool:
        if info.state == "active":
            return True
        if info.state == "retired":
            return info.leaves_jwks_at is not None and at < info.leaves_jwks_at
        return False  # pending never signed; destroyed never verifies

    def still_verifies(self, use: str, kid: str, at: datetime | None) -> bool:
        """Whether ``kid``, which verified a token of ``use`` a moment ago, still would
        at ``at``, by the ring as cached (``cache_seconds``): what a cache of verified
        tokens asks on every hit, so that a key destroyed anywhere ends its tokens
        there within ``cache_seconds`` too."""
        entry = self._publics().get(kid)
        if not isinstance(entry, _Public) or entry.info.use != use:
            return False
        # the active key (nearly every hit, on the proxy's path) without a clock read
        return entry.info.state == "active" or self._in_window(entry.info, at or self.clock())

    def verify_jwt(self, use: str, token: str, at: datetime | None) -> dict[str, Any]:
        check_use(use)
        at = at or self.clock()
        if not isinstance(token, str) or len(token) > MAX_JWT_LENGTH or token.count(".") != 2:
            raise InvalidSignature("not a compact JWS")
        try:
            header = _b64url_json(token.split(".", 1)[0])
        except (ValueError, UnicodeError) as exc:
            raise InvalidSignature(f"bad header: {type(exc).__name__}") from None
        if not isinstance(header, dict):
            raise InvalidSignature("bad header")
        alg = header.get("alg")
        if alg not in self.offered:  # an SM2 token under the standard profile too
            raise InvalidSignature(f"algorithm {alg!r} not accepted")
        entry = self._lookup(header.get("kid"))
        if entry.info.use != use or entry.info.alg != alg:
            raise InvalidSignature("kid does not belong to this use or algorithm")
        if not self._in_window(entry.info, at):
            raise InvalidSignature(f"key {entry.info.kid} is {entry.info.state} at {at}")
        try:
            return _primitives.jwt_decode(alg, entry.key, token)
        except _primitives.SignatureFailure as exc:
            raise InvalidSignature(f"signature does not verify: {exc}") from None

    def verify(self, use: str, kid: str, payload: bytes, signature: bytes) -> None:
        check_use(use)
        entry = self._lookup(kid)
        if entry.info.use != use or entry.info.state not in ("active", "retired"):
            raise InvalidSignature("key not usable for verification")
        try:
            _primitives.verify_raw(entry.info.alg, entry.key, bytes(payload), bytes(signature))
        except _primitives.SignatureFailure as exc:
            raise InvalidSignature(f"signature does not verify: {exc}") from None

    def jwks(self, use: str | None, at: datetime | None) -> dict[str, Any]:
        if use is not None:
            check_use(use)
        at = at or self.clock()
        keys = []
        entries = [e for e in self._publics().values() if isinstance(e, _Public)]
        order = {"active": 0, "pending": 1, "retired": 2}
        entries.sort(key=lambda e: (e.info.use, order.get(e.info.state, 3), e.info.created_at))
        for e in entries:
            if use is not None and e.info.use != use:
                continue
            if e.info.state == "pending" or self._in_window(e.info, at):
                keys.append(dict(e.jwk))
        return {"keys": keys}

    def public_jwk(self, kid: str, include_destroyed: bool = False) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).first()
        if row is None or (row.state == "destroyed" and not include_destroyed):
            raise UnknownKey(Text("keys.unknown_kid", "no signing key {kid!r}", kid=kid))
        return dict(self._public(row).jwk)

    def check(self) -> None:
        """Open every active key's private part: CorruptKey names the first that fails."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(signing_keys).where(signing_keys.c.state == "active")
            ).all()
        for row in rows:
            self._info(row)
            self._load_private(row)
