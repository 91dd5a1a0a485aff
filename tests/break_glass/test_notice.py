"""The audit administrators are told when a break-glass activates and when it ends early
(等保2.0: emergency access alerted), not only by the review queue: a security event on
their portal home page, as the owner's security events are shown, and a mail to a real
SMTP server (aiosmtpd) where ``security_notice_mail`` is set. Only those whose
departments cover it (the system's or the holder's, as for the review)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from audit.errors import AuditWriteError
from gateway.break_glass.active import ActiveBreakGlass
from gateway.break_glass.desk import BreakGlassDesk
from gateway.referrals.security_mail import run_round
from gateway.tables import users
from tests.break_glass.conftest import World
from tests.break_glass.test_portal import as_session
from tests.catalogue.test_referrals import Mailbox

PASSWORD = "Break-Glass-Test-Passw0rd!"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.start()
    yield box
    box.stop()


async def test_auditors_are_told_of_an_activation_and_an_early_end(
        world: World, mailbox: Mailbox) -> None:
    """Failed on the base: aud.a's home page showed no notice, no mail was sent."""
    org = world.services.org
    # a city's audit administrator: covers nn-jgsw (wang.wu's) only, not czt or jgswj
    org.add_user("aud.nn", "审计员南宁", "nn-jgsw", ["auditor"], PASSWORD, must_change=False)
    with world.services.engine.begin() as conn:
        for who in ("aud.a", "aud.nn"):
            conn.execute(users.update().where(users.c.username == who)
                         .values(email=f"{who}@example.gov.cn"))

    as_session(world, "aud.a")
    assert 'id="security-notice"' not in (await world.http.get("/portal")).text
    bg = await world.active()  # wang.wu's, on czt's echo, through the API
    home = (await world.http.get("/portal")).text
    assert 'id="security-notice"' in home
    assert (f"紧急授权 {bg['id']} 已启用：wang.wu 可访问系统 echo" in home
            and "管理员 sec.b" in home)
    # another security administrator's own, on czt's system: not the city's to know
    other = await world.request(who="sec.b")
    for who in ("sec.a", "sec.c"):
        assert (await world.approve(other["id"], who)).status_code == 200
    r = await world.call("POST", f"/api/v1/break-glass/{bg['id']}/end", "sec.c",
                         json={"reason": "处置完毕"})
    assert r.status_code == 200, r.text
    english = (await world.http.get("/portal?lang=en")).text
    assert f"break-glass {bg['id']} ended early: wang.wu" in english
    assert f"break-glass {other['id']} activated: sec.b" in english
    # a refused request was never an access: no notice
    refused = await world.request(who="sec.a", system="vehicles")
    assert (await world.call("POST", f"/api/v1/break-glass/{refused['id']}/end", "sec.b",
                             json={"reason": "不予批准"})).status_code == 200
    assert refused["id"] not in (await world.http.get("/portal")).text

    as_session(world, "aud.nn")
    city = (await world.http.get("/portal")).text
    assert bg["id"] in city and other["id"] not in city
    listed_there = (await world.http.get("/portal/account")).text.split('id="security-table"')
    assert len(listed_there) == 2 and "bg_ended" in listed_there[1]

    notices = world.records("auditor_notice")
    assert sorted((x["reason"], x["extra"]["user"], x["extra"]["break_glass"])
                  for x in notices) == sorted([
        ("break_glass_activated", "aud.a", bg["id"]),
        ("break_glass_activated", "aud.nn", bg["id"]),
        ("break_glass_activated", "aud.a", other["id"]),
        ("break_glass_ended", "aud.a", bg["id"]),
        ("break_glass_ended", "aud.nn", bg["id"]),
        # the platform's audit administrator (govgate init's, province level)
        ("break_glass_activated", "auditor", bg["id"]),
        ("break_glass_activated", "auditor", other["id"]),
        ("break_glass_ended", "auditor", bg["id"])])
    # in the review of each, among its records
    queue = (await world.call("GET", "/api/v1/break-glass/review", "aud.a")).json()["queue"]
    listed = next(q for q in queue if q["id"] == bg["id"])
    assert {r["event_type"] for r in listed["records"]} >= {"auditor_notice"}

    mailing = dataclasses.replace(world.services, settings=dataclasses.replace(
        world.services.settings, smtp_host="127.0.0.1", smtp_port=mailbox.port,
        smtp_from="govgate@example.gov.cn", smtp_starttls=False,
        security_notice_mail=True))
    assert run_round(mailing) == (2, 0)  # "auditor" has no address: skipped
    assert run_round(mailing) == (0, 0)  # once
    to = {m[1][0]: m[2] for m in mailbox.messages}
    assert set(to) == {"aud.a@example.gov.cn", "aud.nn@example.gov.cn"}
    assert to["aud.a@example.gov.cn"]["Subject"] == "【安全提醒】紧急授权启用或终止，请审计复核"
    body = to["aud.a@example.gov.cn"].get_content()
    assert f"紧急授权 {bg['id']} 已启用：wang.wu 可访问系统 echo" in body
    assert f"紧急授权 {bg['id']} 已提前终止" in body and other["id"] in body
    assert "/portal/break-glass/review" in body
    assert other["id"] not in to["aud.nn@example.gov.cn"].get_content()
    with world.services.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from security_mail_sent")
                            ).scalar_one() == 8


