"""A person's security events: what changed about how they sign in, read from the audit
log (the records are already there; nothing is kept but, in each browser, a cookie
saying up to when the person there said "I know about these").

Keycloak and GitHub mail the owner when a second factor is added or removed; govgate's
channel to a person is the portal (and, if set, the mail of
gateway.referrals.security_mail). Each of these, by the person's own session or by an
administrator, is listed on the account page, and the ones newer than this browser's
acknowledgement are shown on the home page at the next sign-in, until acknowledged
there. The acknowledgement is per browser, not per account: someone who took a
password and a code changes the factors, signs in again and acknowledges, and the
owner's own browser is still told; an administrator's reset is seen by the one it was
done to.

    the person's own records (``actor_user``)          an administrator's (``admin_change``
                                                        naming the person in ``extra.user``)
    mfa_enrol success        authenticator set up       user_totp_reset / user_reset_totp
    recovery_codes_issued    new recovery codes         user_webauthn_removed
    webauthn_register        key added                  user_password_reset / ..._reset_password
    webauthn_remove          key removed                user_unlocked / user_unlock
    password_changed         password changed
    mfa_lockout, login_lockout (deny)   codes / account locked by wrong guesses

An audit administrator's are also the break-glass notices (等保2.0: emergency access
alerted): on a break-glass's activation and early end the desk writes one
``auditor_notice`` record per audit administrator whose departments cover it,
naming them in ``extra.user`` (gateway.break_glass.notice), shown and mailed as theirs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit.tables import records
from catalogue.model import CST
from gateway.break_glass.notice import NOTICE_EVENT
from keys.errors import InvalidSignature

#: (event, outcome) of the person's own records → the kind shown
OWN = {("mfa_enrol", "success"): "totp_set",
       ("recovery_codes_issued", "success"): "codes_new",
       ("webauthn_register", "success"): "key_added",
       ("webauthn_remove", "success"): "key_removed",
       ("password_changed", "success"): "password_changed",
       ("mfa_lockout", "deny"): "codes_locked",
       ("login_lockout", "deny"): "account_locked"}
#: an administrator's change (``extra.change``; the console's and the CLI's spellings) → kind
BY_ADMIN = {"user_totp_reset": "totp_reset", "user_reset_totp": "totp_reset",
            "user_webauthn_removed": "keys_removed",
            "user_password_reset": "password_reset", "user_reset_password": "password_reset",
            "user_unlocked": "unlocked", "user_unlock": "unlocked"}
#: the break-glass notice's ``reason`` → kind (``event_type`` NOTICE_EVENT)
NOTICES = {"break_glass_activated": "bg_activated", "break_glass_ended": "bg_ended",
           "break_glass_expired": "bg_expired"}
KINDS = tuple(sorted(set(OWN.values()) | set(BY_ADMIN.values()) | set(NOTICES.values())))
#: how far back the account page lists, and the home page shows what was never seen
LISTED_DAYS = 90
UNSEEN_DAYS = 30


@dataclass(frozen=True)
class SecurityEvent:
    id: int
    ts: int  # UTC milliseconds
    kind: str
    by: str | None  # the administrator (or operator) who did it; None: the person's session
    source_ip: str | None
    sid: str | None  # the session it was done in (the person's own records)
    #: what a break-glass notice names (id, holder, system, ends_at); empty otherwise
    about: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1000, UTC)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def events(engine: Engine, username: str, *, since: datetime, limit: int = 20
           ) -> list[SecurityEvent]:
    """The person's security events since ``since``, newest first."""
    own_events = sorted({e for e, _ in OWN})
    name = json.dumps(username, ensure_ascii=False)
    pattern = ('%"user":' + name.replace("\\", "\\\\").replace("%", "\\%")
               .replace("_", "\\_") + "%")
    cols = _COLUMNS
    start = _ms(since)
    own = (sa.select(*cols).where(records.c.event_type.in_(own_events),
                                  records.c.actor_user == username, records.c.ts >= start)
           .order_by(records.c.ts.desc(), records.c.id.desc()).limit(limit * 4))
    admin = (sa.select(*cols).where(records.c.event_type == "admin_change",
                                    records.c.outcome == "success", records.c.ts >= start,
                                    records.c.extra.like(pattern, escape="\\"))
             .order_by(records.c.ts.desc(), records.c.id.desc()).limit(limit * 4))
    notices = (sa.select(*cols).where(records.c.event_type == NOTICE_EVENT,
                                      records.c.ts >= start,
                                      records.c.extra.like(pattern, escape="\\"))
               .order_by(records.c.ts.desc(), records.c.id.desc()).limit(limit * 4))
    found: list[SecurityEvent] = []
    with engine.connect() as conn:
        for row in [*conn.execute(own), *conn.execute(admin), *conn.execute(notices)]:
            made = classify(row)
            # an administrator's change of another user whose name holds this one
            if made is not None and made[0] == username:
                found.append(made[1])
    found.sort(key=lambda e: (e.ts, e.id), reverse=True)
    return found[:limit]


