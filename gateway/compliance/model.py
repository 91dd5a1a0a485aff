"""What a compliance check reads and what it says.

An :class:`Item` is one requirement of GB/T 22239-2019 level 3 (等保2.0) or GB/T
39786-2021 level 3 (密评) that the gateway can show: a stable id, a title naming the
clause, a status and the evidence. Titles and evidence are :class:`texts.Text`, so
the CLI shows them in its language by key (``gateway.messages.LIBRARY``) and JSON
carries the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from gateway.settings import Settings
from keys import KeyService
from texts import Text, joined

PASS = "pass"  # noqa: S105 - a status, not a password
FAIL = "fail"
NOT_APPLICABLE = "not_applicable"
STATUSES = (PASS, FAIL, NOT_APPLICABLE)


@dataclass(frozen=True)
class State:
    """The real state the checks read: the settings the server would run with, the
    database and the key ring, at ``now``."""

    settings: Settings
    engine: sa.Engine
    keys: KeyService
    now: datetime


@dataclass(frozen=True)
class Item:
    id: str
    title: Text
    status: str
    evidence: Text


@dataclass(frozen=True)
class Check:
    id: str
    title: Text
    run: Callable[[State], tuple[str, Sequence[str]]]

    def item(self, state: State) -> Item:
        status, evidence = self.run(state)
        assert status in STATUSES
        return Item(self.id, self.title, status, joined(list(evidence)))


def names(values: Sequence[str], most: int = 10) -> str:
    """Up to ``most`` names for evidence, with ``...`` when there are more."""
    return ", ".join(values[:most]) + (" ..." if len(values) > most else "")


def verdict(problems: Sequence[str], facts: Sequence[str]) -> tuple[str, list[str]]:
    """``fail`` with the problems first when there are any, else ``pass``; the facts
    always follow."""
    return (FAIL if problems else PASS), [*problems, *facts]
