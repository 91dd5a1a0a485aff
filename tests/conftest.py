"""Shared fixtures: a fresh database per test, on SQLite or on the PostgreSQL server
named by GOVGATE_TEST_DATABASE_URL (each test in its own schema)."""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.settings import Settings, load_settings
from gateway.setup import initialise
from gateway.storage import create_engine, upgrade
from gateway.tables import users
from tests.wiring import close_gateways

PG_URL = os.environ.get("GOVGATE_TEST_DATABASE_URL", "")


def pytest_report_header(config: pytest.Config) -> str:
    return f"govgate database: {'postgresql' if PG_URL else 'sqlite'}"


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A database URL nobody else uses, its schema migrated to head: a SQLite file or
    a PostgreSQL database, each a copy of one migrated in this session."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    """A database nobody else uses with nothing in it, for tests of the migrations and
    of a first ``govgate init``."""
    with fresh_database(tmp_path, empty=True) as url:
        yield url


@contextmanager
def fresh_database(directory: Path, *, empty: bool = False) -> Iterator[str]:
    """``db_url``'s database, for fixtures of a wider scope: a SQLite file in
    ``directory``, or a PostgreSQL database dropped at the end. Migrating takes
    longer than most tests (0.1 s on SQLite, 0.25 s on PostgreSQL): a migrated one is
    copied instead, the SQLite file as a file, the PostgreSQL database as the
    template of ``CREATE DATABASE``."""
    if not PG_URL:
        path = directory / ("empty.db" if empty else "govgate.db")
        if not empty:
            shutil.copyfile(_template().sqlite_file, path)
        yield f"sqlite:///{path}"
        return
    if empty:
        name = "t_" + secrets.token_hex(6)
        with _pg_admin().connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        try:
            yield _pg_url(name)
        finally:
            with _pg_admin().connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        return
    pool = _pg_pool()
    name = pool.take()
    try:
        yield _pg_url(name)
    finally:
        pool.give_back(name)


class _PgPool:
    """Test databases copied from the session's template ahead of the tests that take
    them, and dropped after them, on a thread of its own. Each ``CREATE DATABASE ...
    TEMPLATE`` and ``DROP DATABASE`` writes and syncs the whole database (10 MB: the
    catalogs): 0.1 to 0.3 s each, more on a loaded machine, which the test waited
    for twice. The test still gets a database nobody else has used, and it is still
    dropped with its connections (``WITH (FORCE)``) before the session ends; a test
    whose database is not ready yet makes its own at once."""

    READY = 2

    def __init__(self, template: str) -> None:
        self._template = template
        self._ready: list[str] = []
        self._drops: list[str] = []
        self._failures: list[BaseException] = []
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="govgate-test-databases",
                                        daemon=True)
        self._thread.start()

    def take(self) -> str:
        with self._changed:
            name = self._ready.pop(0) if self._ready else ""
            self._changed.notify()
        if not name:
            name = self._create()
        return name

    def give_back(self, name: str) -> None:
        with self._changed:
            self._drops.append(name)
            self._changed.notify()

    def close(self) -> None:
        """Drop what is left (at the session's end, before its template goes)."""
        with self._changed:
            self._closing = True
            self._drops.extend(self._ready)
            self._ready.clear()
            self._changed.notify()
        self._thread.join()
        for name in self._drops:  # the thread stopped early on a failure
            _drop(name)
        if self._failures:
            raise self._failures[0]

    def _work(self) -> None:
        while True:
            with self._changed:
                while not (self._closing or self._drops or len(self._ready) < self.READY):
                    self._changed.wait()
                if self._closing and not self._drops:
                    return
                # the next test waits for a ready database, not for an old one's drop
                drop = self._drops.pop(0) if self._drops and (
                    self._ready or self._closing) else ""
            try:
                if drop:
                    _drop(drop)
                    continue
                made = self._create()
            except Exception as exc:  # the server is gone: the tests' own calls say so
                self._failures.append(exc)
                return
            with self._changed:
                if self._closing:
                    self._drops.append(made)
                else:
                    self._ready.append(made)

    def _create(self) -> str:
        name = "t_" + secrets.token_hex(6)
        with _pg_admin().connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {self._template}"))
        return name


def _drop(name: str) -> None:
    with _pg_admin().connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _pg_pool() -> _PgPool:
    if not _PG_POOL:
        _PG_POOL.append(_PgPool(_template().pg_database))
        atexit.register(_PG_POOL[0].close)  # before the template's drop: atexit is LIFO
    return _PG_POOL[0]


_PG_POOL: list[_PgPool] = []


@dataclass
class _Template:
    sqlite_file: Path | None = None
    pg_database: str = ""


_TEMPLATE: list[_Template] = []


def _template() -> _Template:
    """The session's migrated database, made on first use (dropped at exit)."""
    if _TEMPLATE:
        return _TEMPLATE[0]
    made = _Template()
    if PG_URL:
        made.pg_database = "govgate_template_" + secrets.token_hex(6)
        with _pg_admin().connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {made.pg_database}"))
        atexit.register(_drop_pg_template, made.pg_database)
        url = _pg_url(made.pg_database)
    else:
        folder = Path(tempfile.mkdtemp(prefix="govgate-template-"))
        atexit.register(shutil.rmtree, folder, True)
        made.sqlite_file = folder / "template.db"
        url = f"sqlite:///{made.sqlite_file}"
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()  # SQLite: the WAL is folded into the file; PostgreSQL: a
        # template must have no session open while it is copied
    _TEMPLATE.append(made)
    return made


def _pg_admin() -> sa.Engine:
    if not _PG_ADMIN:
        _PG_ADMIN.append(sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT",
                                          poolclass=sa.pool.NullPool))
    return _PG_ADMIN[0]


