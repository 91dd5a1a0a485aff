"""Overdue applications go to the provider department's head (负责人): once, audited,
announced by a signed webhook to a real local HTTP server and by e-mail to a real
local SMTP server (aiosmtpd); a notice that fails is tried again next round and never
holds the referral back; the gateway's maintenance loop and ``govgate catalogue
escalate-overdue`` run the round; a steward refers by hand, with a reason; every
reason stays in the application's timeline."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from catalogue import Actor, NotAllowed, WorkflowConflict
from catalogue.tables import notices
from gateway.cli.main import cli
from gateway.clock import FrozenClock
from gateway.referrals import run_round
from gateway.referrals.webhook import secret
from gateway.services import Services
from gateway.settings import Settings, load_settings
from tests.catalogue.conftest import audit_rows
from tests.oauth2.live import free_port
from tests.wiring import parts

WANG = Actor("wang.wu", "nn-jgsw", frozenset({"staff"}))
ZHANG = Actor("zhang.san", "jgswj", frozenset({"staff", "data_steward"}))
ZHOU = Actor("zhou.ling", "jgswj", frozenset({"staff", "dept_head"}))
LI = Actor("li.si", "jgswj", frozenset({"staff"}))
DUE = datetime(2026, 3, 16, 1, 0, tzinfo=UTC)  # filed Monday 2026-03-02 09:00 CST + 10
HEAD_MAIL = "zhou.ling@jgswj.example.gov.cn"


class Hook:
    """A real HTTP server on 127.0.0.1 that keeps what it receives and answers
    ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/govgate/referrals"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """A real SMTP server (aiosmtpd) on a port chosen now, started when asked."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture
def settings(env: dict[str, str], hook: Hook, mailbox: Mailbox) -> Settings:
    """The catalogue fixtures' services, with the webhook and the SMTP server set."""
    return load_settings(env, {
        "referral_webhook_url": hook.url, "smtp_host": "127.0.0.1",
        "smtp_port": mailbox.port, "smtp_from": "govgate@example.gov.cn",
        "smtp_starttls": False, "maintenance_interval_seconds": 0.05,
        "issuer": "https://gw.example.gov.cn"})


def _apply(services: Services, item: str = "plate_number") -> int:
    return parts(services).workflow.apply(WANG, "JG-0001", items=[item, "brand"],
                                        purpose="车辆费用核算", until="2026-12-31").id


def _verify(headers: dict[str, str], body: bytes, key: bytes) -> None:
    """What a receiver does with the signature header."""
    fields = dict(part.split("=", 1) for part in headers["x-govgate-signature"].split(","))
    expected = hmac.new(key, fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["sha256"])


def test_an_overdue_application_is_referred_once_audited_and_announced(
        services: Services, clock: FrozenClock, hook: Hook, mailbox: Mailbox) -> None:
    mailbox.start()
    app_id = _apply(services)
    clock.now = DUE - timedelta(seconds=1)
    assert run_round(parts(services)).referred == [] and not hook.received
    clock.now = DUE
    done = run_round(parts(services))
    assert [a.id for a in done.referred] == [app_id] and len(done.sent) == 2
    assert not done.failed

    (headers, body), = hook.received
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-govgate-event"] == "application_referred"
    _verify(headers, body, secret(services.keys))
    with pytest.raises(AssertionError):
        _verify(headers, body.replace(b"plate_number", b"driver_phone"), secret(services.keys))
    sent = json.loads(body)
    assert sent["overdue"] is True and sent["by"] == "govgate"
    assert sent["to"] == {"role": "dept_head", "department": "jgswj",
                          "department_name": "机关事务管理局"}
    assert sent["resource"] == {"code": "JG-0001", "name": "公务用车基础信息"}
    assert sent["application"]["id"] == app_id
    assert sent["url"] == f"https://gw.example.gov.cn/portal/catalogue/applications/{app_id}"
    assert headers["x-govgate-delivery"] == str(sent["delivery"])

    (sender, recipients, message), = mailbox.messages
    assert sender == "govgate@example.gov.cn" and recipients == [HEAD_MAIL]
    assert message["Subject"] == f"【数据共享】申请 #{app_id} 已超过办理期限，请部门负责人处理"
    assert message["To"] == f"周玲 <{HEAD_MAIL}>"
    text = message.get_content()
    assert text.startswith("周玲：\n")
    for line in (f"共享申请 #{app_id} 已超过办理期限（2026-03-16 09:00，北京时间），"
                 "现提请部门负责人处理。",
                 "资源：JG-0001 公务用车基础信息", "申请部门：市机关事务中心（申请人 wang.wu）",
                 "申请的信息项：plate_number、brand", "用途：车辆费用核算",
                 "办理期限：2026-03-16 09:00（北京时间）",
                 f"请登录平台办理：https://gw.example.gov.cn/portal/catalogue/applications/{app_id}"):
        assert line in text.splitlines(), line

    wf = parts(services).workflow
    app = wf.get(app_id)
    assert app.status == "submitted" and app.head_escalated_at == DUE
    step = app.history[-1]
    assert (step.kind, step.actor, step.detail["overdue"], step.detail["to"]) == (
        "referred", "govgate", True, "dept_head")
    (referred,) = audit_rows(services, "application_referred")
    assert referred["actor_user"] == "govgate" and referred["extra"]["overdue"] is True
    assert referred["resource"] == "JG-0001" and referred["department"] == "nn-jgsw"
    sent_rows = audit_rows(services, "referral_notice_sent")
    assert sorted(r["extra"]["channel"] for r in sent_rows) == ["email", "webhook"]
    assert all(r["outcome"] == "success" for r in sent_rows)

    clock.now = DUE + timedelta(days=1)  # once: the next rounds refer and send nothing
    assert run_round(parts(services)).referred == [] and len(hook.received) == 1
    assert len(mailbox.messages) == 1
    # the head decides; a staff member still cannot
    with pytest.raises(NotAllowed):
        wf.approve(LI, app_id)
    assert wf.approve(ZHOU, app_id, items=["plate_number"]).approved_by == "zhou.ling"


