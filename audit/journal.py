"""The audit journal: append-only segment files, one directory per chain.

In journal mode (``audit_path = "journal"``) a record is durable, and its request may
be answered, once its frame is in a segment file and the file is fsynced; the
indexer (``audit.indexer``) loads the segments into the query tables afterwards.

    <root>/<chain_id>/lock                  flock: the one process appending to the chain
    <root>/<chain_id>/<first seq>.seg       frames, in seq order, rotated by size

A frame is ``length (4 bytes, big-endian) | crc32 (4) | payload``; the payload is the
stored row as a JSON array in ``RECORD_COLUMNS`` order, hash fields included, so the
journal alone verifies. A frame cut by a crash (``kill -9`` mid-write) fails its
length or checksum: it was never acknowledged, and the writer that resumes the chain
truncates it. Each new segment and chain directory is fsynced into its directory.

The segment being written is preallocated: zeros written and fsynced ahead of the
frames (``PREALLOCATE`` bytes at a time), so that appending a batch changes neither
the file's size nor its block map and ``fdatasync`` need not commit the file
system's journal per batch (ext4: ~20 µs less CPU and a fraction of the latency per
batch, docs/BENCHMARKS.md). A frame never has length 0, so reading stops at the
zeros. The zeros never pass ``segment_bytes`` and a segment rotates only once its
frames reach that, so a rotated segment ends with its last frame; a closed one is cut
to it: only the newest segment of a chain whose process died keeps a zero tail.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.chain import I_HASH, I_SEQ, RECORD_COLUMNS

FRAME = struct.Struct(">II")
_FRAME_PACK = FRAME.pack
SUFFIX = ".seg"
SEGMENT_BYTES = 64 * 1024 * 1024
# zeros written ahead of the frames at a time: a batch's frames then land inside the
# file's size (one fsync of the zeros per ~1,800 records of a proxied request's ~590
# bytes: ~0.2 µs of CPU a record)
PREALLOCATE = 1024 * 1024
# a segment file's name is its first record's seq, zero-padded so names sort by seq
_NAME = "{:020d}" + SUFFIX
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode
_COLUMNS = len(RECORD_COLUMNS)


# pwritev2's per-write O_DSYNC (Linux 4.7+); None where missing or refused once
_DSYNC: int | None = getattr(os, "RWF_DSYNC", None)

def encode_frame(row: dict[str, Any]) -> bytes:
    """The frame of a stored row (the definition; the writer frames
    ``chain_records``' arrays, the same bytes, with :func:`frame`)."""
    return frame(_encode([row[c] for c in RECORD_COLUMNS]).encode("utf-8"))


def frame(payload: bytes) -> bytes:
    """``payload`` framed: its length and crc32 first."""
    return _FRAME_PACK(len(payload), zlib.crc32(payload)) + payload


def read_frames(path: Path, start: int = 0, limit: int | None = None
                ) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(end offset, row)`` of each whole frame from ``start`` up to ``limit`` bytes;
    stops at the first torn or damaged frame."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if limit is None else f.read(max(0, limit - start))
    pos, size = 0, len(data)
    while pos + FRAME.size <= size:
        length, crc = FRAME.unpack_from(data, pos)
        end = pos + FRAME.size + length
        if end > size or length == 0:  # torn, or the preallocated zeros
            return
        payload = data[pos + FRAME.size:end]
        if zlib.crc32(payload) != crc:
            return
        try:
            row = _decode(payload.decode("utf-8"))
        except ValueError:
            return
        if not isinstance(row, list) or len(row) != _COLUMNS:
            return
        yield start + end, tuple(row)
        pos = end


def hides_frames(path: Path, end: int, chain_id: str) -> bool:
    """True when ``path`` holds a whole frame of ``chain_id`` somewhere past ``end``,
    where :func:`read_frames` stopped: not a frame torn by a crash (a crash cuts the
    last write, nothing whole follows it) but a frame damaged after it was written,
    with records after it. Such a file is evidence: it is never truncated."""
    with open(path, "rb") as f:
        f.seek(end)
        data = f.read()
    if _whole(data, FRAME.size):  # appended since it was read (a live writer): not damage
        return False
    if not data.strip(b"\0"):  # nothing but the preallocated zeros
        return False
    # every payload starts with the chain id (RECORD_COLUMNS' first column): look there
    marker = b"[" + json.dumps(chain_id, ensure_ascii=False).encode("utf-8") + b","
    at = data.find(marker, FRAME.size + 1)
    while at >= 0:
        if _whole(data, at):
            return True
        at = data.find(marker, at + 1)
    return False


def _whole(data: bytes, at: int) -> bool:
    """Whether a whole frame whose payload starts at ``at`` is in ``data``."""
    if at < FRAME.size or len(data) < at:
        return False
    length, crc = FRAME.unpack_from(data, at - FRAME.size)
    payload = data[at:at + length]
    # a frame is never empty: zeros (eight of them pass as length 0, crc32 0) are not one
    return length > 0 and len(payload) == length and zlib.crc32(payload) == crc


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` to ``size`` bytes (a torn last frame), durably."""
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def segment_seq(path: Path) -> int:
    return int(path.name[: -len(SUFFIX)])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalDamaged(OSError):
    """A segment damaged before records that follow it: not resumed, not truncated."""

    def __init__(self, path: Path, offset: int) -> None:
        super().__init__(f"{path.name} is damaged at byte {offset}, records follow it")
        self.path, self.offset = path, offset


@dataclass(frozen=True)
class Tail:
    seq: int
    hash: str


class Journal:
    """A journal directory (every chain's segments)."""

    def __init__(self, root: str | os.PathLike[str], *, segment_bytes: int = SEGMENT_BYTES
                 ) -> None:
        self.root = Path(root)
        self.segment_bytes = max(1, int(segment_bytes))

    def chain_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def segments(self, chain_id: str) -> list[Path]:
        folder = self.root / chain_id
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir()
                      if p.name.endswith(SUFFIX) and p.name[: -len(SUFFIX)].isdigit())

    def lock(self, chain_id: str) -> int | None:
        """A descriptor holding the chain's lock, or None when a live process holds it."""
        folder = self.root / chain_id
        # an indexer removes a dead chain's directory, lock file and all (``Indexer.
        # _forget_dead``): a lock taken on the file it unlinked locks nothing, and a
        # writer holding it would append to a directory that is gone. Locked, the file
        # must still be the one at the path, else it is done again on the new one
        # (a few times: past that, as if another process held it).
        for _ in range(8):
            if not folder.is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                folder.mkdir(exist_ok=True)
                _fsync_dir(self.root)
            try:
                fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:  # the directory went meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                linked = os.stat(folder / "lock").st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                linked = False
            if linked:
                return fd
            os.close(fd)
        return None

    def open_writer(self, chain_id: str) -> ChainWriter | None:
        """The writer of ``chain_id``'s segments, or None when another process appends."""
        fd = self.lock(chain_id)
        return None if fd is None else ChainWriter(self, chain_id, fd)


class ChainWriter:
    """Appends one chain's frames; holds the chain's lock until closed."""

    def __init__(self, journal: Journal, chain_id: str, lock_fd: int) -> None:
        self.journal = journal
        self.chain_id = chain_id
        self.folder = journal.root / chain_id
        self._lock_fd = lock_fd
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0  # where the frames end
        self._allocated = 0  # the file's size: zeros past ``_size``
        self.durable: tuple[Path, int] | None = None  # what the indexer may load

    def tail(self) -> Tail | None:
        """The last whole record of the chain's newest segment (truncating a torn frame
        after it), or None when the journal holds none of this chain."""
        self._close_segment()
        for path in reversed(self.journal.segments(self.chain_id)):
            end, last = 0, None
            for pos, row in read_frames(path):
                end, last = pos, row
            if os.path.getsize(path) > end:
                if hides_frames(path, end, self.chain_id):
                    raise JournalDamaged(path, end)  # evidence: never cut
                truncate(path, end)
            if last is None:  # an empty segment (created, nothing written): drop it
                path.unlink()
                _fsync_dir(self.folder)
                continue
            self._open_segment(path)
            return Tail(int(last[I_SEQ]), str(last[I_HASH]))
        return None

    def append(self, payloads: list[bytes], first_seq: int) -> None:
        """Write the frames of ``payloads`` (stored rows as JSON arrays, in seq order from
        ``first_seq``: ``audit.chain.chain_records``) and make them durable; OSError when
        not durable (nothing of the batch is left behind, as far as the file system lets
        us)."""
        data = b"".join([frame(p) for p in payloads])
        if self._fd is None or self._size >= self.journal.segment_bytes:
            # full: the zeros never reach past ``segment_bytes``, so a rotated segment
            # ends with its last frame and only the newest one may end in zeros
            self._close_segment()
            path = self.folder / _NAME.format(first_seq)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            _fsync_dir(self.folder)
            self._open_segment(path)
        assert self._fd is not None and self._path is not None
        before = self._size
        end = before + len(data)
        try:
            if end > self._allocated:
                self._preallocate(end)
            # inside the file's size, on blocks already written: the data alone
            if not self._write_dsync(data, before):
                view, at = memoryview(data), before
                while view:
                    n = os.pwrite(self._fd, view, at)
                    view, at = view[n:], at + n
                os.fdatasync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, before)
                self._allocated = before
            raise
        self._size = end
        self.durable = (self._path, self._size)

    def _write_dsync(self, data: bytes, at: int) -> bool:
        """Write ``data`` at ``at`` durable in one system call a batch (``pwritev2`` with
        ``RWF_DSYNC``: the write and the data's sync, as ``pwrite`` + ``fdatasync`` make
        it, but the writer's thread gives the GIL up and takes it back once instead of
        twice: on a busy event loop's core each take waits for the loop). False where the
        kernel or file system does not take the flag: the caller writes and syncs."""
        global _DSYNC
        if _DSYNC is None:
            return False
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                n = os.pwritev(self._fd, [view], at, _DSYNC)
                view, at = view[n:], at + n
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL) and len(view) == len(data):
                _DSYNC = None  # nothing written: the two calls from now on
                return False
            raise
        return True

    def _preallocate(self, end: int) -> None:
        """Zeros from the file's end to past ``end``, fsynced (the size and the blocks
        durable); when the disk or the file size limit refuses that much, just up to
        ``end``, so a batch fails only when its own frames do not fit."""
        assert self._fd is not None
        want = max(end, min(self._size + PREALLOCATE, self.journal.segment_bytes))
        for target in dict.fromkeys((want, end)):
            try:
                at = self._allocated
                zeros = bytes(min(target - at, PREALLOCATE))
                while at < target:
                    at += os.pwrite(self._fd, memoryview(zeros)[:target - at], at)
                os.fsync(self._fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._allocated)
                if target == end:
                    raise
                continue
            self._allocated = target
            return

    def probe(self) -> None:
        """Prove the chain's directory takes a write now (OSError when it does not)."""
        # truncated first: the byte needs a new block, as a frame would
        fd = os.open(self.folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        st = os.statvfs(self.folder)
        if st.f_bavail * st.f_frsize < 1024 * 1024:
            raise OSError(28, "no space left for the audit journal")

    def close(self) -> None:
        self._close_segment()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def _open_segment(self, path: Path) -> None:
        """Continue ``path``, whose frames end at its size (``tail`` has cut it there)."""
        self._fd = os.open(path, os.O_WRONLY)
        self._path = path
        self._size = self._allocated = os.fstat(self._fd).st_size
        self.durable = (path, self._size)

    def _close_segment(self) -> None:
        if self._fd is not None:
            try:
                if self._allocated > self._size:  # the zeros go: a closed segment ends
                    os.ftruncate(self._fd, self._size)  # with its last frame
                    os.fsync(self._fd)
            except OSError:  # left as a crash would leave them: readers stop at zeros
                pass
            finally:
                os.close(self._fd)
                self._fd = None
