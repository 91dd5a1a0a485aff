"""The owner's security notice by e-mail (``security_notice_mail``, off by default): a
person's new security events (gateway.idp.security_events: a factor added, removed or
reset, new recovery codes, a lock, an administrator's reset or unlock) mailed to their
``users.email`` through the referral mail's SMTP settings, as Keycloak and GitHub do.

Each maintenance round reads the events of the last ``WINDOW`` from the audit records
and mails, per person, those not yet in ``security_mail_sent``, one message per person
per round; the rows are written only after the SMTP server took the message (at least
once: a server that is down, or a crash between the two, means the next round sends
again). One process at a time (``one_at_a_time``), so several workers send once. A
person without an address is skipped and their events marked, not retried. Each message
is audited (``security_notice_sent`` / ``security_notice_failed`` with the SMTP
server's reason); the records name the person, not the address.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from audit import AuditRecord
from catalogue.model import CST
from gateway.errors import NotFound
from gateway.i18n import t
from gateway.idp.security_events import SecurityEvent, since_for_all
from gateway.one_at_a_time import one_at_a_time
from gateway.org import User
from gateway.referrals.mail import send
from gateway.referrals.webhook import DeliveryFailed
from gateway.root import Gateway
from gateway.services import Services
from gateway.tables import security_mail_sent

log = logging.getLogger(__name__)

#: how far back a round looks: a gateway stopped longer than this does not mail
#: what happened before (the portal's notice still shows it)
WINDOW = timedelta(days=1)
#: the mail line of each kind (a dict of constants: every key is written out)
KIND_KEYS = {
    "totp_set": "mail.security_kind_totp_set", "codes_new": "mail.security_kind_codes_new",
    "key_added": "mail.security_kind_key_added",
    "key_removed": "mail.security_kind_key_removed",
    "password_changed": "mail.security_kind_password_changed",
    "codes_locked": "mail.security_kind_codes_locked",
    "account_locked": "mail.security_kind_account_locked",
    "totp_reset": "mail.security_kind_totp_reset",
    "keys_removed": "mail.security_kind_keys_removed",
    "password_reset": "mail.security_kind_password_reset",
    "unlocked": "mail.security_kind_unlocked",
    "bg_activated": "mail.security_kind_bg_activated",
    "bg_ended": "mail.security_kind_bg_ended",
    "bg_expired": "mail.security_kind_bg_expired",
}
#: an audit administrator's break-glass notices (gateway.break_glass.notice)
NOTICE_KINDS = ("bg_activated", "bg_ended", "bg_expired")
LOCKS = ("codes_locked", "account_locked")


def compose(user: User, found: list[SecurityEvent], *, sender: str, url: str, lang: str,
            now: datetime) -> EmailMessage:
    # notices alone (an audit administrator's): not a change of their sign-in
    notices = all(e.kind in NOTICE_KINDS for e in found)
    message = EmailMessage()
    message["Subject"] = (t("mail.bg_notice_subject", lang) if notices else
                          t("mail.security_subject", lang, username=user.username))
    message["From"] = sender
    message["To"] = [Address(display_name=user.name, addr_spec=user.email or "")]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    lines = [t("mail.security_greeting", lang, name=user.name), "",
             t("mail.bg_notice_lead" if notices else "mail.security_lead", lang), ""]
    for e in found:
        by = (t("mail.security_by_admin", lang, admin=e.by) if e.by else
              t("mail.security_by_wrong", lang) if e.kind in LOCKS else
              t("mail.security_by_expiry", lang) if e.kind == "bg_expired" else
              t("mail.security_by_you", lang))
        source = t("mail.security_source", lang, ip=e.source_ip) if e.source_ip else ""
        lines.append(t("mail.security_line", lang,
                       when=e.time.astimezone(CST).strftime("%Y-%m-%d %H:%M"),
                       what=t(KIND_KEYS[e.kind], lang, **e.about), by=by, source=source))
    hint = (t("mail.bg_notice_hint", lang, url=url.replace("/portal/account#security",
                                                         "/portal/break-glass/review"))
            if notices else t("mail.security_hint", lang, url=url))
    lines += ["", hint, "", t("mail.security_footer", lang)]
    message.set_content("\n".join(lines), charset="utf-8")
    return message


def run_round(services: Services) -> tuple[int, int]:
    """Mail what is new; (messages sent, messages failed). Blocking."""
    settings = services.settings
    if not (settings.security_notice_mail and settings.smtp_host):
        return 0, 0
    with one_at_a_time(services.engine, "security_mail") as mine:
        if not mine:
            return 0, 0
        services.settle_audit()  # journal mode: this process's records, now
        now = services.clock()
        candidates = since_for_all(services.engine, since=now - WINDOW)
        with services.engine.connect() as conn:
            ids = [e.id for _, e in candidates]
            sent_ids = set(conn.execute(security_mail_sent.select().with_only_columns(
                security_mail_sent.c.record_id).where(
                security_mail_sent.c.record_id.in_(ids))).scalars()) if ids else set()
        by_user: dict[str, list[SecurityEvent]] = defaultdict(list)
        for username, e in candidates:
            if e.id not in sent_ids:
                by_user[username].append(e)
        sent = failed = 0
        url = f"{settings.issuer.rstrip('/')}/portal/account#security"
        for username, found in by_user.items():
            try:
                user = services.org.get_user(username)
            except NotFound:
                continue  # a name with no account (a lock of an unknown name)
            if user.email:
                message = compose(user, found, sender=settings.smtp_from, url=url,
                                  lang=settings.lang, now=now)
                try:
                    send(settings, message)
                except DeliveryFailed as exc:
                    failed += 1
                    _audit(services, user, "failure", f"not sent: {exc}", len(found))
                    continue
                sent += 1
                _audit(services, user, "success", "mailed to the person's address",
                       len(found))
            _mark(services, user, found, now)
        return sent, failed


def _mark(services: Services, user: User, found: list[SecurityEvent], now: datetime) -> None:
    with services.engine.begin() as conn:
        conn.execute(security_mail_sent.insert(), [
            {"record_id": e.id, "user_id": user.id, "sent_at": now} for e in found])


def _audit(services: Services, user: User, outcome: str, reason: str, count: int) -> None:
    services.audit.append_sync(AuditRecord(
        event_type="security_notice_sent" if outcome == "success" else "security_notice_failed",
        outcome=outcome, actor_user=user.username, department=user.department,
        reason=reason, extra={"events": count}))


async def maintain(gateway: Gateway) -> None:
    """The round of the gateway's periodic maintenance; a failed round is logged and
    the next one tries again."""
    try:
        await asyncio.to_thread(run_round, gateway.services)
    except Exception:
        log.exception("security notice round failed")
