"""Admin operations that read and then write succeed while another connection commits
in between, as a running gateway's audit log does all the time (tests.interleave).

On SQLite each of these failed with "database is locked" before its transaction began
as a writer. PostgreSQL transactions do not go stale this way: there they pass as well."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.clock import FrozenClock
from gateway.org import Org
from keys import GM, STANDARD, FileMasterKey, KeyService
from keys.tables import data_keys
from policies.engine import PolicyLine
from policies.service import Policies
from tests.interleave import commit_between_read_and_write

PW = "Correct-Horse-42"


@pytest.fixture
def org(engine: sa.Engine) -> Org:
    o = Org(engine)
    o.add_region("gx", "某省")
    o.add_department("jgswj", "机关事务管理局", "gx")
    return o


@pytest.fixture
def master(tmp_path: Path) -> FileMasterKey:
    return FileMasterKey.create(tmp_path / "master.key")


def keys(engine: sa.Engine, master: FileMasterKey, profile=STANDARD) -> KeyService:
    return KeyService(engine, master, profile, clock=FrozenClock(), prepublish_seconds=3600,
                      max_token_lifetime_seconds=600, clock_skew_seconds=60, cache_seconds=0.0)


# -- the organisation ------------------------------------------------------------------

@pytest.mark.parametrize(("change", "stored"), [
    (lambda org: org.add_region("gx-nn", "某市", parent="gx"),
     lambda org: org.add_department("nn-jgsw", "市机关事务中心", "gx-nn") is None
     and org.department_region("nn-jgsw") == "gx-nn"),
    (lambda org: org.add_department("czt", "财政厅", "gx"),
     lambda org: org.department_region("czt") == "gx"),
    (lambda org: org.add_user("zhang.san", "张三", "jgswj", ["staff"], PW),
     lambda org: org.get_user("zhang.san").department == "jgswj"),
], ids=["add_region", "add_department", "add_user"])
def test_checks_then_inserts(org: Org, engine: sa.Engine, change, stored) -> None:
    with commit_between_read_and_write(engine):
        change(org)
    assert stored(org)


def test_failed_login_counter_and_lockout(org: Org, engine: sa.Engine) -> None:
    clock = FrozenClock()
    org.clock = clock
    org.add_user("zhang.san", "张三", "jgswj", ["staff"], PW)
    with commit_between_read_and_write(engine):
        org.record_failure("zhang.san", threshold=2, window_seconds=900)
    with commit_between_read_and_write(engine):
        user = org.record_failure("zhang.san", threshold=2, window_seconds=900)
    assert user.failed_logins == 2
    assert user.locked_until == clock() + timedelta(seconds=900)


def test_ensure_admins_of_govgate_init(engine: sa.Engine) -> None:
    from gateway.setup import ADMIN_ACCOUNTS, _ensure_admins

    with commit_between_read_and_write(engine):
        created = _ensure_admins(engine, lambda: PW)
    assert [u for u, _ in created] == [u for u, _, _ in ADMIN_ACCOUNTS]


def test_schema_upgrade_of_govgate_init(empty_db_url: str) -> None:
    from gateway.storage import create_engine, current_revision, head_revision, upgrade

    engine = create_engine(empty_db_url)
    with commit_between_read_and_write(engine):
        upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


# -- policies ----------------------------------------------------------------------------

def test_policy_add_and_remove(engine: sa.Engine) -> None:
    policies = Policies(engine)
    line = PolicyLine("role:staff", "jgswj", "system:assets", "read")
    with commit_between_read_and_write(engine):
        stored, created = policies.add(line)
    assert created and policies.lines() == [stored]
    with commit_between_read_and_write(engine):
        assert policies.remove(line) == stored
    assert policies.lines() == []


def test_casbin_adapter_add_and_remove(engine: sa.Engine) -> None:
    from policies.adapter import DatabaseAdapter

    adapter = DatabaseAdapter(engine)
    with commit_between_read_and_write(engine):
        adapter.add_policy("p", "p", ["role:staff", "jgswj", "system:assets", "read", "allow"])
    assert len(Policies(engine).lines()) == 1
    with commit_between_read_and_write(engine):
        adapter.remove_policy("p", "p", ["role:staff", "jgswj", "system:assets", "read", "allow"])
    assert Policies(engine).lines() == []


# -- keys --------------------------------------------------------------------------------

def test_signing_key_rotation(engine: sa.Engine, master: FileMasterKey) -> None:
    svc = keys(engine, master)
    svc.bootstrap()
    with commit_between_read_and_write(engine):
        info = svc.rotate("token")
    assert info.state == "pending"


def test_signing_key_rotation_after_a_profile_switch(engine: sa.Engine,
                                                     master: FileMasterKey) -> None:
    """Sealing the new key has to create the new profile's data key. Done inside the
    rotation's transaction, on SQLite the rotation could no longer write afterwards (a
    deferred transaction) or waited for its own write lock (one begun as a writer)."""
    keys(engine, master).bootstrap()
    gm = keys(engine, master, GM)  # the setting changed; process restarted
    assert gm.rotate("token").state == "pending"
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(data_keys.c.profile)).scalars()) == [
            "gm", "standard"]


def test_first_data_key_of_a_profile(engine: sa.Engine, master: FileMasterKey) -> None:
    keys(engine, master).bootstrap()
    gm = keys(engine, master, GM)
    with commit_between_read_and_write(engine):
        blob = gm.seal(b"secret", "ctx")
    assert gm.open(blob, "ctx") == b"secret"


def test_master_key_rotation(engine: sa.Engine, master: FileMasterKey,
                             tmp_path: Path) -> None:
    svc = keys(engine, master)
    svc.bootstrap()
    blob = svc.seal(b"secret", "ctx")
    new = FileMasterKey.create(tmp_path / "master2.key")
    with commit_between_read_and_write(engine):
        assert svc.rotate_master(new) == 1
    assert keys(engine, new).open(blob, "ctx") == b"secret"


# -- the audit log's purge -------------------------------------------------------------

def test_audit_purge_that_reads_an_anchor_first(engine: sa.Engine, master: FileMasterKey,
                                                tmp_path: Path) -> None:
    """The second purge re-seals an earlier chain's anchor (read) before it purges
    the other chain (write)."""
    from audit import AuditLog, AuditRecord
    from audit.archive import export_archive, purge
    from gateway.storage import create_engine

    day, now = 86_400.0, 1_800_000_000.0
    svc = keys(engine, master)
    svc.bootstrap()

    def write(writer: str, days_ago: list[int]) -> None:
        t = [now - days_ago[0] * day]
        log = AuditLog(engine, keys=svc, writer_id=writer, clock=lambda: t[0])
        for d in days_ago:
            t[0] = now - d * day
            log.append_sync(AuditRecord(event_type="login", outcome="success"))
        log.close_sync()

    write("early", [300, 299, 298])
    write("late", [290, 289])
    export_archive(engine, svc, until=int(now * 1000), to=tmp_path / "arc")
    # the sealing records go through an engine of their own: only purge() is watched
    sealing = create_engine(engine.url.render_as_string(hide_password=False))
    sealer = AuditLog(sealing, keys=svc, writer_id="cli", clock=lambda: now)
    try:
        first = purge(engine, sealer, until=int((now - 295 * day) * 1000),
                      archive=tmp_path / "arc", retention_days=180, now=int(now * 1000))
        assert first.records == 3
        with commit_between_read_and_write(engine):
            second = purge(engine, sealer, until=int((now - 285 * day) * 1000),
                           archive=tmp_path / "arc", retention_days=180,
                           now=int(now * 1000))
        assert second.records == 2
    finally:
        sealer.close_sync()
        sealing.dispose()
