"""Consent (Keycloak's "Consent required" per client): whether a person is asked
before a client gets their identity, and what each person consented to.

The rule: a client's ``consent_required`` true asks every person, false none (a
first-party system); NULL, the default, asks a person who is not of the client's
department or of one below it: a system of the person's own department or of a
department above theirs is first-party, one registered by another department's
administrator a third party, and the person is told who asks for what. What a
person consented to is kept per client as a set of scopes; a request within it is not
asked again, unless ``prompt=consent``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.idp.oauth2.tables import consents


def needed(client: Any, department: str, subtree: Callable[[str], set[str]]) -> bool:
    """Whether a person of ``department`` is asked before ``client`` signs them in
    (``subtree``: a department and those below it, gateway.org)."""
    flag = getattr(client, "consent_required", None)
    if flag is not None:
        return bool(flag)
    return department not in subtree(str(client.department))


@dataclass(frozen=True)
class Consent:
    client_id: str
    scope: str
    granted_at: datetime


class Consents:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def granted(self, username: str, client_id: str) -> set[str]:
        with self.engine.connect() as conn:
            scope = conn.execute(sa.select(consents.c.scope).where(
                consents.c.username == username, consents.c.client_id == client_id)).scalar()
        return set((scope or "").split())

    def grant(self, username: str, client_id: str, scopes: set[str]) -> str:
        """Remember ``scopes`` beside what was consented before; the scope kept."""
        try:
            return self._grant(username, client_id, scopes)
        except sa.exc.IntegrityError:  # the same consent given at once in another tab
            return self._grant(username, client_id, scopes)

    def _grant(self, username: str, client_id: str, scopes: set[str]) -> str:
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(consents.c.scope).where(
                consents.c.username == username, consents.c.client_id == client_id)
                .with_for_update()).scalar()
            scope = " ".join(sorted(set((old or "").split()) | scopes))[:500]
            if old is None:
                conn.execute(consents.insert().values(
                    username=username, client_id=client_id, scope=scope,
                    granted_at=self.clock()))
            else:
                conn.execute(consents.update().where(
                    consents.c.username == username, consents.c.client_id == client_id)
                    .values(scope=scope, granted_at=self.clock()))
        return scope

    def revoke(self, username: str, client_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(consents.delete().where(
                consents.c.username == username,
                consents.c.client_id == client_id)).rowcount)

    def of_user(self, username: str) -> list[Consent]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(consents).where(consents.c.username == username)
                                .order_by(consents.c.client_id)).all()
        return [Consent(r.client_id, r.scope, r.granted_at) for r in rows]
