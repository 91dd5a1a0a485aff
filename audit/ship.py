"""Shipping: every committed record, as one JSON line, to a file a log collector tails.

等保 asks for the audit data of every device to be collected centrally (GB/T 22239-2019
8.1.5.4 c). The gateway keeps its own log in the database; a collector (Filebeat,
Fluent Bit, rsyslog's imfile, Vector ...) tails this file and sends it on.

    ship(engine, path)      append the records not shipped yet, chain by chain in seq order
    backlog(engine, path)   what is still waiting, and since when

Each line is the record as ``govgate audit query --format jsonl`` writes it (``time``,
``event_type``, ``outcome``, ``actor_user`` ..., ``chain_id``, ``seq``, ``hash``). What
was shipped is kept per chain in ``<file>.pos`` (the last ``seq``), written after the
lines are on disk: a crash between the two ships those lines again (at least once), so
a collector drops repeats by ``chain_id`` and ``seq``. Records of one chain reach the
file in their order, whatever the order in which chains commit. One process ships at a
time (a lock on ``<file>.lock``): under ``serve --workers N`` the others skip the round.
The file may be rotated by renaming it (logrotate ``create``): the next round starts a
new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from audit.errors import ShipError
from audit.query import row_dict
from audit.ship_marks import chain_heads, lag_over
from audit.tables import records
from texts import Text, os_reason, where

BATCH = 1000  # records per query, per chain
# the records name people, addresses and purposes: the owner writes, the collector's
# group reads, nobody else (a file that exists keeps its mode)
FILE_MODE = 0o640
POSITION_VERSION = 1


@dataclass(frozen=True)
class Shipped:
    records: int
    chains: int


@dataclass(frozen=True)
class Backlog:
    records: int  # committed, not yet in the file
    oldest_ts: int | None  # UTC ms of the oldest of them


def position_path(path: Path) -> Path:
    return path.with_name(path.name + ".pos")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def read_position(path: Path) -> dict[str, int]:
    """Chain id → the last ``seq`` shipped (empty when nothing was); ShipError for a
    position file that is unreadable or not one of ours."""
    pos = position_path(path)
    try:
        data = json.loads(pos.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ShipError(where(str(pos), os_reason(exc))) from None
    except (ValueError, UnicodeDecodeError):
        raise ShipError(where(str(pos), Text("audit.ship_position", "not a shipping position "
                                                                    "file"))) from None
    heads = data.get("chains") if isinstance(data, dict) else None
    if data.get("v") != POSITION_VERSION or not isinstance(heads, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in heads.items()):
        raise ShipError(where(str(pos), Text("audit.ship_position",
                                             "not a shipping position file")))
    return dict(heads)


def _write_position(path: Path, heads: dict[str, int]) -> None:
    pos = position_path(path)
    tmp = pos.with_name(pos.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"v": POSITION_VERSION, "chains": heads}, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, pos)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[bool]:
    """True while this process holds the shipping lock of ``path`` (``<path>.lock``),
    False when another does."""
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def ship(engine: sa.Engine, path: str | os.PathLike[str], *, limit: int = 10 * BATCH
         ) -> Shipped | None:
    """Append up to ``limit`` records not shipped yet to ``path``; None when another
    process is shipping to it now. ShipError (naming the file) when it cannot be
    written."""
    target = Path(path)
    try:
        with locked(target) as mine:
            if not mine:
                return None
            return _ship(engine, target, limit)
    except OSError as exc:
        raise ShipError(where(str(target), os_reason(exc))) from None


def _ship(engine: sa.Engine, target: Path, limit: int) -> Shipped:
    heads = read_position(target)
    shipped = 0
    touched = 0
    with engine.connect() as conn:
        for chain_id in sorted(chain_heads(conn)):
            done = heads.get(chain_id, 0)
            rows: list[Any] = []
            while shipped + len(rows) < limit:
                batch = conn.execute(
                    sa.select(records).where(records.c.chain_id == chain_id,
                                             records.c.seq > done)
                    .order_by(records.c.seq).limit(min(BATCH, limit - shipped - len(rows)))
                ).fetchall()
                if not batch:
                    break
                rows += batch
                done = int(batch[-1].seq)
            if not rows:
                continue
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            with open(fd, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(row_dict(r), ensure_ascii=False, sort_keys=True)
                               + "\n" for r in rows)
                out.flush()
                os.fsync(out.fileno())
            heads[chain_id] = done
            _write_position(target, heads)
            shipped += len(rows)
            touched += 1
            if shipped >= limit:
                break
    return Shipped(shipped, touched)


def backlog(engine: sa.Engine, path: str | os.PathLike[str]) -> Backlog:
    """The records committed but not in the file yet (ShipError for an unreadable
    position file)."""
    heads = read_position(Path(path))
    with engine.connect() as conn:
        waiting = lag_over(conn, heads)
    return Backlog(waiting.records, waiting.oldest_ts)