def test_failed_notices_never_block_the_referral_and_are_tried_again(
        services: Services, clock: FrozenClock, hook: Hook, mailbox: Mailbox) -> None:
    hook.status = 500  # and the SMTP server is not running yet
    app_id = _apply(services)
    clock.now = DUE
    done = run_round(parts(services))
    assert [a.id for a in done.referred] == [app_id]  # committed and audited regardless
    assert sorted(done.failed.values())[0].startswith("ConnectionRefusedError")
    assert "HTTP 500" in done.failed.values()
    assert parts(services).workflow.get(app_id).head_escalated_at == DUE
    assert len(audit_rows(services, "application_referred")) == 1
    failed = audit_rows(services, "referral_notice_failed")
    assert sorted(r["extra"]["channel"] for r in failed) == ["email", "webhook"]
    assert {r["outcome"] for r in failed} == {"failure"}

    clock.now += timedelta(minutes=1)
    assert len(run_round(parts(services)).failed) == 2  # still down: tried again, audited once
    assert len(audit_rows(services, "referral_notice_failed")) == 2
    assert len(hook.received) == 2

    hook.status = 200
    mailbox.start()
    clock.now += timedelta(minutes=1)
    done = run_round(parts(services))
    assert len(done.sent) == 2 and not done.failed and done.referred == []
    assert len(mailbox.messages) == 1 and len(hook.received) == 3
    # the receiver sees one delivery id, however often it was tried
    assert len({h["x-govgate-delivery"] for h, _ in hook.received}) == 1
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(notices.c.status, notices.c.attempts)).all()
    assert sorted(rows) == [("sent", 3), ("sent", 3)]

    # one that fails for three days is given up, and that is audited
    hook.status = 503
    second = _apply(services, "mileage_km")
    clock.now = datetime(2026, 3, 31, 1, 0, tzinfo=UTC)  # its limit: 3-30 09:02 CST
    assert second in [a.id for a in run_round(parts(services)).referred]
    clock.now += timedelta(days=3)
    run_round(parts(services))
    (abandoned,) = audit_rows(services, "referral_notice_abandoned")
    assert abandoned["extra"]["channel"] == "webhook" and abandoned["reason"] == "HTTP 503"
    before = len(hook.received)
    run_round(parts(services))
    assert len(hook.received) == before


