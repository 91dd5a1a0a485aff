"""The deny list's mirror against revocations committed out of their numbers' order
(``gateway.idp.oauth2.deny_list``: "numbers skipped"), over a table whose rows become
visible when the test says so, as concurrent transactions make them on PostgreSQL.
The two-process proof is ``test_changes_reach.py``; this one runs on any database."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.idp.oauth2 import deny_list
from gateway.idp.oauth2.deny_list import GAP_SECONDS, DenyList, TokenId

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


class _Table:
    """``idp_revocations`` as a reader sees it: committed rows only."""

    def __init__(self) -> None:
        self.visible: dict[int, tuple[str, str, datetime]] = {}

    def clock(self) -> datetime:
        return NOW

    def commit(self, row_id: int, kind: str, value: str, created: datetime = NOW) -> None:
        self.visible[row_id] = (kind, value, created)

    def denied_since(self, high_water: int, also: Collection[int] = ()
                     ) -> list[tuple[int, str, str, datetime, datetime]]:
        return [(i, kind, value, NOW + timedelta(hours=1), created)
                for i, (kind, value, created) in sorted(self.visible.items())
                if i > high_water or i in also]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(deny_list.time, "monotonic", lambda: now[0])
    return now


def _mirror(table: _Table) -> DenyList:
    mirror = DenyList(table, refresh_interval=0.5)  # type: ignore[arg-type]
    mirror.refresh(force=True)  # the process starts: the table read once
    return mirror


def test_a_number_committed_late_is_read_while_it_may_still_come(clock: list[float]) -> None:
    table = _Table()
    mirror = _mirror(table)
    table.commit(2, "jti", "quick")  # 1 is drawn, its transaction still open
    mirror.refresh(force=True)
    assert mirror.denied("jti", "quick") and not mirror.denied("jti", "slow")
    table.commit(1, "jti", "slow")
    clock[0] += 0.6
    assert mirror.denied("jti", "slow")
    # a number never committed (a rolled-back insert) is asked for a minute, then dropped
    table.commit(5, "jti", "later")
    mirror.refresh(force=True)
    assert set(mirror._gaps) == {3, 4}
    clock[0] += GAP_SECONDS + 0.1
    mirror.refresh(force=True)
    assert mirror._gaps == {}


def test_the_first_read_takes_no_purged_numbers_for_gaps(clock: list[float]) -> None:
    table = _Table()
    for i in (5000, 5002):  # 1-4999 purged long ago, 5001 rolled back
        table.commit(i, "jti", f"t{i}")
    mirror = _mirror(table)
    assert set(mirror._gaps) == {5001}


def test_a_late_disable_of_a_client_does_not_narrow_a_later_one(clock: list[float]) -> None:
    table = _Table()
    mirror = _mirror(table)
    table.commit(2, "client", "app", created=NOW)
    mirror.refresh(force=True)
    table.commit(1, "client", "app", created=NOW - timedelta(minutes=5))
    clock[0] += 0.6
    token: Any = TokenId("j", "app", (NOW - timedelta(seconds=30)).timestamp())
    assert mirror.denied("jti", token)  # issued after the older disable, before the later
