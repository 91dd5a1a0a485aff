"""Shipping the audit log to a syslog receiver (audit.syslog_ship): RFC 5424 messages
over TLS (RFC 5425) to a real rsyslogd, at least once, the watermark in the database;
a receiver that is down delays shipping, never a request, and the lag shows in
``/metrics`` and ``govgate audit stats --shipping``."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import trustme
from click.testing import CliRunner
from starlette.testclient import TestClient

from audit import ShipError
from audit.ship_marks import lag
from audit.ship_marks import metadata as ship_marks_metadata
from audit.syslog_message import BOM, frame, message, sd_escape
from audit.syslog_ship import TARGET, SyslogTarget, ship_syslog
from audit.tables import records
from audit.writer import AuditLog
from gateway import audit_shipping
from gateway.app import create_app
from gateway.cli.main import cli
from gateway.compliance.audit_checks import central_collection
from gateway.compliance.model import State
from gateway.errors import SettingsError
from gateway.services import open_services
from gateway.settings import load_settings
from gateway.setup import initialise
from keys import KeyService
from tests.audit.conftest import rec
from tests.schema import assert_mirrors
from tests.syslog_receiver import RSYSLOGD, Receiver, sd_params

needs_rsyslogd = pytest.mark.skipif(
    RSYSLOGD is None, reason="rsyslogd is not installed (apt-get install rsyslog "
                             "rsyslog-gnutls; CI installs it)")


def test_a_record_as_an_rfc5424_message() -> None:
    row = {"id": 7, "chain_id": "c1", "seq": 3, "ts": 1_733_300_000_123,
           "event_type": "proxy_request", "outcome": "deny", "actor_user": "张三",
           "actor_client": None, "system": "vehicles", "request_id": 'r"1]\\',
           "reason": "无权访问"}
    msg = message(row, facility=10, hostname="gw 1", procid="42")
    head, body = msg.split(BOM)
    assert head.decode() == (
        '<84>1 2024-12-04T08:13:20.123Z gw_1 govgate 42 proxy_request [govgate@32473 id="7" '
        'chain="c1" seq="3" outcome="deny" system="vehicles" actor="张三" '
        'request_id="r\\"1\\]\\\\"] ')  # authpriv (10) × 8 + warning (4)
    assert json.loads(body.decode("utf-8")) == row
    assert frame(msg) == str(len(msg)).encode() + b" " + msg
    assert sd_escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Receiver]:
    if RSYSLOGD is None:
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls; "
                    "CI installs it)")
    one = Receiver(tmp_path_factory.mktemp("rsyslog"), ca)
    one.start()
    yield one
    one.stop()


def _target(receiver: Receiver) -> SyslogTarget:
    return SyslogTarget(host="127.0.0.1", port=receiver.port, tls=True,
                        ca_file=str(receiver.folder / "ca.pem"), facility="local0",
                        hostname="gw-test")


@needs_rsyslogd
def test_records_arrive_parsed_by_rsyslog_over_tls(
        audit_engine: sa.Engine, make_log: Callable[..., AuditLog], receiver: Receiver,
        tmp_path: Path) -> None:
    log = make_log()
    log.append_many_sync([rec(1, reason='张三 查询 "车辆" ]\\ 台账', request_id='q"]\\1'),
                          rec(2, outcome="error", actor_user=None, actor_client="app-1")])
    target = _target(receiver)

    # a CA that did not issue the receiver's certificate: refused, nothing marked
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(ShipError, match="CERTIFICATE_VERIFY_FAILED"):
        ship_syslog(audit_engine, replace(target, ca_file=str(other)))
    assert lag(audit_engine, TARGET).records == 2

    done = ship_syslog(audit_engine, target)
    assert (done.records, done.chains) == (2, 1)
    assert lag(audit_engine, TARGET).records == 0
    with audit_engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(records))}
    got = receiver.wait_for(set(rows))
    assert set(rows) <= got
    parsed = {int(sd_params(m["sd"])["id"]): m for m in receiver.received()}
    first, second = (parsed[i] for i in sorted(rows))
    row = rows[min(rows)]
    assert (first["pri"], first["version"], first["host"], first["app"], first["msgid"]) == (
        "134", "1", "gw-test", "govgate", "proxy_request")  # local0 × 8 + informational
    assert first["procid"] == str(os.getpid())
    assert first["time"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S",
                                                  time.gmtime(row.ts / 1000)))
    assert first["sd"].startswith("[govgate@32473 ")
    assert sd_params(first["sd"]) == {
        "id": str(row.id), "chain": row.chain_id, "seq": "1", "outcome": "allow",
        "system": "vehicles", "actor": "user1", "request_id": 'q"]\\1'}
    assert first["msg"].startswith("\ufeff")
    body = json.loads(first["msg"][1:])
    assert (body["reason"], body["id"], body["hash"]) == ('张三 查询 "车辆" ]\\ 台账', row.id,
                                                          row.hash)
    assert second["pri"] == "131" and sd_params(second["sd"])["client"] == "app-1"

    assert ship_syslog(audit_engine, target).records == 0  # the watermark holds

    log.append_sync(rec(3, reason="明文 TCP"))  # plain TCP, octet-counted as well
    plain = replace(target, port=receiver.plain_port, tls=False)
    assert ship_syslog(audit_engine, plain).records == 1
    assert max(rows) + 1 in receiver.wait_for({max(rows) + 1})
    third = next(m for m in receiver.received() if sd_params(m["sd"])["seq"] == "3")
    assert json.loads(third["msg"][1:])["reason"] == "明文 TCP"


@needs_rsyslogd
def test_a_client_certificate_when_the_receiver_asks_for_one(
        audit_engine: sa.Engine, make_log: Callable[..., AuditLog], receiver: Receiver,
        ca: trustme.CA, tmp_path: Path) -> None:
    make_log().append_sync(rec(1, reason="双向认证"))
    target = replace(_target(receiver), port=receiver.mtls_port)
    # rsyslog accepts the handshake, then closes: not taken for an acceptance
    with pytest.raises(ShipError, match="closed the connection before any record"):
        ship_syslog(audit_engine, target)
    assert lag(audit_engine, TARGET).records == 1

    client = tmp_path / "client.pem"
    ca.issue_cert("govgate-gw1").private_key_and_cert_chain_pem.write_to_path(str(client))
    assert ship_syslog(audit_engine, replace(target, cert_file=str(client))).records == 1
    with audit_engine.connect() as conn:
        record_id = conn.scalar(sa.select(records.c.id))
    assert record_id in receiver.wait_for({record_id})


def _gauge(text: str, name: str) -> float:
    found = re.search(rf'^{name}{{target="syslog"}} (\S+)$', text, re.M)
    assert found, text
    return float(found.group(1))


def _lag_settles(client: TestClient) -> float:
    """The syslog lag in /metrics once it is 0 (the watermark moves just after the
    receiver took the records), or after 5 s."""
    deadline = time.monotonic() + 5
    while (found := _gauge(client.get("/metrics").text, "govgate_audit_ship_lag_records")
           ) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


@needs_rsyslogd
def test_a_served_gateway_ships_through_a_receiver_stopped_and_restarted(
        env: dict[str, str], home: Path, receiver: Receiver, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    syslog_env = {"GOVGATE_AUDIT_SYSLOG_TARGET": f"127.0.0.1:{receiver.port}",
                  "GOVGATE_AUDIT_SYSLOG_CA_FILE": str(receiver.folder / "ca.pem")}
    settings = load_settings({**env, **syslog_env})
    initialise(settings, password_factory=lambda: "Tb7#kq9!zX2@pL4w")
    monkeypatch.setattr(audit_shipping, "ROUND_SECONDS", 0.02)
    monkeypatch.setattr(audit_shipping, "BACKOFF_MAX_SECONDS", 0.1)
    engine = sa.create_engine(settings.db_url)

    def ids(event_type: str | None = None) -> set[int]:
        stmt = sa.select(records.c.id)
        if event_type:
            stmt = stmt.where(records.c.event_type == event_type)
        with engine.connect() as conn:
            return set(conn.scalars(stmt))

    for key, value in {**env, **syslog_env}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    runner = CliRunner()
    services = open_services(settings, writer="gateway")
    try:
        with TestClient(create_app(services)) as client:
            assert client.get("/s/nosuch/x").status_code == 401  # audited
            deadline = time.monotonic() + 5
            while not ids("proxy_request") and time.monotonic() < deadline:
                time.sleep(0.02)
            assert ids() <= receiver.wait_for(ids())  # shipped while serving
            assert _lag_settles(client) == 0

            receiver.stop()
            for i in range(3):  # answered and audited, whatever the receiver does
                assert client.get(f"/s/nosuch/{i}").status_code == 401
            deadline = time.monotonic() + 5
            while len(ids("proxy_request")) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(ids("proxy_request")) == 4
            metrics = client.get("/metrics").text
            assert _gauge(metrics, "govgate_audit_ship_lag_records") >= 3
            assert _gauge(metrics, "govgate_audit_ship_lag_seconds") > 0
            result = runner.invoke(cli, ["audit", "stats", "--shipping", "--format", "jsonl"])
            assert result.exit_code == 0, result.output
            lag_row = json.loads(result.output)
            assert (lag_row["target"], lag_row["where"]) == ("syslog", f"127.0.0.1:{receiver.port}")
            assert lag_row["records"] >= 3 and lag_row["oldest"].endswith("Z")

            receiver.start()
            wanted = ids()
            assert wanted <= receiver.wait_for(wanted)  # none missing, repeats allowed
            assert _lag_settles(client) == 0
    finally:
        services.close()
        engine.dispose()


@needs_rsyslogd
def test_the_cli_ships_to_syslog_and_refuses_a_wrong_ca(
        env: dict[str, str], receiver: Receiver, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", "ship", "--syslog"])
    assert result.exit_code == 2 and "audit_syslog_target" in result.output

    initialise(load_settings(env), password_factory=lambda: "Tb7#kq9!zX2@pL4w")
    assert runner.invoke(cli, ["audit", "query"]).exit_code == 0  # audited: a record to ship
    monkeypatch.setenv("GOVGATE_AUDIT_SYSLOG_TARGET", f"localhost:{receiver.port}")
    monkeypatch.setenv("GOVGATE_AUDIT_SYSLOG_CA_FILE", str(other))
    result = runner.invoke(cli, ["audit", "ship", "--syslog"])
    assert result.exit_code == 1, result.output
    assert result.output == (f"error: syslog receiver localhost:{receiver.port}: "
                             "CERTIFICATE_VERIFY_FAILED: unable to get local issuer "
                             "certificate\n")
    result = runner.invoke(cli, ["audit", "stats", "--shipping", "--format", "jsonl"])
    waiting = json.loads(result.output)["records"]
    assert waiting > 0  # nothing marked shipped

    monkeypatch.setenv("GOVGATE_AUDIT_SYSLOG_CA_FILE", str(receiver.folder / "ca.pem"))
    result = runner.invoke(cli, ["audit", "ship", "--syslog"])
    assert result.output == f"shipped {waiting} audit records to localhost:{receiver.port}\n"
    result = runner.invoke(cli, ["audit", "stats", "--shipping"])
    assert re.search(r"syslog +localhost:\d+ +1 ", result.output), result.output  # its own


def test_the_watermark_table_mirrors_its_migration(audit_engine: sa.Engine) -> None:
    assert_mirrors(audit_engine, ship_marks_metadata)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("AUDIT_SYSLOG_TARGET", "siem.example", "'audit_syslog_target': 'siem.example' is not "
                                            "host:port"),
    ("AUDIT_SYSLOG_TARGET", "siem:99999", "is not host:port"),
    ("AUDIT_SYSLOG_FACILITY", "local9", "'audit_syslog_facility': bad value 'local9'"),
    ("AUDIT_SYSLOG_KEY_FILE", "/etc/hostname", "give audit_syslog_cert_file as well"),
    ("AUDIT_SYSLOG_CA_FILE", "/nonexistent/ca.pem", "no such file"),
])
def test_bad_syslog_settings_are_refused(tmp_path: Path, name: str, value: str,
                                         says: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)):
        load_settings({"GOVGATE_HOME": str(tmp_path), f"GOVGATE_{name}": value})


def test_the_compliance_check_counts_a_syslog_receiver(
        env: dict[str, str], audit_engine: sa.Engine, make_log: Callable[..., AuditLog],
        keys: KeyService) -> None:
    """au.central_collection (8.1.5.4 c) with a syslog receiver and no file: passes while
    records wait a short while, fails when they wait longer than 10 minutes."""
    settings = load_settings({**env, "GOVGATE_AUDIT_SYSLOG_TARGET": "siem.example:6514"})
    make_log().append_sync(rec(1))
    now = datetime.now(UTC)
    status, evidence = central_collection(State(settings, audit_engine, keys, now))
    assert (status, [str(e) for e in evidence]) == ("pass", [
        "every record goes to the syslog receiver siem.example:6514 (RFC 5424 over TLS); "
        "1 waiting"])
    status, evidence = central_collection(State(settings, audit_engine, keys,
                                                now + timedelta(hours=1)))
    assert status == "fail"
    assert str(evidence[0]).startswith("1 records wait since ")
    assert "for the syslog receiver siem.example:6514" in str(evidence[0])