_COLUMNS = (records.c.id, records.c.ts, records.c.event_type, records.c.outcome,
            records.c.actor_user, records.c.actor_client, records.c.source_ip,
            records.c.reason, records.c.extra)


def classify(row: Any) -> tuple[str, SecurityEvent] | None:
    """Whose security event an audit record is, and which; None: not one."""
    extra = _extra(row.extra)
    if row.event_type == NOTICE_EVENT:
        kind = NOTICES.get(str(row.reason))
        user = extra.get("user")
        if row.outcome != "success" or kind is None or not isinstance(user, str):
            return None
        about = {k: str(extra.get(k) or "") for k in ("break_glass", "holder", "system")}
        try:  # China Standard Time, as the pages and mails show every time
            about["ends_at"] = (datetime.fromisoformat(str(extra.get("ends_at")))
                                .astimezone(CST).strftime("%Y-%m-%d %H:%M"))
        except (TypeError, ValueError):
            about["ends_at"] = "-"
        return user, SecurityEvent(row.id, row.ts, kind, row.actor_user, row.source_ip,
                                   None, about)
    if row.event_type == "admin_change":
        kind = BY_ADMIN.get(str(extra.get("change")))
        user = extra.get("user")
        if row.outcome != "success" or kind is None or not isinstance(user, str):
            return None
        by = row.actor_user or row.actor_client or str(extra.get("actor") or "") or None
        return user, SecurityEvent(row.id, row.ts, kind, by, row.source_ip, None)
    kind = OWN.get((row.event_type, row.outcome))
    if kind is None or not row.actor_user:
        return None
    sid = str(extra["sid"]) if extra.get("sid") else None
    return row.actor_user, SecurityEvent(row.id, row.ts, kind, None, row.source_ip, sid)


def since_for_all(engine: Engine, *, since: datetime, limit: int = 1000
                  ) -> list[tuple[str, SecurityEvent]]:
    """Everyone's security events since ``since``, oldest first (the mail round's
    candidates; it leaves out those it has sent)."""
    events_of = sorted({e for e, _ in OWN} | {"admin_change", NOTICE_EVENT})
    stmt = (sa.select(*_COLUMNS).where(records.c.event_type.in_(events_of),
                                       records.c.ts >= _ms(since))
            .order_by(records.c.ts, records.c.id).limit(limit))
    with engine.connect() as conn:
        return [made for row in conn.execute(stmt) if (made := classify(row)) is not None]


def _extra(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


SEEN_PURPOSE = "idp.security_events_seen"
#: the cookie that carries a browser's acknowledgement (path /portal)
SEEN_COOKIE = "gg_security_seen"


def seen_cookie(keys: Any, user_id: int, upto_ms: int) -> str:
    """The browser's acknowledgement: the person, up to when, under a MAC (another
    person's, or an edited one, counts as none)."""
    body = f"{user_id}.{upto_ms}"
    return f"{body}.{keys.mac(SEEN_PURPOSE, body.encode()).hex()}"


def seen_in_cookie(keys: Any, user_id: int, value: str | None) -> int | None:
    """Up to when (UTC ms) this browser acknowledged ``user_id``'s events, or None."""
    parts = (value or "").split(".")
    if len(parts) != 3 or parts[0] != str(user_id) or not parts[1].isdigit():
        return None
    try:
        keys.check_mac(SEEN_PURPOSE, f"{parts[0]}.{parts[1]}".encode(), bytes.fromhex(parts[2]))
    except (InvalidSignature, ValueError):
        return None
    return int(parts[1])


def unseen(engine: Engine, username: str, *, now: datetime, seen_ms: int | None,
           sid: str | None) -> list[SecurityEvent]:
    """What the home page shows: events after this browser's acknowledgement (at most
    ``UNSEEN_DAYS`` old), except those of the session reading them (the person knows
    what they just did)."""
    since = now - timedelta(days=UNSEEN_DAYS)
    if seen_ms is not None and seen_ms + 1 > _ms(since):
        since = datetime.fromtimestamp((seen_ms + 1) / 1000, UTC)
    return [e for e in events(engine, username, since=since)
            if e.sid is None or e.sid != sid]
