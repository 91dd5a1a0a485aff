"""Envelope encryption: data keys wrapped by the master key seal the project's secrets.

Blob format (version 1), all integers big-endian::

    offset  size  field
    0       1     format version (0x01)
    1       1     profile id (0x01 standard: AES-256-GCM, 0x02 gm: SM4-GCM)
    2       4     data key id (rows are numbered, so a higher id is a newer version)
    6       12    nonce (random)
    18      n     ciphertext
    18+n    16    GCM tag

The associated data is ``header (bytes 0-5) || 0x00 || context (UTF-8)``: changing any
header byte, the context, or moving a blob to another row makes it fail to open.
Every failure is one ``InvalidBlob``. A data key row records the profile it serves;
each profile has its own active data key, created on first use, so a blob sealed
under one profile still opens after the setting changes.
"""

from __future__ import annotations

import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keys import _primitives
from keys.errors import InvalidBlob, MasterKeyError
from keys.master import MasterKeyProvider, provider_label
from keys.profiles import Profile, get_profile, profile_by_id
from keys.tables import data_keys
from texts import Text

FORMAT_VERSION = 1
_HEADER = struct.Struct(">BBI")
HEADER_SIZE = _HEADER.size  # 6
MIN_BLOB_SIZE = HEADER_SIZE + _primitives.NONCE_SIZE + _primitives.TAG_SIZE
_ACTIVE_TTL = 5.0  # seconds a process keeps its idea of the active data key


@dataclass(frozen=True)
class BlobHeader:
    version: int
    profile_id: int
    data_key_id: int


def parse_header(blob: bytes) -> BlobHeader:
    """The header of ``blob``; InvalidBlob if it is too short or of an unknown version."""
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) < MIN_BLOB_SIZE:
        raise InvalidBlob(Text("keys.blob_truncated", "blob truncated"))
    version, profile_id, dk_id = _HEADER.unpack_from(bytes(blob[:HEADER_SIZE]))
    if version != FORMAT_VERSION:
        raise InvalidBlob(f"unknown blob format version {version}")
    return BlobHeader(version, profile_id, dk_id)


