import pytest
import sqlalchemy as sa

from gateway.errors import StorageError
from gateway.storage import check_schema, create_engine, current_revision, head_revision, upgrade


def test_migrations_from_empty_reach_head_and_are_idempotent(db_url: str) -> None:
    engine = create_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    upgrade(engine)
    check_schema(engine)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"regions", "departments", "users", "user_roles", "systems", "clients"} <= tables
    engine.dispose()


def test_newer_schema_is_refused_in_one_line(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('9999_future')"))
    with pytest.raises(StorageError, match="newer than this govgate") as info:
        upgrade(engine)
    assert "\n" not in str(info.value)
    with pytest.raises(StorageError, match="newer"):
        check_schema(engine)


def test_unreachable_database_is_one_line() -> None:
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StorageError, match="database unreachable") as info:
        upgrade(engine)
    assert "\n" not in str(info.value)


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
