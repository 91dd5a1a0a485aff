"""Shipping the audit log to a JSON-lines file a collector tails (audit.ship): every
record once, each chain in its order, resumed where it stopped, one shipper at a time;
``govgate audit ship`` and a served gateway do it."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from audit import ShipError
from audit.ship import backlog, lock_path, position_path, ship
from audit.tables import records
from audit.writer import AuditLog
from gateway import audit_shipping
from gateway.app import create_app
from gateway.cli.main import cli
from gateway.services import open_services
from gateway.settings import load_settings
from gateway.setup import initialise
from tests.audit.conftest import rec


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_record_once_in_chain_order_and_resumed(
        audit_engine: sa.Engine, make_log: Callable[..., AuditLog], tmp_path: Path) -> None:
    first, second = make_log(writer_id="a"), make_log(writer_id="b")
    first.append_many_sync([rec(i) for i in range(3)])
    second.append_many_sync([rec(10 + i) for i in range(2)])
    target = tmp_path / "ship" / "audit.jsonl"
    target.parent.mkdir()
    assert backlog(audit_engine, target).records == 5

    done = ship(audit_engine, target)
    assert done is not None and (done.records, done.chains) == (5, 2)
    assert target.stat().st_mode & 0o007 == 0  # 0640 at most: never world-readable
    lines = _lines(target)
    by_chain: dict[object, list[object]] = {}
    for line in lines:
        by_chain.setdefault(line["chain_id"], []).append(line["seq"])
    assert sorted(by_chain.values()) == [[1, 2], [1, 2, 3]]
    assert {line["request_id"] for line in lines} == {f"req-{i}" for i in (0, 1, 2, 10, 11)}
    assert lines[0]["time"].endswith("Z") and "hash" in lines[0]  # as `audit query --format jsonl`

    again = ship(audit_engine, target)
    assert again is not None and again.records == 0 and len(_lines(target)) == 5
    first.append_sync(rec(3))
    assert backlog(audit_engine, target).records == 1
    assert ship(audit_engine, target) == type(done)(1, 1)
    assert [line["request_id"] for line in _lines(target)][-1] == "req-3"
    assert backlog(audit_engine, target) == type(backlog(audit_engine, target))(0, None)

    # the position lost (a crash before it was written): shipped again, at least once
    position_path(target).unlink()
    assert ship(audit_engine, target) == type(done)(6, 2)
    assert len(_lines(target)) == 12


def test_one_shipper_at_a_time_and_a_damaged_position_is_said(
        audit_engine: sa.Engine, make_log: Callable[..., AuditLog], tmp_path: Path) -> None:
    make_log().append_sync(rec())
    target = tmp_path / "audit.jsonl"
    fd = os.open(lock_path(target), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert ship(audit_engine, target) is None
        assert not target.exists()
    finally:
        os.close(fd)
    assert ship(audit_engine, target) is not None and len(_lines(target)) == 1

    position_path(target).write_text("{not json", encoding="utf-8")
    with pytest.raises(ShipError, match="not a shipping position file"):
        ship(audit_engine, target)
    with pytest.raises(ShipError, match="No such file or directory"):
        ship(audit_engine, tmp_path / "gone" / "audit.jsonl")


def test_the_cli_and_a_served_gateway_ship(env: dict[str, str], home: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``govgate audit ship`` catches up; a served gateway ships its own records (the
    setting's file, relative to home) and the last ones when it stops."""
    settings = load_settings(env, {"audit_ship_file": "audit.jsonl"})
    initialise(settings, password_factory=lambda: "Tb7#kq9!zX2@pL4w")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", "ship"])
    assert result.exit_code == 2 and "audit_ship_file" in result.output

    monkeypatch.setattr(audit_shipping, "ROUND_SECONDS", 0.02)
    services = open_services(settings, writer="gateway")
    target = home / "audit.jsonl"
    try:
        with TestClient(create_app(services)) as client:
            assert client.get("/s/nosuch/x").status_code == 401  # audited
            deadline = time.monotonic() + 5
            while not target.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(_lines(target)) == 1  # shipped while serving
            caught_up = 'govgate_audit_ship_lag_records{target="file"} 0.0'
            while caught_up not in (text := client.get("/metrics").text) and \
                    time.monotonic() < deadline:  # the position follows the line
                time.sleep(0.02)
            assert caught_up in text
            assert client.get("/s/nosuch/y").status_code == 401
    finally:
        services.close()
    shipped = _lines(target)  # the last one at the latest when the gateway stopped
    assert [(line["event_type"], line["status"]) for line in shipped] == [
        ("proxy_request", 401)] * 2

    out = home / "elsewhere.jsonl"
    result = runner.invoke(cli, ["audit", "ship", "--to", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"shipped {len(_lines(out))} audit records to {out}\n"
    assert len(_lines(out)) == len(shipped)
    engine = sa.create_engine(settings.db_url)
    with engine.connect() as conn:  # the operator's shipping is audited like an export
        extra = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "audit_ship")).scalar_one()
    engine.dispose()
    assert json.loads(extra) == {"file": str(out), "records": len(shipped), "via": "cli"}
