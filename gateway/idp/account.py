"""A person's own account, signed in: what the account page and ``/api/v1/account``
both do, with the same rules.

- **Password**: the current password is asked, the password rule applies (length,
  zxcvbn, not the username, not one of the last five). As Keycloak's "sign out from
  other devices" (checked by default on its password form), the user's other
  sessions end with the change unless the user unticks it; the session making the
  change stays signed in.
- **Proof for a change of the second factor**: re-enrolling the authenticator and a
  new set of recovery codes need the current password or a current TOTP code, so a
  session left open on a shared PC cannot take the account over. A wrong proof counts
  as a failed sign-in (the lockout applies; a lock ends the session).
- **Sessions**: the user's live portal sessions and OAuth grants (refresh-token
  families); one can be ended, or all ("sign out everywhere",
  :func:`gateway.idp.sign_out.revoke_everywhere`, as ``govgate session revoke``).
- **Recent sign-ins** come from the audit log (:func:`audit.query.query_records`).

Every change is audited before it is reported; the records never hold a secret.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from audit import AuditRecord
from audit.query import QueryFilter, query_records
from gateway.errors import NotFound, ValidationError
from gateway.factor_failures import FactorFailures
from gateway.idp import security_events as sec
from gateway.idp import totp
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.store import SessionRow
from gateway.idp.recovery_codes import RecoveryCodes
from gateway.idp.security_events import SecurityEvent
from gateway.idp.sign_out import SignedOut, revoke_everywhere, schedule_notices
from gateway.org import User
from gateway.passwords import verify_password
from gateway.tables import clients, systems
from keys.errors import InvalidBlob
from texts import Text

#: an authenticator set up but not yet confirmed with a code stays open this long
PENDING_SECONDS = 900
#: the audit events that are sign-ins (or attempts), and whether failures count
SIGN_IN_EVENTS = {"login": True, "mfa_verify": True, "mfa_recovery": True,
                  "authorize": False, "cas_login": False,
                  "webauthn_verify": True, "webauthn_login": True}


def invalid(problem: Text, field: str | None = None) -> ValidationError:
    """A refusal of the account page or API: the problem, by its key."""
    return ValidationError(problem, problems=[problem], **({"field": field} if field else {}))


@dataclass(frozen=True)
class Pending:
    """An authenticator being set up: its secret, shown to the user, and the sealed
    token that carries it to the confirmation (a cookie, or the API's ``pending``)."""

    secret: str
    uri: str
    qr_svg: str
    token: str


class Account:
    """The signed-in ``username``'s own account (``sid``: the session acting, if any)."""

    def __init__(self, provider: Provider, username: str, *, sid: str | None = None,
                 source_ip: str | None = None,
                 directory_check: Callable[[str, str], bool] | None = None) -> None:
        services = provider.services
        # a directory user's password, checked by a bind (gateway.directory); raises
        # when the directory cannot answer, so the proof fails closed uncounted
        self.directory_check = directory_check
        self.services = services
        self.username = username
        self.sid = sid
        self.source_ip = source_ip
        self.provider = provider
        self.codes = RecoveryCodes(services.engine, services.keys, services.clock)

    # -- plumbing ----------------------------------------------------------------------

    def user(self) -> User:
        return self.services.org.get_user(self.username)

    def record(self, event_type: str, outcome: str, reason: str, **extra: Any) -> AuditRecord:
        user = self.user()
        if self.sid:
            extra["sid"] = self.sid
        return AuditRecord(event_type=event_type, outcome=outcome, actor_user=self.username,
                           department=user.department, source_ip=self.source_ip,
                           reason=reason, extra=extra)

    async def emit(self, *records: AuditRecord) -> None:
        await self.provider.emit(list(records))

    def summary(self) -> dict[str, Any]:
        user = self.user()
        return {"username": user.username, "name": user.name, "department": user.department,
                "roles": sorted(user.roles), "totp": user.has_totp,
                "recovery_codes_left": self.codes.remaining(user.id) if user.has_totp else 0}

    # -- proof -------------------------------------------------------------------------

    async def prove(self, what: str, *, password: str = "", code: str = "",
                    field: str = "password") -> None:
        """The current password, or a current TOTP code; else a counted failure and
        ValidationError. Enough failures lock the account and end this session."""
        if not code.strip() and not password:
            raise invalid(Text("account.proof_needed",
                               "give your current password or a code from your authenticator"),
                          field)
        user = self.user()
        now = self.services.clock()
        if user.locked_until is not None and user.locked_until > now:
            minutes = max(1, math.ceil((user.locked_until - now).total_seconds() / 60))
            raise invalid(Text("account.locked", "the account is locked; try again in "
                               "{minutes} minutes", minutes=minutes), field)
        ok = False
        failures = FactorFailures(self.services.engine, clock=self.services.clock,
                                  limit=self.services.settings.mfa_failure_limit)
        guess = bool(code.strip() and user.has_totp)
        count = None
        if guess:
            try:
                found = await run_in_threadpool(totp.load, self.services, user)
            except InvalidBlob:  # altered, or sealed under another key: fails closed
                raise invalid(Text(
                    "account.totp_unreadable", "your authenticator cannot be checked (its "
                    "stored secret is damaged or was altered); ask the system administrator "
                    "to reset it"), field) from None
            # counted before the check, as at the sign-in (gateway.factor_failures)
            count = await run_in_threadpool(failures.attempt, user.id)
            if count.locked:
                await self.emit(self.record("account_reauth", "failure", f"{what}: codes "
                                            f"locked ({failures.limit} wrong codes in a row)"))
                raise invalid(Text("account.codes_locked", "too many wrong codes in a row: "
                                   "codes are locked until a system administrator unlocks "
                                   "your account; give your password instead"), field)
            ok = found is not None and await run_in_threadpool(
                totp.check, self.services, self.provider.store, found, code, self.username)
        elif password and user.source == "directory":
            ok = self.directory_check is not None and await run_in_threadpool(
                self.directory_check, self.username, password)
        elif password:
            stored = await run_in_threadpool(self.services.org.password_hash, self.username)
            ok = await run_in_threadpool(verify_password, stored, password)
        if ok:
            self.services.org.record_success(self.username)
            if guess:
                await run_in_threadpool(failures.passed, user.id)
            return
        extra: list[AuditRecord] = []
        if count is not None and count.just_locked:
            extra.append(self.record("mfa_lockout", "deny", f"codes locked: {count.failures} "
                                     "wrong codes in a row; an administrator's unlock "
                                     "lifts it", failures=count.failures))
        await self._failed(self.record("account_reauth", "failure",
                                       f"{what}: wrong password or code"), *extra)
        if code.strip():
            raise invalid(Text("account.wrong_proof", "wrong password or code"), field)
        raise invalid(Text("account.wrong_password", "wrong password"), field)

    async def _failed(self, record: AuditRecord, *more: AuditRecord) -> None:
        """Count a wrong password or code; the one that locks is audited and ends this
        session, as at the sign-in."""
        settings = self.services.settings
        after = self.services.org.record_failure(
            self.username, threshold=settings.lockout_threshold,
            window_seconds=settings.lockout_window_seconds)
        records = [record, *more]
        if after.locked_until is not None and after.locked_until > self.services.clock():
            records.append(self.record("login_lockout", "deny", "too many wrong passwords "
                                       "or codes on the account page"))
            if self.sid:
                self.provider.store.revoke_session(
                    self.sid, ttl_seconds=settings.access_token_lifetime)
        await self.emit(*records)

    # -- password ----------------------------------------------------------------------

    async def change_password(self, current: str, new: str, *, sign_out_others: bool = True
                              ) -> int:
        """Change the password; returns how many other sessions were signed out."""
        if not current:
            raise invalid(Text("account.current_needed", "give your current password"),
                          "current_password")
        await self.prove("password change", password=current, field="current_password")
        await run_in_threadpool(self.services.org.change_password, self.username, new)
        others = [row for row in await run_in_threadpool(
            self.provider.store.list_sessions, self.username)
            if row.sid != self.sid] if sign_out_others else []
        await self.emit(self.record(
            "password_changed", "success", "changed on the account page"
            + ("; the other sessions signed out" if others else ""),
            other_sessions_ended=len(others)))
        for row in others:
            await self.provider.end_session(row, reason="password changed on the account page",
                                            source_ip=self.source_ip)
        return len(others)

    # -- TOTP and recovery codes -------------------------------------------------------

    def _seal_pending(self, secret: str) -> str:
        expires = int(self.services.clock().timestamp()) + PENDING_SECONDS
        blob = self.services.keys.seal(json.dumps({"secret": secret, "exp": expires}).encode(),
                                       f"idp.totp_pending:{self.username}")
        return base64.urlsafe_b64encode(blob).decode()

    def _open_pending(self, token: str) -> str:
        expired = invalid(Text("account.pending_expired",
                               "the authenticator set-up expired or is not yours: start again"),
                          "pending")
        try:
            raw = self.services.keys.open(base64.urlsafe_b64decode(token.encode()),
                                          f"idp.totp_pending:{self.username}")
            data = json.loads(raw)
        except Exception:
            raise expired from None
        if int(data.get("exp", 0)) < self.services.clock().timestamp():
            raise expired
        if totp.is_enrolled(self.services, self.user(), str(data["secret"])):
            raise expired  # confirmed already: spent
        return str(data["secret"])

    async def start_totp(self, *, password: str = "", code: str = "") -> Pending:
        """A new authenticator to set up (the current one, if any, works until the
        new one is confirmed)."""
        await self.prove("authenticator set-up", password=password, code=code)
        secret = pyotp.random_base32()
        uri, svg = totp.provisioning(secret, self.username)
        return Pending(secret, uri, svg, self._seal_pending(secret))

    def pending(self, token: str) -> Pending:
        """The set-up ``token`` carries, shown again (a wrong code, a reload)."""
        secret = self._open_pending(token)
        uri, svg = totp.provisioning(secret, self.username)
        return Pending(secret, uri, svg, token)

    async def confirm_totp(self, token: str, code: str) -> list[str]:
        """Enrol the pending authenticator once ``code`` shows the app has it; returns
        the new recovery codes (the old set, and the old authenticator, stop working)."""
        secret = self._open_pending(token)
        user = self.user()
        ok = await run_in_threadpool(totp.check, self.services, self.provider.store,
                                     pyotp.TOTP(secret), code, self.username)
        if not ok:
            await self._failed(self.record("mfa_enrol", "failure", "wrong or reused code"))
            raise invalid(Text("account.bad_code", "wrong or already used code"), "code")
        await run_in_threadpool(totp.store, self.services, user, secret)
        made = await run_in_threadpool(self.codes.replace, user.id)
        await run_in_threadpool(self.services.record_admin_change, "user_totp_enrolled",
                                {"user": self.username, "actor": self.username})
        await self.emit(
            self.record("mfa_enrol", "success", "authenticator set up on the account page"
                        + ("; the earlier one no longer works" if user.has_totp else "")),
            self.record("recovery_codes_issued", "success", "new recovery codes with the "
                        "authenticator", count=len(made)))
        return made

    async def regenerate_codes(self, *, password: str = "", code: str = "") -> list[str]:
        """A new set of recovery codes; the earlier set stops working."""
        user = self.user()
        if not user.has_totp:
            raise invalid(Text("account.no_totp", "set up an authenticator first"))
        await self.prove("new recovery codes", password=password, code=code)
        made = await run_in_threadpool(self.codes.replace, user.id)
        await self.emit(self.record("recovery_codes_issued", "success",
                                    "regenerated; the earlier set no longer works",
                                    count=len(made)))
        return made

    # -- sessions ----------------------------------------------------------------------

    def _live_sessions(self) -> list[SessionRow]:
        """Not revoked, not past the absolute or the idle timeout."""
        now = self.services.clock()
        idle = self.services.settings.session_idle_timeout
        return [r for r in self.provider.store.list_sessions(self.username)
                if (now - r.last_seen_at).total_seconds() <= idle]

    def sessions(self) -> list[dict[str, Any]]:
        return [{"sid": r.sid, "current": r.sid == self.sid, "stage": r.stage,
                 "created_at": r.created_at, "last_seen_at": r.last_seen_at,
                 "expires_at": r.expires_at, "source_ip": r.source_ip,
                 "user_agent": r.user_agent} for r in self._live_sessions()]

    def grants(self) -> list[dict[str, Any]]:
        """The OAuth grants (refresh-token families) the user's systems hold."""
        out = []
        for row in self.provider.store.user_families(self.username):
            client = self.provider.server.clients.get(row.client_id)
            out.append({"family_id": row.family_id, "client_id": row.client_id,
                        "client_name": client.name if client is not None else row.client_id,
                        "scope": row.scope, "sid": row.sid, "refreshed_at": row.created_at,
                        "expires_at": row.expires_at})
        return out

    async def end_session(self, sid: str) -> None:
        """Sign out one of the user's sessions (NotFound for anything else)."""
        found = [r for r in await run_in_threadpool(self._live_sessions)
                 if secrets.compare_digest(r.sid, sid)]
        if not found:
            raise NotFound(Text("account.no_session", "you have no such session"))
        row = found[0]
        await self.provider.end_session(row, reason="signed out from the account page",
                                        source_ip=self.source_ip)

    async def revoke_grant(self, family_id: str) -> None:
        """Revoke one of the user's OAuth grants (NotFound for anything else)."""
        found = [g for g in await run_in_threadpool(self.provider.store.user_families,
                                                    self.username)
                 if secrets.compare_digest(g.family_id, family_id)]
        if not found:
            raise NotFound(Text("account.no_grant", "you have no such grant"))
        await run_in_threadpool(self.provider.store.revoke_family, found[0].family_id)
        await self.emit(AuditRecord(
            event_type="token_revoked", outcome="success", actor_user=self.username,
            actor_client=found[0].client_id, department=self.user().department,
            source_ip=self.source_ip, reason="grant revoked from the account page",
            extra={"family": found[0].family_id}))

    def consents(self) -> list[dict[str, Any]]:
        """What the user consented to each client (gateway.idp.oauth2.consent)."""
        out = []
        for c in self.provider.consents.of_user(self.username):
            client = self.provider.server.clients.get(c.client_id, include_disabled=True)
            out.append({"client_id": c.client_id, "scope": c.scope, "granted_at": c.granted_at,
                        "client_name": client.name if client is not None else c.client_id})
        return out

    async def revoke_consent(self, client_id: str) -> None:
        """Withdraw a consent (NotFound for a client the user consented nothing to): the
        next sign-in there asks again. Tokens already issued are the grants' to revoke."""
        if not await run_in_threadpool(self.provider.consents.revoke, self.username,
                                       client_id):
            raise NotFound(Text("account.no_consent", "you gave no such consent"))
        await self.emit(AuditRecord(
            event_type="consent_revoked", outcome="success", actor_user=self.username,
            actor_client=client_id, department=self.user().department,
            source_ip=self.source_ip, reason="consent withdrawn on the account page",
            extra={}))

    async def sign_out_everywhere(self) -> SignedOut:
        """Every session (this one too) and every grant of the user ends."""
        out = await run_in_threadpool(revoke_everywhere, self.provider, self.username)
        schedule_notices(self.provider, out)
        await self.emit(self.record("logout", "success", "signed out everywhere from the "
                                    "account page", sessions=len(out.sessions),
                                    families=out.families))
        return out

    # -- security events -------------------------------------------------------------

    def security_events(self, limit: int = 20) -> list[SecurityEvent]:
        """Changes to how the person signs in, the last ``LISTED_DAYS`` days, newest
        first (gateway.idp.security_events)."""
        self.services.settle_audit()  # journal mode: this process's records, now
        since = self.services.clock() - timedelta(days=sec.LISTED_DAYS)
        return sec.events(self.services.engine, self.username, since=since,
                                      limit=limit)

    def unseen_security_events(self, seen_cookie: str | None) -> list[SecurityEvent]:
        """Those this browser has not acknowledged (``seen_cookie``), but this session's
        own."""
        self.services.settle_audit()
        seen = sec.seen_in_cookie(self.services.keys, self.user().id, seen_cookie)
        return sec.unseen(self.services.engine, self.username, now=self.services.clock(),
                          seen_ms=seen, sid=self.sid)

    def security_events_seen(self, upto_ms: int | None) -> str:
        """The cookie value saying this browser has seen the events up to ``upto_ms``
        (the newest one shown; never past now, so what happens meanwhile is shown next
        time)."""
        now_ms = int(self.services.clock().timestamp() * 1000)
        upto = now_ms if upto_ms is None else min(now_ms, upto_ms)
        return sec.seen_cookie(self.services.keys, self.user().id, upto)

    # -- recent sign-ins ---------------------------------------------------------------

    def sign_ins(self, limit: int = 20) -> list[dict[str, Any]]:
        """The user's latest sign-ins and sign-in attempts, newest first: time, address,
        how (password, TOTP, recovery code) or into which system or client."""
        found: list[dict[str, Any]] = []
        for event, failures in SIGN_IN_EVENTS.items():
            page = query_records(self.services.engine, QueryFilter(
                user=self.username, event_type=event, limit=limit,
                outcome=None if failures else "success"))
            found += page.records
        found.sort(key=lambda r: (r["ts"], r["id"]), reverse=True)
        with self.services.engine.connect() as conn:
            client_names = dict(conn.execute(sa.select(clients.c.client_id, clients.c.name)).all())
            system_names = dict(conn.execute(sa.select(systems.c.code, systems.c.name)).all())
        return [{"time": r["time"], "event": r["event_type"], "outcome": r["outcome"],
                 "source_ip": r["source_ip"], "client": r["actor_client"],
                 "client_name": client_names.get(r["actor_client"], r["actor_client"]),
                 "system": r["system"],
                 "system_name": system_names.get(r["system"], r["system"])}
                for r in found[:limit]]
