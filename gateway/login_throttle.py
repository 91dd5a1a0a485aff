"""Sign-in throttling: a growing delay per source address, and the lock of a
sign-in name that has no account.

Two limits stand between a guesser and a password (docs/sso.md, "Lockout"):

``addr:<address>``
    Failures from one address (IPv6: its /64) within the window. After the k-th,
    the next attempt from that address waits 0, 1, 2, 4, 8, ... seconds (``base *
    2**(k-2)``, at most ``max``); an attempt before then is refused (429) without
    checking any password and without counting against any account. An admitted
    attempt holds the address until its answer is known (at most
    ``IN_FLIGHT_SECONDS``); another attempt meanwhile is told the address is busy
    and waits for that answer (:attr:`Admission.busy`), so guesses sent all at once
    are checked one by one and meet the delay their predecessors earned: five
    requests cannot lock an account, and spraying many accounts from one address is
    slow. Colleagues behind one office address who sign in at the same moment
    just queue for a few milliseconds.
    A success ends the hold but forgives nothing, or an attacker with one valid
    account would reset the delay between guesses.

``name:<sign-in name>``
    Failures for a name that has no account, counted and locked exactly as
    ``users.failed_logins`` / ``locked_until`` are for a real one (same threshold,
    window and lock, the same pure :func:`count_failure`), so the answer never
    tells which accounts exist.

The counters live in the database, not in memory: every gateway process behind a
load balancer must see the same delay, and the same lock for an unknown name as
for a real account, or a guesser would multiply its rate by the processes and
tell names apart by asking twice. :meth:`LoginThrottle.purge` (the gateway's
maintenance round) drops rows past their window and caps the name rows.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from gateway.clock import Clock, as_utc, utcnow
from gateway.settings import Settings
from gateway.storage import write_transaction
from gateway.tables import login_throttle

# How long an admitted attempt may hold its address: far longer than an argon2
# verify and its writes take (ended as soon as the answer is known), short enough
# that a process that died mid-attempt frees the address soon.
IN_FLIGHT_SECONDS = 2.0


@dataclass(frozen=True)
class Admission:
    """The answer to one attempt: ``wait`` > 0 seconds (refused: within the
    address's delay), ``busy`` (another attempt from the address is being checked:
    ask again shortly), or neither (admitted; the address is held until
    :meth:`LoginThrottle.failed` or :meth:`LoginThrottle.settled`)."""

    wait: int = 0
    busy: bool = False

    @property
    def admitted(self) -> bool:
        return not self.wait and not self.busy


@dataclass(frozen=True)
class Failures:
    """A failure counter after one more failure: when its window began, how many,
    and until when the name is locked (None: not locked)."""

    first: datetime
    count: int
    locked_until: datetime | None


def count_failure(first: datetime | None, count: int, now: datetime, *, threshold: int,
                  window_seconds: int) -> Failures:
    """One more failure: a window that ended starts again at 1; the ``threshold``-th
    failure within it locks for ``window_seconds``."""
    if first is None or now - first > timedelta(seconds=window_seconds):
        first, count = now, 0
    count += 1
    locked = now + timedelta(seconds=window_seconds) if count >= threshold else None
    return Failures(first, count, locked)


def address_key(address: str | None) -> str:
    """The throttled unit of a client address: an IPv4 address, an IPv6 /64 (what
    one subscriber gets), or the text as given when it is not an address."""
    text = (address or "-").strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return "addr:" + text[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"addr:{ip}"


def name_key(name: str) -> str:
    return "name:" + name[:64]


class LoginThrottle:
    def __init__(self, engine: Engine, *, clock: Clock = utcnow, threshold: int = 5,
                 window_seconds: int = 900, delay_base: float = 1.0,
                 delay_max: float = 60.0, max_names: int = 100_000) -> None:
        self.engine = engine
        self.clock = clock
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.delay_base = delay_base
        self.delay_max = delay_max
        self.max_names = max_names

    @classmethod
    def from_settings(cls, s: Settings, engine: Engine, clock: Clock) -> LoginThrottle:
        return cls(engine, clock=clock, threshold=s.lockout_threshold,
                   window_seconds=s.lockout_window_seconds,
                   delay_base=s.login_delay_base_seconds, delay_max=s.login_delay_max_seconds,
                   max_names=s.login_unknown_names_max)

    def delay(self, failures: int) -> float:
        """Seconds the address waits after its ``failures``-th failure in the window:
        none after the first (a typo retyped at once), then base, 2 base, 4 base, ..."""
        if failures <= 1 or self.delay_base <= 0:
            return 0.0
        return float(min(self.delay_max, self.delay_base * 2 ** min(failures - 2, 30)))

    # -- the address -----------------------------------------------------------------

    def admit(self, address: str | None) -> Admission:
        """May an attempt from ``address`` go ahead now?"""
        if self.delay_base <= 0:
            return Admission()
        now = self.clock()
        key = address_key(address)
        with write_transaction(self.engine) as conn:
            row = _row_for_update(conn, key, now)
            not_before, held = as_utc(row.not_before), as_utc(row.held_until)
            if not_before is not None and not_before > now:
                return Admission(wait=max(1, math.ceil((not_before - now).total_seconds())))
            if held is not None and held > now:
                return Admission(busy=True)
            conn.execute(login_throttle.update().where(login_throttle.c.key == key).values(
                held_until=now + timedelta(seconds=IN_FLIGHT_SECONDS), updated_at=now))
        return Admission()

    def failed(self, address: str | None) -> float:
        """Count a failure from ``address``; the seconds its next attempt waits."""
        if self.delay_base <= 0:
            return 0.0
        now = self.clock()
        key = address_key(address)
        with write_transaction(self.engine) as conn:
            row = _row_for_update(conn, key, now)
            after = count_failure(as_utc(row.first_failed_at), row.failures, now,
                                  threshold=self.threshold, window_seconds=self.window_seconds)
            wait = self.delay(after.count)
            conn.execute(login_throttle.update().where(login_throttle.c.key == key).values(
                failures=after.count, first_failed_at=after.first,
                not_before=now + timedelta(seconds=wait), held_until=None, updated_at=now))
        return wait

    def settled(self, address: str | None) -> None:
        """The attempt ended without a wrong password (signed in, or refused before
        any check): let the next one in. The failures and their delay stay."""
        if self.delay_base <= 0:
            return
        with self.engine.begin() as conn:
            conn.execute(login_throttle.update()
                         .where(login_throttle.c.key == address_key(address))
                         .values(held_until=None))

    # -- names without an account --------------------------------------------------------

    def name_locked_until(self, name: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(login_throttle.c.not_before)
                                 .where(login_throttle.c.key == name_key(name))).scalar()
        return as_utc(value)

    def name_failed(self, name: str) -> Failures:
        """Count a failure for ``name`` (which has no account), as
        :meth:`gateway.org.Org.record_failure` does for one that has."""
        now = self.clock()
        key = name_key(name)
        with write_transaction(self.engine) as conn:
            row = _row_for_update(conn, key, now)
            after = count_failure(as_utc(row.first_failed_at), row.failures, now,
                                  threshold=self.threshold, window_seconds=self.window_seconds)
            values: dict[str, Any] = {"failures": after.count, "first_failed_at": after.first,
                                      "updated_at": now}
            if after.locked_until is not None:
                values["not_before"] = after.locked_until
            conn.execute(login_throttle.update().where(login_throttle.c.key == key)
                         .values(**values))
        return after

    def clear(self, key: str) -> int:
        """Forget one counter (``addr:...`` or ``name:...``); how many rows went."""
        with self.engine.begin() as conn:
            return int(conn.execute(
                login_throttle.delete().where(login_throttle.c.key == key)).rowcount)

    # -- upkeep --------------------------------------------------------------------

    def purge(self) -> int:
        """Drop rows nobody has touched for two windows (their counters and locks have
        all run out), then the oldest name rows beyond ``max_names``."""
        now = self.clock()
        idle = now - timedelta(seconds=2 * max(self.window_seconds, self.delay_max))
        with self.engine.begin() as conn:
            gone = conn.execute(login_throttle.delete().where(
                login_throttle.c.updated_at < idle)).rowcount
            names = login_throttle.c.key.like("name:%")
            count = conn.execute(sa.select(sa.func.count()).where(names)).scalar() or 0
            if count > self.max_names:
                cutoff = conn.execute(
                    sa.select(login_throttle.c.updated_at).where(names)
                    .order_by(login_throttle.c.updated_at.desc())
                    .offset(self.max_names).limit(1)).scalar()
                gone += conn.execute(login_throttle.delete().where(
                    names, login_throttle.c.updated_at <= cutoff)).rowcount
        return int(gone)


def _row_for_update(conn: Connection, key: str, now: datetime) -> Any:
    """The counter row of ``key``, created empty if missing, locked until commit (on
    SQLite the write transaction already serialises writers)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(dialect.insert(login_throttle).values(
        key=key, failures=0, updated_at=now).on_conflict_do_nothing())
    return conn.execute(sa.select(login_throttle).where(login_throttle.c.key == key)
                        .with_for_update()).one()