def _aad(header: bytes, context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise InvalidBlob("context must be a non-empty string")
    return header + b"\x00" + context.encode("utf-8")


def _wrap_aad(dk_id: int, profile: str) -> bytes:
    return f"govgate/keys/data-key/{dk_id}/{profile}".encode()


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Envelope:
    """Seals and opens under the data keys stored in ``keys_data_keys``."""

    def __init__(
        self,
        engine: Engine,
        master: MasterKeyProvider,
        profile: Profile,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.master = master
        self.profile = profile
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[int, tuple[Profile, bytes]] = {}
        self._active: tuple[int, float] | None = None

    # --- data keys ----------------------------------------------------------------

    def _create_data_key(self, conn: sa.Connection, profile: Profile) -> int:
        dk = secrets.token_bytes(profile.data_key_size)
        now = self.clock()
        inserted = conn.execute(
            data_keys.insert().values(
                profile=profile.name, state="active", wrapped=b"",
                master_key_id=self.master.key_id, created_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        dk_id = int(inserted[0])
        wrapped = self.master.wrap(dk, _wrap_aad(dk_id, profile.name))
        conn.execute(data_keys.update().where(data_keys.c.id == dk_id).values(wrapped=wrapped))
        self._keys[dk_id] = (profile, dk)
        return int(dk_id)

    def _unwrap_row(self, row: sa.Row) -> tuple[Profile, bytes]:
        profile = get_profile(row.profile)
        try:
            dk = self.master.unwrap(bytes(row.wrapped), _wrap_aad(row.id, row.profile))
        except MasterKeyError as exc:
            raise MasterKeyError(Text("keys.data_key_row",
                                      "{detail} (data key {id}; or its row is corrupt)",
                                      detail=exc.description, id=row.id)) from None
        if len(dk) != profile.data_key_size:
            raise MasterKeyError(Text(
                "keys.master_bad_length", "master key ({where}): data key {id} has a bad length",
                where=provider_label(self.master.name), id=row.id))
        return profile, dk

    def ensure_data_key(self) -> int:
        """The active data key id for the current profile, created if there is none."""
        with self._lock:
            if self._active is not None and time.monotonic() - self._active[1] < _ACTIVE_TTL:
                return self._active[0]
        for _attempt in range(3):
            try:
                # a plain read finds it (nearly always). Creating it reads again, then
                # inserts: "govgate_write" makes that transaction begin as a writer (on
                # SQLite BEGIN IMMEDIATE, see gateway.storage.write_transaction), or a
                # commit by another connection in between would fail the insert
                with self.engine.connect() as conn:
                    dk_id = self._active_id(conn)
                if dk_id is None:
                    with self.engine.execution_options(govgate_write=True).begin() as conn:
                        dk_id = self._active_id(conn) or self._create_data_key(
                            conn, self.profile
                        )
                with self._lock:
                    self._active = (dk_id, time.monotonic())
                return dk_id
            except sa.exc.IntegrityError:  # another process created it first
                continue
        raise MasterKeyError(Text("keys.data_key_none",
                                  "data key: could not create or find the active data key"))

    def _active_id(self, conn: sa.Connection) -> int | None:
        return conn.execute(
            sa.select(data_keys.c.id).where(
                data_keys.c.profile == self.profile.name, data_keys.c.state == "active"
            )
        ).scalar()

    def _data_key(self, dk_id: int) -> tuple[Profile, bytes]:
        with self._lock:
            cached = self._keys.get(dk_id)
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(data_keys).where(data_keys.c.id == dk_id)).first()
        if row is None:
            raise InvalidBlob(Text("keys.data_key_unknown", "unknown data key {id}", id=dk_id))
        try:
            value = self._unwrap_current(row)
        except (MasterKeyError, KeyError) as exc:
            detail = exc.description if isinstance(exc, MasterKeyError) else str(exc)
            raise InvalidBlob(Text("keys.data_key_unwrap",
                                   "data key {id} cannot be unwrapped: {detail}",
                                   id=dk_id, detail=detail)) from None
        with self._lock:
            self._keys[dk_id] = value
        return value

    def _unwrap_current(self, row: sa.Row) -> tuple[Profile, bytes]:
        """``_unwrap_row``, after taking up the master key that ``keys rotate-master``
        put in place of this process's meanwhile, when the row is wrapped under it: a
        data key made since (``keys rotate-data-key``) must not stop a running process
        from sealing ("no downtime", docs/keys.md). Only a provider that can read its
        key again does so (the file one: the rotation replaced the file); the key it
        reads must be the row's, else the refusal stands."""
        try:
            return self._unwrap_row(row)
        except MasterKeyError:
            reopen = getattr(self.master, "reopen", None)
            if row.master_key_id == self.master.key_id or reopen is None:
                raise
            try:
                newer = reopen()
            except MasterKeyError:
                newer = None
            if newer is None or newer.key_id != row.master_key_id:
                raise
            self.master = newer
            return self._unwrap_row(row)

    def rotate_data_key(self) -> int:
        """A new active data key for the current profile; the old one keeps opening."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                data_keys.update()
                .where(data_keys.c.profile == self.profile.name, data_keys.c.state == "active")
                .values(state="retired", retired_at=now)
            )
            dk_id = self._create_data_key(conn, self.profile)
        with self._lock:
            self._active = (dk_id, time.monotonic())
        return dk_id

    def rotate_master(self, new_master: MasterKeyProvider) -> int:
        """Re-wrap every data key under ``new_master`` in one transaction; returns the count.

        Data is not re-encrypted. If any data key fails to unwrap under the current master
        key, nothing is changed.
        """
        # reads, then writes: begins as a writer (see ensure_data_key)
        with self.engine.execution_options(govgate_write=True).begin() as conn:
            rows = conn.execute(
                sa.select(data_keys).order_by(data_keys.c.id).with_for_update()
            ).all()
            updates = []
            for row in rows:
                _profile, dk = self._unwrap_row(row)
                aad = _wrap_aad(row.id, row.profile)
                wrapped = new_master.wrap(dk, aad)
                if new_master.unwrap(wrapped, aad) != dk:
                    raise MasterKeyError(Text(
                        "keys.master_rewrap_check",
                        "master key ({where}): re-wrap check failed; nothing changed",
                        where=provider_label(new_master.name)))
                updates.append((row.id, wrapped))
            for dk_id, wrapped in updates:
                conn.execute(
                    data_keys.update()
                    .where(data_keys.c.id == dk_id)
                    .values(wrapped=wrapped, master_key_id=new_master.key_id)
                )
        self.master = new_master
        return len(updates)

    def check(self) -> int:
        """Unwrap every stored data key; MasterKeyError naming the provider otherwise."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(data_keys).order_by(data_keys.c.id)).all()
        for row in rows:
            if row.master_key_id != self.master.key_id:
                raise MasterKeyError(Text(
                    "keys.master_other", "master key ({where}): data keys are wrapped under "
                    "{wrapped}, this master key is {current}",
                    where=provider_label(self.master.name), wrapped=row.master_key_id,
                    current=self.master.key_id))
            try:
                value = self._unwrap_row(row)
            except KeyError:
                raise MasterKeyError(Text(
                    "keys.master_profile",
                    "master key ({where}): data key {id} has unknown profile {profile!r}",
                    where=provider_label(self.master.name), id=row.id,
                    profile=row.profile)) from None
            with self._lock:
                self._keys[row.id] = value
        return len(rows)

    # --- seal / open ----------------------------------------------------------------

    def seal(self, plaintext: bytes, context: str) -> bytes:
        if not isinstance(plaintext, bytes | bytearray):
            raise TypeError("plaintext must be bytes")
        if not isinstance(context, str) or not context:
            raise ValueError("context must be a non-empty string")
        dk_id = self.ensure_data_key()
        profile, dk = self._data_key(dk_id)
        header = _HEADER.pack(FORMAT_VERSION, profile.profile_id, dk_id)
        nonce = secrets.token_bytes(_primitives.NONCE_SIZE)
        body = _primitives.aead_encrypt(
            profile.cipher, dk, nonce, bytes(plaintext), _aad(header, context)
        )
        return header + nonce + body

    def open(self, blob: bytes, context: str) -> bytes:
        head = parse_header(blob)
        blob = bytes(blob)
        try:
            profile = profile_by_id(head.profile_id)
        except KeyError:
            raise InvalidBlob(f"unknown profile id {head.profile_id}") from None
        dk_profile, dk = self._data_key(head.data_key_id)
        if dk_profile is not profile:
            raise InvalidBlob("profile byte does not match the data key")
        nonce = blob[HEADER_SIZE : HEADER_SIZE + _primitives.NONCE_SIZE]
        body = blob[HEADER_SIZE + _primitives.NONCE_SIZE :]
        try:
            return _primitives.aead_decrypt(
                profile.cipher, dk, nonce, body, _aad(blob[:HEADER_SIZE], context)
            )
        except _primitives.AeadFailure as exc:
            raise InvalidBlob(Text("keys.blob_unopenable", "blob does not open: {detail}",
                                   detail=str(exc))) from None
