"""Shared fixtures: a fresh database per test, on SQLite or on the PostgreSQL server
named by GOVGATE_TEST_DATABASE_URL (each test in its own schema)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.settings import Settings, load_settings
from gateway.storage import create_engine, upgrade
from tests.wiring import close_gateways

PG_URL = os.environ.get("GOVGATE_TEST_DATABASE_URL", "")


def pytest_report_header(config: pytest.Config) -> str:
    return f"govgate database: {'postgresql' if PG_URL else 'sqlite'}"


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A database URL nobody else uses: a new SQLite file or a new PostgreSQL schema."""
    with fresh_database(tmp_path) as url:
        yield url


@contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """``db_url``'s database, for fixtures of a wider scope: a SQLite file in
    ``directory``, or a PostgreSQL schema dropped at the end."""
    if not PG_URL:
        yield f"sqlite:///{directory / 'govgate.db'}"
        return
    schema = "t_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path, db_url: str) -> dict[str, str]:
    """Environment for a `govgate` subprocess or for load_settings."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
    out.update({"GOVGATE_HOME": str(home), "GOVGATE_DATABASE_URL": db_url, "LANG": "C.UTF-8"})
    return out


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A migrated engine."""
    eng = create_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _gateways_closed() -> Iterator[None]:
    """Every gateway a test built through ``tests.wiring`` stops its watcher after it."""
    yield
    close_gateways()


@pytest.fixture(autouse=True)
def _cheap_password_hashes(request: pytest.FixtureRequest,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at the cost the gateway runs with (OWASP: 19 MiB, 2 passes) takes tens of
    milliseconds a hash, and every test world signs its demo accounts up: in process,
    tests hash cheaply unless marked ``real_password_cost``. The production cost
    stays in ``gateway.passwords`` and in every test that runs ``govgate`` itself."""
    if request.node.get_closest_marker("real_password_cost"):
        return
    from argon2 import PasswordHasher

    from gateway import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                             parallelism=1))
