"""``KeyService.still_verifies``: what the proxy's cache of verified tokens asks on
every hit (``gateway.proxy.credentials``), here with two key services on one database
as two gateway processes have them: a key destroyed through one stops verifying in
the other within its ``cache_seconds``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from gateway.clock import FrozenClock
from keys import KeyService, ring


def test_a_key_destroyed_elsewhere_stops_verifying_within_the_cache(
        make_service: Callable[..., KeyService], clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(ring.time, "monotonic", lambda: now[0])
    one = make_service()
    one.bootstrap()
    other = make_service(cache_seconds=1.0)
    kid = next(i.kid for i in one.list_keys() if i.use == "token" and i.state == "active")
    assert other.still_verifies("token", kid) and not other.still_verifies("assertion", kid)
    one.rotate("token")
    one.promote_now("token")
    assert other.still_verifies("token", kid)  # retired: still in its window
    one.destroy(kid)
    assert other.still_verifies("token", kid)  # the other's copy, under a second old
    now[0] += 1.01
    assert not other.still_verifies("token", kid)


def test_a_retired_key_stops_verifying_when_it_leaves_the_window(
        make_service: Callable[..., KeyService], clock: FrozenClock) -> None:
    svc = make_service()
    svc.bootstrap()
    kid = next(i.kid for i in svc.list_keys() if i.use == "token" and i.state == "active")
    svc.rotate("token")
    svc.promote_now("token")
    assert svc.still_verifies("token", kid)
    # max token lifetime 600 s + skew 60 s (the conftest's)
    assert not svc.still_verifies("token", kid, at=clock() + timedelta(seconds=661))
