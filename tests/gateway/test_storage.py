import pytest
import sqlalchemy as sa

from gateway.errors import StorageError
from gateway.storage import check_schema, create_engine, current_revision, head_revision, upgrade


def test_migrations_from_empty_reach_head_and_are_idempotent(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
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


def test_write_transaction_waits_for_the_lock_where_a_deferred_one_fails(tmp_path) -> None:
    import threading
    import time

    from gateway.storage import write_transaction

    url = f"sqlite:///{tmp_path / 'locks.db'}"
    engine, other = create_engine(url), create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")

    def insert(n: int) -> None:
        with other.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", (n,))

    # a deferred transaction reads, another connection commits, then it writes: SQLite
    # refuses at once (its snapshot is stale), whatever the busy timeout
    with pytest.raises(sa.exc.OperationalError, match="locked"), engine.begin() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        insert(1)
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    # one that begins as a writer makes the other writer wait for it instead
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        writer = threading.Thread(target=insert, args=(3,))
        writer.start()
        time.sleep(0.2)
        assert writer.is_alive()  # waiting on our lock
        conn.exec_driver_sql("INSERT INTO t VALUES (4)")
    writer.join(10)
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.exec_driver_sql("SELECT n FROM t")) == [1, 3, 4]
    engine.dispose()
    other.dispose()
