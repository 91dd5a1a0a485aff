"""Tamper tests: damage the database directly, expect verify to name the first bad thing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from audit.chain import hash_function, record_row
from audit.record import AuditRecord
from audit.verify import keyservice_sigcheck, verify_database
from audit.writer import AuditLog
from tests.audit.conftest import rec


@pytest.fixture
def filled(make_log: Callable[..., AuditLog], audit_engine: sa.Engine) -> dict[str, Any]:
    """Two chains of 30 records, a checkpoint every 10 records of each writer."""
    a = make_log(writer_id="wa", checkpoint_every=10)
    b = make_log(writer_id="wb", checkpoint_every=10)
    for start in range(0, 30, 10):
        a.append_many_sync([rec(i) for i in range(start, start + 10)])
        a.checkpoint_sync()
        b.append_many_sync([rec(i, actor_user="other") for i in range(start, start + 10)])
        b.checkpoint_sync()
    # three more on chain a after the last checkpoint
    a.append_many_sync([rec(100 + i) for i in range(3)])
    return {"a": a.chain_id, "b": b.chain_id}


def check(engine: sa.Engine, keys: Any):
    return verify_database(engine, keyservice_sigcheck(keys))


def sql(engine: sa.Engine, text: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(text), params)


def test_intact(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    rep = check(audit_engine, keys)
    assert rep.ok, rep.problems
    assert rep.records == 63 and rep.chains == 2 and rep.checkpoints == 6
    assert "intact: 63 records, 2 chains, 6 checkpoints" in rep.summary()


def test_changed_field(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    sql(audit_engine, "UPDATE audit_records SET actor_user='mallory' "
        "WHERE chain_id=:c AND seq=7", c=filled["a"])
    rep = check(audit_engine, keys)
    assert not rep.ok
    p = rep.first_problem
    assert p is not None and p.kind == "changed" and f"chain={filled['a']} seq=7" in p.where


@pytest.mark.parametrize("column,value", [
    ("ts", 1), ("outcome", "deny"), ("reason", "nothing to see"), ("extra", '{"a":1}'),
    ("items", '["x"]'), ("ckpt", 0),
])
def test_each_column_is_covered(filled: dict, audit_engine: sa.Engine, keys: Any,
                                column: str, value: Any) -> None:
    sql(audit_engine, f"UPDATE audit_records SET {column}=:v WHERE chain_id=:c AND seq=15",  # noqa: S608
        v=value, c=filled["b"])
    rep = check(audit_engine, keys)
    assert not rep.ok and "seq=15" in rep.problems[0].where


def test_deleted_record(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    sql(audit_engine, "DELETE FROM audit_records WHERE chain_id=:c AND seq=12", c=filled["a"])
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.kind == "missing" and "seq 12 missing" in p.detail


def test_deleted_first_record(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    sql(audit_engine, "DELETE FROM audit_records WHERE chain_id=:c AND seq=1", c=filled["a"])
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.kind == "missing"


def test_inserted_record(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    """A forged record spliced in at seq 5, the rest renumbered."""
    c = filled["a"]
    with audit_engine.begin() as conn:
        prev = conn.execute(sa.text("SELECT hash FROM audit_records WHERE chain_id=:c AND seq=4"),
                            {"c": c}).scalar_one()
        top = conn.execute(sa.text("SELECT max(seq) FROM audit_records WHERE chain_id=:c"),
                           {"c": c}).scalar_one()
        for s in range(top, 4, -1):
            conn.execute(sa.text("UPDATE audit_records SET seq=seq+1 WHERE chain_id=:c AND seq=:s"),
                         {"c": c, "s": s})
        row = record_row(AuditRecord(event_type="login", outcome="success", ts=5),
                         chain_id=c, seq=5, prev_hash=prev, ckpt=0,
                         hasher=hash_function("sha256"))
        conn.execute(sa.text(
            "INSERT INTO audit_records (chain_id, seq, prev_hash, hash, ckpt, ts, event_type, "
            "outcome, items, extra) VALUES (:chain_id, :seq, :prev_hash, :hash, :ckpt, :ts, "
            ":event_type, :outcome, :items, :extra)"), row)
    rep = check(audit_engine, keys)
    assert not rep.ok
    assert rep.first_problem is not None and f"chain={c} seq=6" in rep.first_problem.where


def test_reordered_records(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    c = filled["b"]
    with audit_engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET seq=-1 WHERE chain_id=:c AND seq=8"),
                     {"c": c})
        conn.execute(sa.text("UPDATE audit_records SET seq=8 WHERE chain_id=:c AND seq=9"),
                     {"c": c})
        conn.execute(sa.text("UPDATE audit_records SET seq=9 WHERE chain_id=:c AND seq=-1"),
                     {"c": c})
    p = check(audit_engine, keys).first_problem
    assert p is not None and f"chain={c} seq=8" in p.where


def test_deleted_checkpoint(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    sql(audit_engine, "DELETE FROM audit_checkpoints WHERE seq=3")
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.kind == "checkpoint" and p.where == "checkpoint 3"


def test_deleted_last_checkpoint(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    sql(audit_engine, "DELETE FROM audit_checkpoints WHERE seq=6")
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.kind == "checkpoint" and "6" in p.where


def test_changed_checkpoint(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    with audit_engine.begin() as conn:
        payload = conn.execute(sa.text("SELECT payload FROM audit_checkpoints WHERE seq=2")
                               ).scalar_one()
        forged = payload.replace('"seq":10', '"seq":9', 1)
        assert forged != payload
        conn.execute(sa.text("UPDATE audit_checkpoints SET payload=:p, hash=:h WHERE seq=2"),
                     {"p": forged, "h": hash_function("sha256")(forged.encode()).hex()})
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.where == "checkpoint 2"


def test_truncated_tail(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    """The attacker drops the tail and fixes the registry too: the checkpoints still tell."""
    c = filled["b"]
    with audit_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_records WHERE chain_id=:c AND seq>25"), {"c": c})
        h = conn.execute(sa.text("SELECT hash FROM audit_records WHERE chain_id=:c AND seq=25"),
                         {"c": c}).scalar_one()
        conn.execute(sa.text("UPDATE audit_chains SET head_seq=25, head_hash=:h "
                             "WHERE chain_id=:c"), {"c": c, "h": h})
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.kind == "truncated" and c in p.where and "seq 30" in p.detail


def test_truncated_tail_registry(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    """After the last checkpoint only the registry head tells (documented limit)."""
    sql(audit_engine, "DELETE FROM audit_records WHERE chain_id=:c AND seq=33", c=filled["a"])
    p = check(audit_engine, keys).first_problem
    assert p is not None and p.kind == "truncated"


def test_damaged_database_is_reported(filled: dict, audit_engine: sa.Engine,
                                      keys: Any) -> None:
    sql(audit_engine, "DROP TABLE audit_checkpoints")
    rep = check(audit_engine, keys)
    assert not rep.ok and rep.first_problem is not None
    assert rep.first_problem.where == "database"


def test_garbage_values_are_reported(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    if audit_engine.dialect.name != "sqlite":
        pytest.skip("only SQLite stores a string in an integer column")
    sql(audit_engine, "UPDATE audit_records SET seq='abc' WHERE chain_id=:c AND seq=3",
        c=filled["a"])
    sql(audit_engine, "UPDATE audit_checkpoints SET payload='{' WHERE seq=1")
    rep = check(audit_engine, keys)
    assert not rep.ok


def test_window(filled: dict, audit_engine: sa.Engine, keys: Any) -> None:
    with audit_engine.connect() as conn:
        ts = conn.execute(sa.text("SELECT ts FROM audit_records ORDER BY id LIMIT 1 OFFSET 20")
                          ).scalar_one()
    rep = verify_database(audit_engine, keyservice_sigcheck(keys), since=ts)
    assert rep.ok, rep.problems
    assert 0 < rep.records <= 63
