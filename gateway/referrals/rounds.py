"""One referral round: refer every overdue application to its provider department's
head (committed and audited), then deliver every pending notice, each on its own.

A notice that fails stays pending and is tried again next round; one still failing
``GIVE_UP_AFTER`` after its referral is abandoned. Each outcome is audited
(``referral_notice_sent`` success; ``referral_notice_failed`` on the first failure
and ``referral_notice_abandoned``, both failure), without the message or any secret.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from audit import AuditRecord
from catalogue import Actor, Catalogue, CatalogueError, Workflow
from catalogue.model import Application, ApplicationEvent, Notice, Resource
from catalogue.workflow import SYSTEM_ACTOR
from gateway.referrals import mail, webhook
from gateway.referrals.webhook import DeliveryFailed
from gateway.root import Gateway
from gateway.services import Services
from gateway.tables import departments

log = logging.getLogger("govgate.referrals")

WEBHOOK = "webhook"
EMAIL = "email"
GIVE_UP_AFTER = timedelta(days=3)
DEPT_HEAD = "dept_head"


@dataclass
class Round:
    """What one round did: the applications referred, the notices sent, and the
    notices that failed (notice id → why)."""

    referred: list[Application] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


# -- collaborators -------------------------------------------------------------------------

def _resource(catalogue: Catalogue, code: str) -> Resource:
    try:
        return catalogue.get(code)
    except CatalogueError:
        raise DeliveryFailed(f"no resource {code}") from None


def _department_name(services: Services, code: str) -> str:
    with services.engine.connect() as conn:
        name = conn.execute(sa.select(departments.c.name)
                            .where(departments.c.code == code)).scalar()
    return str(name or code)


def _heads(services: Services, department: str) -> list[mail.Recipient]:
    return [mail.Recipient(u.name, u.email) for u in services.org.list_users(department)
            if DEPT_HEAD in u.roles and u.status == "active" and u.email]


def _audit(services: Services, record: AuditRecord) -> None:
    services.audit.append_sync(record)


# -- the round ---------------------------------------------------------------------------

def channels(settings: Any) -> list[str]:
    """The notices a referral writes: one per channel configured."""
    out = []
    if settings.referral_webhook_url:
        out.append(WEBHOOK)
    if settings.smtp_host:
        out.append(EMAIL)
    return out


def run_round(gateway: Gateway, actor: str = SYSTEM_ACTOR) -> Round:
    """Refer what is overdue, then deliver what is pending (blocking; run it in a
    thread from async code)."""
    services = gateway.services
    wf = gateway.workflow
    done = Round(referred=wf.escalate_overdue(Actor(actor, operator=True),
                                              channels(services.settings)))
    for notice in wf.claim_notices():
        try:
            _deliver(services, gateway.catalogue, wf, notice)
        except DeliveryFailed as exc:
            done.failed[notice.id] = str(exc)
            _failed(services, wf, notice, str(exc))
        except Exception as exc:  # a bug or a vanished row: this notice only
            log.exception("referral notice %s", notice.id)
            done.failed[notice.id] = type(exc).__name__
            _failed(services, wf, notice, type(exc).__name__)
        else:
            done.sent.append(notice.id)
    return done


async def maintain(gateway: Gateway) -> None:
    """The round of the gateway's periodic maintenance; a failed round is logged and
    the next one tries again."""
    try:
        await asyncio.to_thread(run_round, gateway)
    except Exception:
        log.exception("referral round failed")


def _deliver(services: Services, catalogue: Catalogue, wf: Workflow, notice: Notice) -> None:
    app, event = wf.notice_subject(notice)
    settings = services.settings
    resource = _resource(catalogue, app.resource)
    provider = resource.provider
    url = f"{settings.issuer.rstrip('/')}/portal/catalogue/applications/{app.id}"
    if notice.channel == WEBHOOK:
        if not settings.referral_webhook_url:
            raise DeliveryFailed("referral_webhook_url is not set")
        body = webhook.encode(_payload(services, app, event, resource, url, notice))
        status = webhook.post(settings.referral_webhook_url, body, keys=services.keys,
                              timestamp=int(services.clock().timestamp()), delivery=notice.id)
        detail: dict[str, Any] = {"status": status}
    elif notice.channel == EMAIL:
        if not settings.smtp_host:
            raise DeliveryFailed("smtp_host is not set")
        heads = _heads(services, provider)
        if not heads:
            raise DeliveryFailed(f"no department head of {provider} with an e-mail address")
        message = mail.compose(app=app, event=event,
                               resource=f"{resource.code} {resource.name}",
                               consumer=_department_name(services, app.consumer),
                               recipients=heads, sender=settings.smtp_from, url=url,
                               lang=settings.lang, now=services.clock())
        refused = mail.send(settings, message)
        detail = {"recipients": len(heads), "refused": refused}
    else:
        raise DeliveryFailed(f"unknown channel {notice.channel!r}")
    wf.notice_done(notice, sent=True)
    _audit(services, _record("referral_notice_sent", "success", app, notice, provider,
                             **detail))


def _failed(services: Services, wf: Workflow, notice: Notice, why: str) -> None:
    now: datetime = services.clock()
    give_up = now - notice.created_at >= GIVE_UP_AFTER
    wf.notice_done(notice, sent=False, error=why, give_up=give_up)
    log.warning("referral notice %s (%s) not delivered: %s", notice.id, notice.channel, why)
    if give_up or notice.attempts == 0:
        event = "referral_notice_abandoned" if give_up else "referral_notice_failed"
        _audit(services, AuditRecord(
            event_type=event, outcome="failure", reason=why[:500],
            extra={"notice": notice.id, "channel": notice.channel,
                   "application": notice.application_id, "attempts": notice.attempts + 1}))


def _record(event: str, outcome: str, app: Application, notice: Notice, provider: str,
            **extra: Any) -> AuditRecord:
    return AuditRecord(event_type=event, outcome=outcome, department=provider,
                       resource=app.resource,
                       extra={"notice": notice.id, "channel": notice.channel,
                              "application": app.id, "attempts": notice.attempts + 1, **extra})


def _payload(services: Services, app: Application, event: ApplicationEvent, resource: Resource,
             url: str, notice: Notice) -> dict[str, Any]:
    return {
        "event": webhook.EVENT,
        "delivery": notice.id,
        "at": event.at.isoformat(),
        "overdue": bool(event.detail.get("overdue")),
        "by": event.actor,
        "reason": event.reason,
        "to": {"role": DEPT_HEAD, "department": resource.provider,
               "department_name": _department_name(services, resource.provider)},
        "resource": {"code": resource.code, "name": resource.name},
        "application": app.to_dict(),
        "url": url,
    }