def test_two_processes_refer_and_send_each_once(services: Services, clock: FrozenClock,
                                                hook: Hook, mailbox: Mailbox) -> None:
    mailbox.start()
    for item in ("plate_number", "mileage_km", "vehicle_type"):
        _apply(services, item)
    clock.now = DUE
    results: list[Any] = []
    workers = [threading.Thread(target=lambda: results.append(run_round(parts(services))))
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(a.id for r in results for a in r.referred) == [1, 2, 3]
    assert sum(len(r.sent) for r in results) == 6
    assert len(hook.received) == 3 and len(mailbox.messages) == 3
    assert len(audit_rows(services, "application_referred")) == 3


def test_a_steward_refers_by_hand_and_every_reason_stays(services: Services,
                                                        clock: FrozenClock, hook: Hook,
                                                        mailbox: Mailbox) -> None:
    mailbox.start()
    wf = parts(services).workflow
    first = _apply(services)
    with pytest.raises(NotAllowed):
        wf.refer(LI, first, "请负责人定")
    with pytest.raises(NotAllowed):
        wf.refer(ZHOU, first, "负责人自己不必提请")
    app = wf.refer(ZHANG, first, "涉及驾驶员信息，请负责人定", ["webhook", "email"])
    assert app.head_escalated_at is not None
    with pytest.raises(WorkflowConflict):
        wf.refer(ZHANG, first, "再提一次")
    done = run_round(parts(services))
    assert done.referred == [] and len(done.sent) == 2
    (_, body), = hook.received
    assert json.loads(body)["reason"] == "涉及驾驶员信息，请负责人定"
    assert json.loads(body)["overdue"] is False
    assert "数据管理员 zhang.san 将共享申请 #1 提请您决定，理由：涉及驾驶员信息，请负责人定" in \
        mailbox.messages[0][2].get_content()

    # rejected with a reason, escalated with another, closed with a third: all kept
    second = _apply(services, "mileage_km")
    wf.reject(ZHOU, second, "用途与信息项不符")
    wf.escalate(WANG, second, "核算确需里程")
    sec = Actor("sec", None, frozenset({"secadmin"}))
    wf.close(sec, second, "协商后不予共享")
    steps = [(e.kind, e.actor, e.reason) for e in wf.get(second).history]
    assert steps == [("submitted", "wang.wu", None),
                     ("rejected", "zhou.ling", "用途与信息项不符"),
                     ("escalated", "wang.wu", "核算确需里程"),
                     ("closed", "sec", "协商后不予共享")]
    assert wf.get(second).history[1].actor_department == "jgswj"


def test_the_maintenance_loop_runs_the_round(services: Services, clock: FrozenClock,
                                             hook: Hook, mailbox: Mailbox) -> None:
    from starlette.testclient import TestClient

    from gateway.app import create_app

    mailbox.start()
    app_id = _apply(services)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080"):
        time.sleep(0.3)  # several rounds: nothing is due
        assert not hook.received
        clock.now = DUE
        _eventually(lambda: len(hook.received) == 1 and len(mailbox.messages) == 1)
    assert parts(services).workflow.get(app_id).head_escalated_at == DUE


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the maintenance loop did not get to it"
        time.sleep(0.02)


def test_cli_runs_a_round_for_cron_and_shows_the_webhook_secret(
        services: Services, clock: FrozenClock, env: dict[str, str], hook: Hook,
        mailbox: Mailbox) -> None:
    runner = CliRunner()
    cli_env = {**env, "GOVGATE_REFERRAL_WEBHOOK_URL": hook.url}

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["catalogue", *args], env=cli_env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result.output

    app_id = _apply(services)  # filed 2026-03-02: the CLI's wall clock is past its limit
    out = invoke("escalate-overdue")
    assert out.splitlines() == [
        f"application {app_id} (JG-0001) passed its time limit (2026-03-16 09:00): "
        "referred to the department head", "sent 1 notice(s)."]  # no SMTP in this env
    assert invoke("escalate-overdue") == "no overdue application to refer.\n"
    (referred,) = audit_rows(services, "application_referred")
    assert referred["actor_user"].startswith("cli:")
    assert len(hook.received) == 1

    key = invoke("webhook-secret").strip()
    assert bytes.fromhex(key) == secret(services.keys) and len(key) == 64
    shown = [r for r in audit_rows(services, "admin_change")
             if r["extra"].get("change") == "referral_webhook_secret_shown"]
    assert len(shown) == 1 and key not in json.dumps(shown[0])


# aiosmtpd itself sets the deprecated attribute on every successful login
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
def test_the_mail_goes_over_starttls_with_a_login_from_the_environment(
        services: Services, clock: FrozenClock, tmp_path: Any, env: dict[str, str]) -> None:
    """A private CA (``smtp_ca_file``), STARTTLS required by the server, AUTH LOGIN with
    the password from GOVGATE_SMTP_PASSWORD; a wrong password fails the notice only."""
    import ssl

    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from gateway.referrals.rounds import EMAIL

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    box = Mailbox()
    logins: list[tuple[str, str]] = []

    def text(value: bytes | str) -> str:
        return value.decode() if isinstance(value, bytes) else value

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and text(data.password) == "mail-Secret-1"
        if isinstance(data, LoginPassword):
            logins.append((text(data.login), text(data.password)))
        return AuthResult(success=ok, handled=False)  # not handled: the server says 535

    controller = Controller(box, hostname="127.0.0.1", port=box.port, tls_context=server_tls,
                            require_starttls=True, auth_required=True,
                            authenticator=authenticate)
    controller.start()
    try:
        def mail_round(password: str) -> Any:
            settings = load_settings({**env, "GOVGATE_SMTP_PASSWORD": password}, {
                "smtp_host": "127.0.0.1", "smtp_port": box.port,
                "smtp_from": "govgate@example.gov.cn", "smtp_ca_file": str(ca_file),
                "smtp_user": "govgate"})
            assert settings.smtp_starttls  # the default
            services.settings = settings
            return run_round(parts(services))

        app_id = _apply(services)
        clock.now = DUE
        done = mail_round("wrong")
        assert [a.id for a in done.referred] == [app_id]
        assert "SMTPAuthenticationError" in next(iter(done.failed.values()))
        clock.now += timedelta(minutes=1)
        done = mail_round("mail-Secret-1")
        assert len(done.sent) == 1 and done.referred == []
        # smtplib tries each mechanism the server offers with the wrong password
        assert logins[-1] == ("govgate", "mail-Secret-1")
        assert set(logins[:-1]) == {("govgate", "wrong")}
        assert box.messages[0][1] == [HEAD_MAIL]
        assert [r["extra"]["channel"] for r in audit_rows(services, "referral_notice_sent")] \
            == [EMAIL]
        assert "mail-Secret-1" not in json.dumps(audit_rows(services), default=str)
    finally:
        controller.stop()
