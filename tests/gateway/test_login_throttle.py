"""The sign-in throttle's counters on their own (both databases)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from gateway.clock import FrozenClock
from gateway.login_throttle import (
    Admission,
    LoginThrottle,
    address_key,
    count_failure,
    name_key,
)
from gateway.tables import login_throttle


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def throttle(engine: sa.Engine, clock: FrozenClock) -> LoginThrottle:
    return LoginThrottle(engine, clock=clock, max_names=3)


def test_the_delay_doubles_from_the_second_failure(throttle: LoginThrottle) -> None:
    assert [throttle.delay(k) for k in range(1, 10)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_addresses_are_keyed_by_host_or_ipv6_64() -> None:
    assert address_key("192.0.2.1") == "addr:192.0.2.1"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.1") == "addr:192.0.2.1"
    assert address_key(None) == "addr:-"


def test_an_attempt_holds_its_address_until_answered(throttle: LoginThrottle,
                                                     clock: FrozenClock) -> None:
    ip = "192.0.2.1"
    assert throttle.admit(ip).admitted
    assert throttle.admit(ip) == Admission(busy=True)  # the first is still being checked
    assert throttle.admit("192.0.2.2").admitted  # another address is not held
    throttle.settled(ip)
    assert throttle.admit(ip).admitted
    assert throttle.failed(ip) == 0  # the first failure is free
    assert throttle.admit(ip).admitted
    assert throttle.failed(ip) == 1
    assert throttle.admit(ip) == Admission(wait=1)
    clock.advance(1)
    assert throttle.admit(ip).admitted
    throttle.settled(ip)  # a success forgives nothing
    assert throttle.admit(ip).admitted
    assert throttle.failed(ip) == 2
    clock.advance(2)
    assert throttle.admit(ip).admitted
    clock.advance(2)  # an attempt whose process died holds the address 2 s at most
    assert throttle.admit(ip).admitted
    clock.advance(901)  # the window is over
    assert throttle.failed(ip) == 0


def test_parallel_attempts_from_one_address_are_admitted_one_at_a_time(
        engine: sa.Engine, clock: FrozenClock) -> None:
    throttle = LoginThrottle(engine, clock=clock)
    answers: list[Admission] = []
    start = threading.Barrier(6)

    def go() -> None:
        start.wait()
        answers.append(throttle.admit("198.51.100.1"))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(a.admitted for a in answers) == 1
    assert sum(a.busy for a in answers) == 5


def test_a_name_locks_as_an_account_does(throttle: LoginThrottle, clock: FrozenClock) -> None:
    for i in range(4):
        after = throttle.name_failed("nobody")
        assert after.count == i + 1 and after.locked_until is None
    after = throttle.name_failed("nobody")
    assert after.locked_until == clock() + timedelta(seconds=900)
    assert throttle.name_locked_until("nobody") == after.locked_until
    assert throttle.name_locked_until("somebody") is None


def test_count_failure_is_the_rule_of_both() -> None:
    now = FrozenClock()()
    first = count_failure(None, 0, now, threshold=2, window_seconds=900)
    assert (first.count, first.locked_until) == (1, None)
    second = count_failure(first.first, first.count, now + timedelta(seconds=899),
                           threshold=2, window_seconds=900)
    assert second.locked_until == now + timedelta(seconds=899 + 900)
    late = count_failure(first.first, first.count, now + timedelta(seconds=901),
                         threshold=2, window_seconds=900)
    assert (late.count, late.locked_until) == (1, None)


def test_purge_drops_idle_rows_and_caps_names(throttle: LoginThrottle, engine: sa.Engine,
                                              clock: FrozenClock) -> None:
    throttle.failed("192.0.2.1")
    for name in ("a", "b", "c", "d", "e"):
        throttle.name_failed(name)
        clock.advance(1)
    assert throttle.purge() == 2  # the two oldest names beyond the cap of 3
    with engine.connect() as conn:
        keys = set(conn.execute(sa.select(login_throttle.c.key)).scalars())
    assert keys == {address_key("192.0.2.1"), name_key("c"), name_key("d"), name_key("e")}
    clock.advance(2 * 900 + 1)
    assert throttle.purge() == 4
