"""The referral e-mail: to the provider department's heads who have an address, in the
platform's language (Chinese by default), sent through the configured SMTP server
(``smtp_host``, ``smtp_port``, ``smtp_from``, ``smtp_starttls``, ``smtp_ca_file``;
``GOVGATE_SMTP_USER`` and ``GOVGATE_SMTP_PASSWORD`` from the environment)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from catalogue.model import CST, Application, ApplicationEvent
from gateway.i18n import t
from gateway.referrals.webhook import DeliveryFailed
from gateway.settings import Settings

TIMEOUT = 15.0


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str


def _local(at: datetime) -> str:
    return at.astimezone(CST).strftime("%Y-%m-%d %H:%M")


def compose(*, app: Application, event: ApplicationEvent, resource: str, consumer: str,
            recipients: list[Recipient], sender: str, url: str, lang: str,
            now: datetime) -> EmailMessage:
    """The message announcing ``event`` (a referral) of ``app``."""
    overdue = bool(event.detail.get("overdue"))
    message = EmailMessage()
    message["Subject"] = t("mail.referral_subject_overdue" if overdue
                           else "mail.referral_subject", lang, id=app.id)
    message["From"] = sender
    message["To"] = [Address(display_name=r.name, addr_spec=r.email) for r in recipients]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    lead = (t("mail.referral_overdue", lang, id=app.id, due=_local(app.due_at)) if overdue
            else t("mail.referral_referred", lang, id=app.id, by=event.actor,
                   reason=event.reason or ""))
    lines = [
        t("mail.referral_greeting", lang, names="、".join(r.name for r in recipients)
          if lang == "zh" else ", ".join(r.name for r in recipients)),
        "",
        lead,
        "",
        t("mail.referral_details", lang, resource=resource, consumer=consumer,
          applicant=app.applicant, items=("、" if lang == "zh" else ", ").join(app.items),
          purpose=app.purpose, until=app.until.isoformat(), created=_local(app.created_at),
          due=_local(app.due_at)),
        "",
        t("mail.referral_link", lang, url=url),
        "",
        t("mail.referral_footer", lang),
    ]
    message.set_content("\n".join(lines), charset="utf-8")
    return message


def send(settings: Settings, message: EmailMessage, timeout: float = TIMEOUT) -> list[str]:
    """Hand ``message`` to the SMTP server; DeliveryFailed with the reason when it took
    it for no one. Returns the addresses it refused while taking it for the others (a
    retry would send the others a second copy)."""
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                context = ssl.create_default_context(cafile=settings.smtp_ca_file or None)
                smtp.starttls(context=context)
            if settings.smtp_user and settings.smtp_password is not None:
                smtp.login(settings.smtp_user, settings.smtp_password.get())
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
    return sorted(refused)
