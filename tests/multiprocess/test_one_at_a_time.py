"""``gateway.one_at_a_time``: of several processes running a periodic job at once, one
runs it (PostgreSQL's advisory lock); SQLite serves one process and needs none."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.one_at_a_time import one_at_a_time
from gateway.storage import create_engine


def test_one_process_runs_the_job_the_others_skip(engine: sa.Engine) -> None:
    other = create_engine(engine.url.render_as_string(hide_password=False))  # "another process"
    try:
        with one_at_a_time(engine, "job") as first:
            assert first
            with one_at_a_time(other, "job") as second, one_at_a_time(other, "else") as third:
                on_postgres = engine.dialect.name == "postgresql"
                assert second is not on_postgres  # taken: skip this round
                assert third  # another job is not held up
        with one_at_a_time(other, "job") as later:
            assert later  # released at the end
    finally:
        other.dispose()
