"""First-run set-up shared by ``govgate init`` and ``govgate demo``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa

from gateway.errors import MasterKeyMissing
from gateway.org import ADMIN_ROLES, Org
from gateway.services import key_service, master_key
from gateway.settings import Settings
from gateway.storage import create_engine, current_revision, upgrade, write_transaction
from gateway.tables import departments, regions, users
from keys.master import FileMasterKey
from keys.tables import data_keys
from texts import Text

PLATFORM_REGION = ("local", "本级")
PLATFORM_DEPARTMENT = ("platform", "平台运维")
ADMIN_ACCOUNTS = (
    ("sysadmin", "系统管理员", "sysadmin"),
    ("secadmin", "安全管理员", "secadmin"),
    ("auditor", "审计管理员", "auditor"),
)


def initialise(
    settings: Settings,
    *,
    password_factory: Callable[[], str],
    environ: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Idempotent set-up; returns (username, first password) of admins it created."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.master_key_provider == "file" and not settings.master_key_path.exists():
        if _has_sealed_keys(settings):
            # a database with keys but no master key file: never make a new one over it
            raise MasterKeyMissing(Text(
                "setup.master_key_missing", "master key file {path} is missing but the database "
                "is initialised; restore the file (nothing was changed)",
                path=settings.master_key_path))
        FileMasterKey.create(settings.master_key_path)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        keys = key_service(settings, engine, master_key(settings, environ))
        keys.bootstrap()
        return _ensure_admins(engine, password_factory)
    finally:
        engine.dispose()


def _has_sealed_keys(settings: Settings) -> bool:
    """Whether the database holds data keys sealed under some master key (a schema
    without keys, migrated ahead of ``init``, may get a new master key)."""
    engine = create_engine(settings.db_url)
    try:
        if current_revision(engine) is None:
            return False
        with engine.connect() as conn:
            return conn.execute(sa.select(data_keys.c.id).limit(1)).first() is not None
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _ensure_admins(engine: sa.Engine, password_factory: Callable[[], str]) -> list[tuple[str, str]]:

    org = Org(engine)
    # `govgate init` may run again while a gateway serves: checks, then inserts
    with write_transaction(engine) as conn:
        if not conn.execute(
            sa.select(regions.c.code).where(regions.c.code == PLATFORM_REGION[0])
        ).first():
            conn.execute(regions.insert().values(code=PLATFORM_REGION[0], name=PLATFORM_REGION[1]))
        if not conn.execute(
            sa.select(departments.c.code).where(departments.c.code == PLATFORM_DEPARTMENT[0])
        ).first():
            conn.execute(
                departments.insert().values(
                    code=PLATFORM_DEPARTMENT[0],
                    name=PLATFORM_DEPARTMENT[1],
                    region_code=PLATFORM_REGION[0],
                )
            )
        existing = {r.username for r in conn.execute(sa.select(users.c.username))}
    created = []
    for username, name, role in ADMIN_ACCOUNTS:
        assert role in ADMIN_ROLES
        if username in existing:
            continue
        password = password_factory()
        org.add_user(username, name, PLATFORM_DEPARTMENT[0], [role], password, must_change=True)
        created.append((username, password))
    return created
