"""The owner's security notice by e-mail (``security_notice_mail``) to a real SMTP server
(aiosmtpd): changes made through the portal over HTTP and by an administrator's CLI are
mailed once to the person's address, in the platform's language; a server that is down
fails the round (audited) and the next one sends; a person without an address is
skipped (docs/sso.md, "Security events")."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.errors import SettingsError
from gateway.referrals.security_mail import run_round
from gateway.services import Services
from gateway.settings import load_settings
from gateway.tables import users
from tests.catalogue.test_referrals import Mailbox
from tests.conftest import settings_of_its_own
from tests.gateway.test_cli import here
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    audit_events,
    close_services,
    csrf_of,
    make_services,
)
from tests.portal.test_security_events import person, signed_in
from tests.wiring import parts

BASE_URL = "http://localhost:8080"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
             ) -> Iterator[Services]:
    with settings_of_its_own(tmp_path_factory) as settings:
        made = make_services(dataclasses.replace(
            settings, issuer=BASE_URL, smtp_host="127.0.0.1", smtp_port=mailbox.port,
            smtp_from="govgate@example.gov.cn", smtp_starttls=False,
            security_notice_mail=True))
        yield made
        close_services(made)


@pytest.fixture(scope="module")
def app(services: Services) -> Iterator[Any]:
    made = create_app(parts(services))
    with TestClient(made, base_url=BASE_URL):
        yield made


@pytest.fixture(scope="module")
def env(services: Services) -> dict[str, str]:
    return {"GOVGATE_HOME": str(services.settings.home),
            "GOVGATE_DATABASE_URL": services.settings.database_url}


def with_address(services: Services, username: str, address: str) -> None:
    with services.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == username).values(email=address))


def test_changes_are_mailed_once_and_a_server_down_is_tried_again(
        services: Services, app: Any, env: dict[str, str], mailbox: Mailbox) -> None:
    username, secret = person(services)
    with_address(services, username, f"{username}@example.gov.cn")
    client = signed_in(app, username, secret)
    page = client.get("/portal/account").text
    assert client.post("/portal/account/recovery-codes", data={
        "csrf_token": csrf_of(page), "password": DEMO_PASSWORD}).status_code == 200
    assert here(env, "user", "reset-totp", username).returncode == 0

    # the server is down: nothing marked, the failure audited, nothing lost
    assert run_round(services) == (0, 1)
    failed = [e for e in audit_events(services, "security_notice_failed")
              if e["actor_user"] == username]
    assert len(failed) == 1 and "@" not in (failed[0]["reason"] or "").split(":")[0]
    mailbox.start()
    assert run_round(services) == (1, 0)
    assert run_round(services) == (0, 0)  # once
    mails = [m for m in mailbox.messages if m[1] == [f"{username}@example.gov.cn"]]
    assert len(mails) == 1
    _, _, message = mails[0]
    assert message["Subject"] == f"【安全提醒】您的账号 {username} 的登录方式有变更"
    body = message.get_content()
    assert "生成了新的恢复码（您本人的登录会话，来源地址 198.20." in body
    assert "重置了身份验证器（管理员 os:" in body
    assert f"{BASE_URL}/portal/account#security" in body
    assert DEMO_PASSWORD not in body and secret not in body
    sent = [e for e in audit_events(services, "security_notice_sent")
            if e["actor_user"] == username]
    assert len(sent) == 1 and json.loads(sent[0]["extra"])["events"] == 2

    # a new change: only it, in its own message
    assert here(env, "user", "unlock", username).returncode == 0
    assert run_round(services) == (1, 0)
    last = [m for m in mailbox.messages if m[1] == [f"{username}@example.gov.cn"]][-1][2]
    body = last.get_content()
    assert "解锁了账号" in body and "重置了身份验证器" not in body


def test_a_person_without_an_address_is_skipped(services: Services, env: dict[str, str],
                                                mailbox: Mailbox) -> None:
    username, _ = person(services)
    assert here(env, "user", "reset-totp", username).returncode == 0
    before = len(mailbox.messages)
    run_round(services)
    assert len(mailbox.messages) == before
    with_address(services, username, f"{username}@example.gov.cn")
    run_round(services)  # marked when skipped: not mailed later either
    assert len(mailbox.messages) == before


def test_the_setting_needs_an_smtp_server(tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match="security_notice_mail"):
        load_settings({"GOVGATE_HOME": str(tmp_path), "GOVGATE_SECURITY_NOTICE_MAIL": "true"})
