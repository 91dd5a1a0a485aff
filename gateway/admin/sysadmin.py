"""The system administrator's work (系统管理员): users, departments, systems and clients
of the departments in their scope.

Accounts that hold an admin role are the operator's (``govgate user ...``, the state
file): the console lists them but neither creates one nor resets, disables or
enables one, or a system administrator could make a security administrator they sign
in as and undo 三员分立. Unlocking one (after failed sign-ins) is allowed."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from gateway.admin import clients as client_ops
from gateway.admin import systems as system_ops
from gateway.admin import upstream_endpoints
from gateway.admin.console import SYSADMIN, Console
from gateway.admin.trail import Admin
from gateway.errors import ValidationError
from gateway.factor_failures import FactorCount, FactorFailures
from gateway.idp.cas import services as cas_services
from gateway.idp.sign_out import SignedOut, revoke_everywhere
from gateway.org import ADMIN_ROLES, BUILTIN_ROLES, User
from gateway.passwords import generate_password
from gateway.root import Gateway
from texts import Text

USER_STATES = ("active", "locked", "disabled")
# the roles the console gives: business roles only (module docstring)
GRANTABLE_ROLES = tuple(sorted(BUILTIN_ROLES - ADMIN_ROLES))
USER_ACTIONS = ("disable", "enable", "unlock", "reset-password", "reset-totp")
CLIENT_ACTIONS = ("disable", "enable", "rotate-secret")

ADMIN_ACCOUNTS = Text("admin.admin_accounts",
                      "accounts with an admin role are managed by the operator "
                      "(govgate user ...), not from a console")


def user_state(user: User, now: datetime) -> str:
    if user.status != "active":
        return "disabled"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    return "active"


def user_view(user: User, now: datetime, factors: FactorCount | None = None
              ) -> dict[str, Any]:
    """``factors``: the account's wrong second-factor codes in a row
    (``gateway.factor_failures``; None: none since the last passed factor)."""
    state = user_state(user, now)
    return {"username": user.username, "name": user.name, "department": user.department,
            "roles": sorted(user.roles), "status": user.status, "state": state,
            "locked_until": user.locked_until.isoformat() if state == "locked"
            and user.locked_until else None,
            "has_totp": user.has_totp, "must_change": user.must_change,
            "admin": user.is_admin,
            # the codes' lock outlives the account lock: only an unlock or a TOTP reset
            # lifts it, so the list must show it (and how near the limit a count is)
            "factor_locked": bool(factors and factors.locked),
            "factor_failures": factors.failures if factors else 0}


def system_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {"code": entry["code"], "name": entry["name"], "department": entry["department"],
            "upstream": entry["upstream"], "portal_path": entry.get("portal_path", "/"),
            "identity_headers": entry.get("identity_headers", "assertion"),
            "remote_user": bool(entry.get("remote_user")), "tls": "tls" in entry,
            "cas": bool(entry.get("cas_services")),
            "launch_url": entry.get("launch_url")}


def _sign_on_record(view: dict[str, Any]) -> dict[str, Any]:
    """A sign-on as its audit record keeps it: the metadata by its SHA-256 (the XML is
    the SP's public document, but tens of kilobytes in every record)."""
    saml = view["saml"]
    return {"cas_services": view["cas_services"], "saml": None if saml is None else {
        "entity_id": saml["entity_id"], "name_id": saml["name_id"],
        "release_username": saml["release_username"],
        "encryption": saml["encryption"],
        "metadata_sha256": hashlib.sha256(saml["metadata"].encode()).hexdigest()}}


def client_view(entry: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in entry.items() if k != "jwks"}
    view.setdefault("redirect_uris", [])
    view.setdefault("post_logout_redirect_uris", [])
    view["has_jwks"] = "jwks" in entry
    view["require_pkce"] = bool(entry.get("require_pkce"))
    view["dpop_bound"] = bool(entry.get("dpop_bound"))
    view["lenient_assertion_audience"] = bool(entry.get("lenient_assertion_audience"))
    view["static_credential"] = entry.get("static_credential") or "off"
    view["id_token_signed_response_alg"] = entry.get("id_token_signed_response_alg")
    view["consent_required"] = entry.get("consent_required")
    return view


class SysAdmin(Console):
    ROLE = SYSADMIN

    def __init__(self, gateway: Gateway, admin: Admin, what: str) -> None:
        super().__init__(gateway, admin, what)
        #: the users signed out by an action: the caller tells their relying parties
        #: (back-channel and CAS single logout) from its event loop
        self.signed_out: list[SignedOut] = []

    def _now(self) -> datetime:
        return self.services.clock()

    def _factors(self, found: list[User]) -> dict[int, FactorCount]:
        services = self.services
        return FactorFailures(services.engine, limit=services.settings.mfa_failure_limit,
                              clock=services.clock).counts([u.id for u in found])

    def _view(self, user: User) -> dict[str, Any]:
        return user_view(user, self._now(), self._factors([user]).get(user.id))

    # -- users ----------------------------------------------------------------------

    def users(self, *, department: str = "", state: str = "", role: str = "",
              q: str = "") -> list[dict[str, Any]]:
        now = self._now()
        q = q.strip().casefold()
        listed = self.org().list_users()
        factors = self._factors(listed)
        out = []
        for user in listed:
            if not self.scope.covers(user.department):
                continue
            if department and user.department != department:
                continue
            if role and role not in user.roles:
                continue
            if state and user_state(user, now) != state:
                continue
            if q and q not in f"{user.username} {user.name}".casefold():
                continue
            out.append(user_view(user, now, factors.get(user.id)))
        return out

    def _user(self, username: str, *, admin_ok: bool = False) -> User:
        user = self.org().get_user(username)
        self.within(user.department, target=username)
        if user.is_admin and not admin_ok:
            self.refuse(ADMIN_ACCOUNTS, user=username)
        return user

    def create_user(self, username: str, name: str, department: str, roles: list[str]
                    ) -> tuple[dict[str, Any], str]:
        """The new account and its first password (shown once; changed at first sign-in)."""
        roles = sorted(set(roles)) or ["staff"]
        if set(roles) & ADMIN_ROLES:
            self.refuse(ADMIN_ACCOUNTS, user=username, roles=roles)
        self.within(department)
        password = generate_password()
        org = self.org()
        org.add_user(username, name, department, roles, password, must_change=True)
        after = self._view(org.get_user(username))
        self.trail.changed("user_created", {"user": username}, None, after)
        return after, password

    def user_action(self, username: str, action: str) -> tuple[dict[str, Any], str | None]:
        """One of ``USER_ACTIONS``; returns the account after it, and the temporary
        password of a reset (shown once)."""
        user = self._user(username, admin_ok=action == "unlock")
        org = self.org()
        before = self._view(user)
        password = None
        if action == "disable":
            org.disable_user(username)
            out = revoke_everywhere(self.gateway.provider, username)
            self.trail.collect("sessions_revoked", {"user": username,
                                                   "sessions": len(out.sessions),
                                                   "families": out.families})
            self.signed_out.append(out)
        elif action == "enable":
            org.enable_user(username)
        elif action == "unlock":
            org.unlock_user(username)
        elif action == "reset-password":
            password = org.reset_password(username)
        elif action == "reset-totp":
            org.reset_totp(username)
        else:
            raise ValueError(action)
        after = self._view(org.get_user(username))
        self.trail.changed(f"user_{action.replace('-', '_')}", {"user": username}, before,
                           after)
        return after, password

    # -- departments ----------------------------------------------------------------

    def departments(self) -> list[dict[str, Any]]:
        """The departments in scope, each after its parent (``depth`` below the first
        one shown)."""
        rows = [d for d in self.org().list_departments() if self.scope.covers(d["code"])]
        codes = {d["code"] for d in rows}
        children: dict[str | None, list[dict[str, Any]]] = {}
        for d in rows:
            parent = d["parent_code"] if d["parent_code"] in codes else None
            children.setdefault(parent, []).append(d)
        out: list[dict[str, Any]] = []

        def walk(parent: str | None, depth: int) -> None:
            for d in sorted(children.get(parent, []), key=lambda d: (d["region_code"],
                                                                    d["code"])):
                out.append({"code": d["code"], "name": d["name"], "region": d["region_code"],
                            "parent": d["parent_code"], "depth": depth})
                walk(d["code"], depth + 1)

        walk(None, 0)
        return out

    def _department(self, code: str) -> dict[str, Any]:
        d = self.org().get_department(code)
        return {"code": d["code"], "name": d["name"], "region": d["region_code"],
                "parent": d["parent_code"]}

    def create_department(self, code: str, name: str, parent: str | None,
                          region: str | None) -> dict[str, Any]:
        org = self.org()
        if parent:
            self.within(parent)
            region = org.department_region(parent)
        else:
            self.province_only()
            if not region:
                raise ValidationError(Text("admin.top_needs_region",
                                           "a department at the top needs its region"))
        org.add_department(code, name, region, parent or None)
        after = self._department(code)
        self.trail.changed("department_created", {"department_code": code}, None, after)
        return after

    def rename_department(self, code: str, name: str) -> dict[str, Any]:
        self.within(code)
        before = self._department(code)
        self.org().rename_department(code, name)
        after = self._department(code)
        self.trail.changed("department_renamed", {"department_code": code}, before, after)
        return after

    def move_department(self, code: str, parent: str | None) -> dict[str, Any]:
        self.within(code)
        if parent:
            self.within(parent)
        else:
            self.province_only()
        before = self._department(code)
        self.org().move_department(code, parent or None)
        after = self._department(code)
        self.trail.changed("department_moved", {"department_code": code}, before, after)
        return after

    # -- systems --------------------------------------------------------------------

    def systems(self) -> list[dict[str, Any]]:
        return [system_view(e) for e in system_ops.system_entries(self.services.engine)
                if self.scope.covers(e["department"])]

    def system(self, code: str) -> dict[str, Any]:
        entry = system_ops.get_system(self.services.engine, code)
        self.within(entry["department"], target=code)
        return system_view(entry)

    def create_system(self, fields: dict[str, Any]) -> dict[str, Any]:
        self.within(fields.get("department"))
        self._upstream_of_own(str(fields.get("code", "")), fields.get("upstream"))
        after = system_view(system_ops.add_system(self.gateway, fields,
                                                  self.trail.collect))
        self.trail.changed("system_created", {"system": after["code"]}, None, after)
        return after

    def update_system(self, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        before = self.system(code)
        if "department" in changes:
            self.within(changes["department"])
        if changes.get("upstream", before["upstream"]) != before["upstream"]:
            # the console's form sends it unchanged: the operator's own setting stays
            self._upstream_of_own(code, changes["upstream"])
        after = system_view(system_ops.update_system(self.gateway, code, changes,
                                                     self.trail.collect))
        self.trail.changed("system_changed", {"system": code}, before, after)
        return after

    def _upstream_of_own(self, code: str, upstream: object) -> None:
        """Refuse an upstream that connects where a system of a department outside the
        admin's scope connects (``gateway.admin.upstream_endpoints``): the proxy would
        carry this department's callers there under this department's policy lines.
        The refusal names neither that system nor its department."""
        if not isinstance(upstream, str):
            return  # the state file's checks say what is wrong with it
        theirs = [e["upstream"] for e in system_ops.system_entries(self.services.engine)
                  if e["code"] != code and not self.scope.covers(e["department"])
                  and isinstance(e.get("upstream"), str)]
        if theirs and upstream_endpoints.shared(upstream, theirs) is not None:
            self.refuse(Text(
                "admin.upstream_elsewhere",
                "upstream {upstream!r} connects where a system of another department "
                "connects: a system's address is its own department's",
                upstream=upstream[:200]), system=code)

    def _cas_services_of_own(self, code: str, patterns: list[str]) -> None:
        """Refuse a CAS service address that overlaps one of a system of a department
        outside the admin's scope: ``/cas/login`` gives the ticket to the longest
        pattern's system, whose release list and name go with it, so a longer pattern
        under another department's took its sign-ins. Naming neither."""
        theirs = [p for e in system_ops.system_entries(self.services.engine)
                  if e["code"] != code and not self.scope.covers(e["department"])
                  for p in e.get("cas_services") or []]
        for pattern in patterns:
            if any(cas_services.overlap(pattern, str(p)) for p in theirs):
                self.refuse(Text(
                    "admin.cas_service_elsewhere",
                    "CAS service address {pattern!r} overlaps one of a system of another "
                    "department (the same, or one inside the other): the longest "
                    "pattern's system gets the tickets", pattern=pattern[:200]),
                    system=code)

    def release(self, code: str) -> dict[str, Any]:
        """What the system's CAS services and SAML SP receive (``cas``/``saml``: None
        where it speaks neither)."""
        entry = system_ops.get_system(self.services.engine, code)
        self.within(entry["department"], target=code)
        return system_ops.release_of(entry)

    def set_release(self, code: str, lists: dict[str, Any]) -> dict[str, Any]:
        before = self.release(code)
        after = system_ops.set_release(self.gateway, code, lists, self.trail.collect)
        self.trail.changed("system_release_changed", {"system": code},
                           {k: before[k] for k in system_ops.PROTOCOLS},
                           {k: after[k] for k in system_ops.PROTOCOLS})
        return after

    def sign_on(self, code: str) -> dict[str, Any]:
        """The system's CAS service addresses and SAML SP (entity ID, NameID format,
        metadata)."""
        entry = system_ops.get_system(self.services.engine, code)
        self.within(entry["department"], target=code)
        return system_ops.sign_on_of(entry)

    def set_sign_on(self, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        before = self.sign_on(code)
        # the whole list and the addresses added one by one alike (the latter stripped,
        # as ``system_ops.set_sign_on`` stores them)
        for key in ("cas_services", "cas_services_add"):
            listed = changes.get(key)
            if isinstance(listed, list):
                self._cas_services_of_own(code, [
                    p.strip() for p in listed if isinstance(p, str)
                    and p.strip() not in before["cas_services"]])
        after = system_ops.set_sign_on(self.gateway, code, changes, self.trail.collect)
        self.trail.changed("system_sign_on_changed", {"system": code},
                           _sign_on_record(before), _sign_on_record(after))
        return after

    # -- clients --------------------------------------------------------------------

    def clients(self) -> list[dict[str, Any]]:
        return [client_view(e) for e in client_ops.client_entries(self.services.engine)
                if self.scope.covers(e["department"])]

    def client(self, client_id: str) -> dict[str, Any]:
        entry = client_ops.get_client(self.services.engine, client_id)
        self.within(entry["department"], target=client_id)
        return client_view(entry)

    def create_client(self, entry: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The new client and its secret (shown once; None for a public client or
        private_key_jwt)."""
        self.within(entry.get("department"))
        secret = client_ops.add_client(self.gateway, entry, self.trail.collect)
        after = client_view(client_ops.get_client(self.services.engine,
                                                  str(entry["client_id"])))
        self.trail.changed("client_created", {"client": after["client_id"]}, None, after)
        return after, secret

    def update_client(self, client_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        before = self.client(client_id)
        after = client_view(client_ops.update_client(self.gateway, client_id, changes,
                                                     self.trail.collect))
        self.trail.changed("client_changed", {"client": client_id}, before, after)
        return after

    def new_api_key(self, client_id: str) -> tuple[dict[str, Any], str]:
        """A new API key for ``client_id`` at /s/ (``X-Api-Key``; static_credential
        becomes api_key, the key before stops working): the client after it and the
        key, shown once."""
        before = self.client(client_id)
        key = client_ops.set_static_credential(self.gateway, client_id, "api_key",
                                               self.trail.collect)
        assert key is not None
        after = self.client(client_id)
        self.trail.changed("client_api_key", {"client": client_id}, before, after)
        return after, key

    def client_action(self, client_id: str, action: str
                      ) -> tuple[dict[str, Any], str | None]:
        """One of ``CLIENT_ACTIONS``; returns the client after it and, for a new
        secret, the secret (shown once)."""
        before = self.client(client_id)
        secret = None
        if action == "disable":
            client_ops.disable_client(self.gateway, client_id, self.trail.collect)
        elif action == "enable":
            client_ops.enable_client(self.gateway, client_id, self.trail.collect)
        elif action == "rotate-secret":
            secret = client_ops.rotate_secret(self.gateway, client_id, self.trail.collect)
        else:
            raise ValueError(action)
        after = self.client(client_id)
        self.trail.changed(f"client_{action.replace('-', '_')}", {"client": client_id},
                           before, after)
        return after, secret
