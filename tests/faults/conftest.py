"""Faults and load against a real ``govgate serve`` process (``bench.gateway_world``)
in front of ``bench.upstream``, on the run's database (a SQLite file, or a schema of
the PostgreSQL server named by GOVGATE_TEST_DATABASE_URL) unless a test stops a
database of its own."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.gateway_world import Upstream, prepare
from tests.conftest import fresh_database


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def world_env(home: Path, db_url: str) -> dict[str, str]:
    """The environment of ``govgate`` processes on ``db_url`` with ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    out = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
    out.update({"GOVGATE_HOME": str(home), "GOVGATE_DATABASE_URL": db_url,
                "LANG": "C.UTF-8"})
    return out


@contextlib.contextmanager
def cheap_hashes() -> Iterator[None]:
    """argon2 at its lowest cost for a module's fixture (tests/conftest.py does it per
    test): the users' hashes are made here, and the gateway checks them at the cost
    they were made with."""
    from argon2 import PasswordHasher

    from gateway import passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                           parallelism=1))
        yield


@contextlib.contextmanager
def prepared(upstream: Upstream, directory: Path, *, users: int
             ) -> Iterator[tuple[dict[str, str], str]]:
    """A fresh database (a file in ``directory`` or a new PostgreSQL schema) holding
    ``bench.gateway_world.state`` with ``users`` users: (environment, URL)."""
    with fresh_database(directory) as db_url:
        env = world_env(directory / "home", db_url)
        with cheap_hashes():
            prepare(env, upstream.url, user_count=users)
        yield env, db_url