_PG_ADMIN: list[sa.Engine] = []


def _pg_url(database: str) -> str:
    return sa.make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def _drop_pg_template(name: str) -> None:
    with _pg_admin().connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def seeded(settings: Settings, name: str, seed: Callable[[Settings], None]) -> None:
    """Give ``settings``' database and master key the state ``seed(settings)`` makes
    on a fresh migrated database: made once per session under ``name``, then copied
    (applying the demo's state file takes longer than most tests that read it). The
    copy is the test's own: nothing it does reaches the next test. On PostgreSQL the
    copies are made ahead by a ``_PgPool`` of the snapshot's, and one takes the test
    database's name (two renames; the database it replaces is dropped in the
    background), as ``fresh_database`` takes its own."""
    made = _SNAPSHOTS.get(name)
    if made is None:
        folder = Path(tempfile.mkdtemp(prefix=f"govgate-seed-{name[:40]}-"))
        atexit.register(shutil.rmtree, folder, True)
        if PG_URL:
            database = "govgate_seed_" + secrets.token_hex(6)
            with _pg_admin().connect() as conn:
                conn.execute(sa.text(
                    f"CREATE DATABASE {database} TEMPLATE {_template().pg_database}"))
            atexit.register(_drop_pg_template, database)
            url = _pg_url(database)
        else:
            assert _template().sqlite_file is not None
            database = str(folder / "seed.db")
            shutil.copyfile(_template().sqlite_file, database)
            url = f"sqlite:///{database}"
        at = dataclasses.replace(settings, home=folder / "home", database_url=url,
                                 master_key_file="")
        seed(at)  # closes what it opened: a PostgreSQL template must have no session
        made = _SNAPSHOTS[name] = (at.master_key_path, database)
    key, database = made
    settings.master_key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(key, settings.master_key_path)
    settings.master_key_path.chmod(0o600)
    if PG_URL:
        _pg_swap_in(sa.make_url(settings.db_url).database or "", database)
    else:
        shutil.copyfile(database, sa.make_url(settings.db_url).database or "")


def _pg_swap_in(target: str, snapshot: str) -> None:
    """Make ``target`` a copy of ``snapshot``: a ready copy renamed to ``target``, the
    database that held the name renamed away and dropped in the background. When
    something is connected to ``target`` it cannot be renamed: dropped with its
    connections and copied in the foreground instead."""
    pool = _SEED_POOLS.get(snapshot)
    if pool is None:
        pool = _SEED_POOLS[snapshot] = _PgPool(snapshot)
        atexit.register(pool.close)  # before the snapshot's drop: atexit is LIFO
    copy = pool.take()
    spare = "t_" + secrets.token_hex(6)
    with _pg_admin().connect() as conn:
        try:
            conn.execute(sa.text(f"ALTER DATABASE {target} RENAME TO {spare}"))
        except sa.exc.DBAPIError:  # in use
            pool.give_back(copy)
            conn.execute(sa.text(f"DROP DATABASE {target} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {target} TEMPLATE {snapshot}"))
            return
        conn.execute(sa.text(f"ALTER DATABASE {copy} RENAME TO {target}"))
    pool.give_back(spare)  # its thread drops one for each copy it makes


_SEED_POOLS: dict[str, _PgPool] = {}


ADMIN_PASSWORD = "Admin-Passw0rd-2026!"  # the three admin accounts' first password
UNKNOWN_PASSWORD = secrets.token_urlsafe(16)  # theirs where no test signs in as them


def initialised(settings: Settings, password: str = ADMIN_PASSWORD) -> None:
    """``gateway.setup.initialise(settings)`` with ``password`` for the three admin
    accounts, on a test's fresh database and home: made once per session for each
    value of the settings it reads (``INITIALISE_READS``) and copied (``seeded``),
    where it cost 0.2-0.8 s a test. A home that has a master key already, a database
    with users in it or without the schema, or a master key from elsewhere than a
    file is initialised in place, as ``initialise`` does."""
    def made(at: Settings) -> None:
        initialise(at, password_factory=lambda: password)

    if settings.master_key_provider != "file" or settings.master_key_path.exists() or \
            not _without_users(settings.db_url):
        made(settings)
        return
    read = repr([getattr(settings, name) for name in INITIALISE_READS])
    digest = hashlib.sha256(read.encode() + b"\0" + password.encode())
    seeded(settings, "initialised-" + digest.hexdigest()[:16], made)


# What gateway.setup.initialise reads of the settings besides the home, the database
# and the master key's place (through key_service and master_key): one snapshot per
# distinct value of these, not per test (a live gateway's issuer names its own port).
# tests/gateway/test_initialised.py fails when initialise comes to read another.
INITIALISE_READS = ("crypto_profile", "signing_alg", "key_prepublish_seconds",
                    "access_token_lifetime", "id_token_lifetime", "assertion_lifetime",
                    "clock_skew_seconds", "master_key_provider")


def _without_users(url: str) -> bool:
    """Whether the database at ``url`` has the schema and no user: nothing of a test."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(users.c.username).limit(1)).first() is None
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


_SNAPSHOTS: dict[str, tuple[Path, str]] = {}


@contextmanager
def settings_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings over a home and a database of their own, for fixtures wider than a
    test (a module's or a package's live gateway)."""
    home = tmp_path_factory.mktemp("home")
    with fresh_database(home) as url:
        yield load_settings({"GOVGATE_HOME": str(home), "GOVGATE_DATABASE_URL": url})


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