def _desk(world: World) -> BreakGlassDesk:
    """A desk of its own over the world's database: another gateway process's."""
    return BreakGlassDesk(world.services, ActiveBreakGlass(world.services.engine,
                                                           world.clock))


def _told(world: World, step: str, bg_id: str) -> list[str]:
    return sorted(x["extra"]["user"] for x in world.records("auditor_notice")
                  if x["reason"] == step and x["extra"]["break_glass"] == bg_id)


async def test_a_notice_whose_write_fails_is_written_by_the_round(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The activation's notices failing to write (the audit log down a moment) were
    logged and lost: the audit administrators never learnt of the activation. Now the
    notice stays due and the maintenance round writes it, once (failed on the base:
    no ``settle_notices``, and no notice ever written)."""
    audit: Any = world.services.audit
    append_sync = audit.append_sync
    down = [True]

    def notices_down(record: Any) -> Any:
        if record.event_type == "auditor_notice" and down[0]:
            raise AuditWriteError("audit log unavailable")
        return append_sync(record)

    monkeypatch.setattr(audit, "append_sync", notices_down)
    bg = await world.active()  # the activation stands: its own record is written
    assert _told(world, "break_glass_activated", bg["id"]) == []
    one, two = _desk(world), _desk(world)
    assert one.settle_notices() == (0, 2)  # still down: still due
    down[0] = False
    assert one.settle_notices() == (2, 0)
    assert two.settle_notices() == (0, 0) and one.settle_notices() == (0, 0)
    assert _told(world, "break_glass_activated", bg["id"]) == ["aud.a", "auditor"]
    as_session(world, "aud.a")
    assert f"紧急授权 {bg['id']} 已启用" in (await world.http.get("/portal")).text


async def test_an_expiry_is_told_once_by_the_round(world: World) -> None:
    """A break-glass that expires by itself told nobody (only an activation and an early
    end did). Now the maintenance round tells the audit administrators covering it,
    exactly once of any number of rounds and processes (the step claimed in the
    database); an early end is not told again as an expiry (failed on the base)."""
    expiring = await world.active(minutes=30)
    ended = await world.active(system="vehicles")
    r = await world.call("POST", f"/api/v1/break-glass/{ended['id']}/end", "sec.c",
                         json={"reason": "处置完毕"})
    assert r.status_code == 200
    one, two = _desk(world), _desk(world)
    assert one.settle_notices() == (0, 0)  # nothing over yet
    world.clock.advance(31 * 60)
    with ThreadPoolExecutor(2) as pool:  # two processes' rounds at once
        done = list(pool.map(lambda d: d.settle_notices(), (one, two)))
    assert sum(written for written, _ in done) == 2, done
    assert one.settle_notices() == (0, 0) and two.settle_notices() == (0, 0)
    assert _told(world, "break_glass_expired", expiring["id"]) == ["aud.a", "auditor"]
    assert _told(world, "break_glass_expired", ended["id"]) == []
    assert _told(world, "break_glass_ended", ended["id"]) == ["aud.a", "auditor"]
    notice = next(x for x in world.records("auditor_notice")
                  if x["reason"] == "break_glass_expired")
    assert notice["actor_user"] is None  # nobody took the step
    as_session(world, "aud.a")
    home = (await world.http.get("/portal")).text
    assert f"紧急授权 {expiring['id']} 已到期：wang.wu 对系统 echo 的访问" in home
    item = re.search(r'<li data-kind="bg_expired">(.*?)</li>', home, re.S)
    assert item and "到期自动结束" in item.group(1) and "您本人" not in item.group(1)
    account = (await world.http.get("/portal/account?lang=en")).text
    assert f"break-glass {expiring['id']} expired" in account
    assert "its end as granted" in account
