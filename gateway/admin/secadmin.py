"""The security administrator's work (安全管理员): policy lines and the decision test,
catalogue grants, signing keys, and the password and session policy.

Scope: a department's security administrator manages the policy lines of their
departments and the grants their departments give or receive; lines for every
department (``*``) and the platform's keys are a province-level administrator's. The
password and session policy comes from the settings (``govgate.toml``,
``GOVGATE_*``): the console shows it and says so; changing it is the operator's."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from catalogue import Actor
from gateway import passwords
from gateway.admin.console import SECADMIN, Console
from gateway.admin.keys import rotate_keys
from gateway.admin.policy_lines import (
    as_entry,
    client_department,
    line_problems,
    new_line,
    test_subject,
)
from gateway.errors import NotFound, ValidationError
from gateway.policy_wiring import systems_reached
from gateway.proxy.admission import AuditDraft, ProxyRequest
from gateway.proxy.path import parse
from gateway.tables import systems
from keys import USES
from policies import Policies, PolicyLine
from policies.engine import METHODS
from texts import Text

# the settings the password and session policy is made of, in the order shown
POLICY_SETTINGS = (
    "lockout_threshold", "lockout_window_seconds", "login_delay_base_seconds",
    "login_delay_max_seconds", "session_idle_timeout", "session_absolute_timeout",
    "access_token_lifetime", "id_token_lifetime", "refresh_token_lifetime",
    "key_rotate_days", "key_prepublish_seconds", "crypto_profile", "signing_alg",
)


class SecAdmin(Console):
    ROLE = SECADMIN

    # -- policy lines ---------------------------------------------------------------

    def _policies(self) -> Policies:
        return Policies(self.services.engine, clock=self.services.clock,
                        on_change=self.trail.collect)

    def _sees(self, line: PolicyLine) -> bool:
        return line.department == "*" or self.scope.covers(line.department)

    def _may_change(self, department: str) -> None:
        if department == "*":
            self.province_only()
        else:
            self.within(department)

    def lines(self, *, department: str = "", subject: str = "") -> list[dict[str, Any]]:
        return [dict(as_entry(line)) for line in self._policies().lines(
            department=department or None, subject=subject or None) if self._sees(line)]

    def add_line(self, subject: str, department: str, obj: str, action: str,
                 effect: str = "allow", ungoverned: str | None = None) -> dict[str, Any]:
        line = new_line(subject, department, obj, action, effect, ungoverned)
        self._may_change(line.department)
        if line.effect == "allow" and line.ungoverned is not None:
            self._may_mark_ungoverned(line)
        problems = line_problems(self.services.engine, line, ungoverned)
        if problems:
            raise ValidationError(Text("admin.bad_line", "bad policy line"), problems=problems)
        stored, created = self._policies().add(line, actor=self.admin.username,
                                               source="console")
        self.gateway.policies.refresh()  # the proxy's index, at once in this process
        after = dict(as_entry(stored))
        self.trail.changed("policy_line_added", {"line_id": stored.id}, None, after,
                           created=created)
        return after

    def _may_mark_ungoverned(self, line: PolicyLine) -> None:
        """The mark opens a system outside its catalogue: the system's department
        decides that, not the department whose people it lets in (a city's security
        administrator does not declare a province department's data ungoverned)."""
        with self.services.engine.connect() as conn:
            owners = {r.code: r.department_code for r in
                      conn.execute(sa.select(systems.c.code, systems.c.department_code))}
        for code in systems_reached(line.object, owners):
            if not self.scope.covers(owners[code]):
                self.refuse(Text(
                    "admin.ungoverned_owner",
                    "only an administrator of {department!r} marks a line onto its system "
                    "{system!r} ungoverned", department=owners[code], system=code),
                    department=owners[code], system=code)

    def remove_line(self, line_id: int) -> dict[str, Any]:
        policies = self._policies()
        line = policies.get(line_id)
        if line is None:
            raise NotFound(Text("admin.unknown_line", "no policy line {id}", id=line_id))
        self._may_change(line.department)
        before = dict(as_entry(line))
        policies.remove(PolicyLine("", "", "", "", id=line_id), actor=self.admin.username)
        self.gateway.policies.refresh()
        self.trail.changed("policy_line_removed", {"line_id": line_id}, before, None)
        return before

    async def test_decision(self, subject: str, department: str, system: str, path: str,
                            method: str, client: str | None = None) -> dict[str, Any]:
        """What the proxy would decide for ``subject`` calling ``method`` on
        ``/s/{system}{path}``: the same admission step's ``decide`` (policy lines, then
        the catalogue), with the rule and the reason. ``client``: a user subject's token
        issued to that client (of another department: decided for both,
        ``gateway.proxy.through``); the client's department must be the admin's too."""
        import asyncio
        from types import SimpleNamespace


        method = method.strip().upper()
        if method not in METHODS - {"*"}:
            raise ValidationError(Text("admin.bad_method", "unknown method {method!r}",
                                       method=method[:20]))
        if not path.startswith("/"):
            path = "/" + path
        target = parse(f"/s/{system}{path}".encode(), b"")
        proxy = self.gateway.proxy
        found = proxy.admitter.systems.get(target.system)
        if found is None:
            raise NotFound(Text("admin.unknown_system", "unknown system {code!r}",
                                code=target.system))

        client = client.strip() if client else None
        if client is not None and not subject.strip().startswith("user:"):
            raise ValidationError(Text("admin.client_needs_user",
                                       "a client goes with a user:NAME subject"))

        def who() -> tuple[dict[str, Any], str | None]:
            with self.services.engine.connect() as conn:
                return (test_subject(conn, subject.strip(), department.strip()),
                        client_department(conn, client) if client else None)

        caller, home = await asyncio.to_thread(who)
        await asyncio.to_thread(functools.partial(self.within, caller["department"],
                                                  target=subject.strip()))
        if client is not None:  # whose system it is, only to an admin of it
            await asyncio.to_thread(functools.partial(self.within, home, target=client))
        principal = SimpleNamespace(
            subject=subject, username=caller["username"],
            client_id=client or caller["client_id"],
            roles=frozenset(caller["roles"]), department=caller["department"], region="",
            scope=frozenset(), via="test", name=None, actor=None,
            client_department=home if client else (
                caller["department"] if caller["client_id"] else None))
        req = ProxyRequest("", method, target, found, principal, None, {},
                           audit=AuditDraft("", None))
        out: dict[str, Any] = {"subjects": list(caller["subjects"]),
                               "department": caller["department"], "object": target.object,
                               "method": method, "owner": found.department}
        try:
            decision = await proxy.admitter.decide(req)
        except ValidationError as exc:  # an ambiguous spelling of a governed route (400)
            return {**out, "allowed": False, "rule": "path", "reason": str(exc.description),
                    "line": None, "resource": req.audit.resource}
        return {**out, "allowed": decision.allowed, "rule": decision.rule,
                "reason": decision.reason,
                "line": dict(as_entry(decision.line)) if decision.line else None,
                "resource": decision.extra.get("resource") or req.audit.resource,
                "items": decision.extra.get("items"), "grants": decision.extra.get("grants")}

    # -- grants ---------------------------------------------------------------------

    def _grant_view(self, grant: Any, providers: dict[str, str]) -> dict[str, Any]:
        return {**grant.to_dict(), "state": grant.state_at(self.services.clock()),
                "provider": providers.get(grant.resource)}

    def _providers(self) -> dict[str, str]:
        return {r.code: r.provider for r in self.gateway.catalogue.resources()}

    def grants(self, *, active_only: bool = False, resource: str = "") -> list[dict[str, Any]]:
        providers = self._providers()
        return [self._grant_view(g, providers)
                for g in self.gateway.workflow.grants(resource=resource or None,
                                                         active_only=active_only)
                if self.scope.covers(g.consumer) or self.scope.covers(providers.get(g.resource))]

    def revoke_grant(self, grant_id: int, reason: str) -> dict[str, Any]:
        wf = self.gateway.workflow
        providers = self._providers()
        grant = wf.get_grant(grant_id)
        if not self.scope.covers(providers.get(grant.resource)):
            self.within(grant.consumer)
        before = self._grant_view(grant, providers)
        a = self.admin
        wf.revoke(Actor(a.username, a.department, a.roles,
                        reach=None if self.scope.province else self.scope.codes),
                  grant_id, reason)
        after = self._grant_view(wf.get_grant(grant_id), providers)
        self.trail.changed("grant_revoked", {"grant": grant_id}, before, after,
                           reason=reason.strip())
        return after

    # -- keys -----------------------------------------------------------------------

    def keys(self) -> list[dict[str, Any]]:
        return [i.as_dict() for i in self.services.keys.list_keys()]

    def rotate_keys(self, uses: list[str], at_once: bool) -> list[dict[str, Any]]:
        self.province_only()
        unknown = [u for u in uses if u not in USES]
        if unknown:
            raise ValidationError(Text("admin.bad_use", "unknown key use {use!r} (one of "
                                       "{known})", use=unknown[0][:20], known=", ".join(USES)))
        uses = uses or list(USES)
        before = [k for k in self.keys() if k["use"] in uses and k["state"] in
                  ("pending", "active")]
        infos = rotate_keys(self.services.keys, self.trail.collect, uses, None, at_once)
        after = [i.as_dict() for i in infos]
        self.trail.changed("keys_rotated", {"uses": uses, "at_once": at_once}, before, after)
        return after

    # -- the password and session policy ---------------------------------------------

    def security_settings(self) -> dict[str, Any]:

        settings = self.services.settings
        return {"password_min_length": passwords.MIN_LENGTH,
                "password_history": passwords.HISTORY,
                **{name: getattr(settings, name) for name in POLICY_SETTINGS},
                "source": "settings"}
