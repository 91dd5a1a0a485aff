"""Another connection commits between an operation's read and its write.

A running gateway commits audit records all the time. On SQLite a transaction that
read before such a commit can no longer write ("database is locked", at once, whatever
the busy timeout), unless it began as a writer (``gateway.storage.write_transaction``).

``commit_between_read_and_write(engine)`` watches the statements ``engine`` runs: in
the first transaction that reads and then is about to write, another connection
commits a row just before that write. If the transaction holds the write lock, the
other commit waits for it (the operation goes on after half a second); otherwise it
goes through at once and, on SQLite, the operation's write fails.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from gateway.storage import create_engine

_READS = ("SELECT", "WITH", "PRAGMA")
_WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP")


@contextlib.contextmanager
def commit_between_read_and_write(engine: sa.Engine) -> Iterator[None]:
    other = create_engine(engine.url.render_as_string(hide_password=False))
    with other.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS committed_elsewhere (n INTEGER)")
        before = conn.exec_driver_sql("SELECT count(*) FROM committed_elsewhere").scalar()
    stage: dict[int, str] = {}  # connection -> "begun", "read" or "wrote"
    writers: list[threading.Thread] = []
    errors: list[BaseException] = []

    def commit_elsewhere() -> None:
        try:
            with other.begin() as conn:
                conn.exec_driver_sql("INSERT INTO committed_elsewhere VALUES (1)")
        except BaseException as exc:
            errors.append(exc)

    def begun(conn: Any) -> None:
        stage[id(conn)] = "begun"

    def statement(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        now = stage.get(id(conn))
        if verb in _READS and now == "begun":
            stage[id(conn)] = "read"
        elif verb in _WRITES:
            stage[id(conn)] = "wrote"
            if now == "read" and not writers:
                writer = threading.Thread(target=commit_elsewhere)
                writer.start()
                writer.join(0.5)  # at once, unless this transaction holds the write lock
                writers.append(writer)

    sa.event.listen(engine, "begin", begun)
    sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "begin", begun)
        for writer in writers:
            writer.join(15)
        other.dispose()
    assert writers, "no transaction read and then wrote"
    assert not errors, errors
    with engine.connect() as conn:
        after = conn.exec_driver_sql("SELECT count(*) FROM committed_elsewhere").scalar()
    assert after == before + 1
