"""The security administrator's pages (安全管理员):

    GET  /portal/admin/policies                  the lines, the new-line form, and the
                                                 decision test (its answer with ?subject=...;
                                                 &client=: through that client's token)
    POST /portal/admin/policies                  add a line
    POST /portal/admin/policies/{id}/remove
    GET  /portal/admin/grants                    catalogue grants (active only by default)
    POST /portal/admin/grants/{id}/revoke        with a reason
    GET  /portal/admin/keys                      signing keys with state and dates
    POST /portal/admin/keys/rotate               rotate now (province level)
    GET  /portal/admin/security                  the password and session policy (the
                                                 settings: read-only here)

The operations and their rules: ``gateway.admin.secadmin``."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.admin.secadmin import POLICY_SETTINGS, SecAdmin
from gateway.errors import NotFound, ValidationError
from gateway.idp.passkeys.ceremonies import passkeys_usable
from gateway.tables import clients, departments, systems, users
from gateway.web.portal.admin_pages import Form, done, get, post, say, show, t_of
from keys import USES
from policies.engine import METHODS
from texts import Text

TEST_FIELDS = ("subject", "department", "system", "path", "method", "client")


def _field(form: Form, key: str, limit: int = 1000) -> str:
    return str(form.get(key) or "").strip()[:limit]


def _number(request: Request) -> int:
    value = request.path_params["id"]
    if not value.isdigit() or len(value) > 18:
        raise NotFound(Text("portal.no_page", "no page {path}", path=request.url.path))
    return int(value)


async def policies_page(request: Request, console: SecAdmin, form: Form = None, *,
                        status: int = 200, errors: list[str] | None = None,
                        typed: dict[str, str] | None = None) -> Response:
    q = request.query_params
    lines = await run_in_threadpool(console.lines)
    test = {k: q.get(k, "").strip()[:200] for k in TEST_FIELDS}
    decision, test_errors = None, []
    if test["subject"] and test["system"]:
        try:
            decision = await console.test_decision(
                test["subject"], test["department"], test["system"], test["path"] or "/",
                test["method"] or "GET", client=test["client"] or None)
        except ValidationError as exc:
            t = t_of(request)
            test_errors = [say(t, p) for p in exc.problems or [exc.description]]
        except NotFound as exc:
            test_errors = [say(t_of(request), exc.description)]
    systems = await run_in_threadpool(_systems, console)
    subjects = [line["subject"] for line in lines]
    if decision is not None:
        subjects += [*decision["subjects"],
                     *([decision["line"]["subject"]] if decision["line"] else [])]
    names = await run_in_threadpool(_subject_names, console, subjects)
    return show(request, console, "admin_policies.html", status=status, lines=lines,
                subject_names=names,
                test=test, decision=decision, test_errors=test_errors, systems=systems,
                methods=sorted(METHODS - {"*"}), errors=errors or [],
                typed=typed or {"subject": "", "department": "", "object": "",
                                "action": "GET", "effect": "allow", "ungoverned": ""})


def _subject_names(console: SecAdmin, subjects: Iterable[str]) -> dict[str, str]:
    """The stored names of the users, departments and clients the subjects name."""
    wanted: dict[str, set[str]] = {"user": set(), "dept": set(), "client": set()}
    for subject in subjects:
        kind, _, code = subject.partition(":")
        if kind in wanted:
            wanted[kind].add(code)
    out: dict[str, str] = {}
    with console.services.engine.connect() as conn:
        for kind, table, key in (("user", users, users.c.username),
                                 ("dept", departments, departments.c.code),
                                 ("client", clients, clients.c.client_id)):
            if wanted[kind]:
                for code, name in conn.execute(sa.select(key, table.c.name).where(
                        key.in_(sorted(wanted[kind])))):
                    out[f"{kind}:{code}"] = name
    return out


def _systems(console: SecAdmin) -> list[tuple[str, str]]:
    with console.services.engine.connect() as conn:
        return [(r.code, r.name) for r in conn.execute(
            sa.select(systems.c.code, systems.c.name).order_by(systems.c.code))]


async def add_line(request: Request, console: SecAdmin, form: Form) -> Response:
    typed = {k: _field(form, k, 1000) for k in ("subject", "department", "object", "action",
                                                "effect", "ungoverned")}
    try:
        line = await run_in_threadpool(
            console.add_line, typed["subject"], typed["department"], typed["object"],
            typed["action"] or "GET", typed["effect"] or "allow",
            typed["ungoverned"] or None)
    except ValidationError as exc:
        t = t_of(request)
        return await policies_page(request, console, status=400, typed=typed,
                                   errors=[say(t, p) for p in exc.problems or
                                           [exc.description]])
    return done("policies", "line_added", str(line["id"]))


async def remove_line(request: Request, console: SecAdmin, form: Form) -> Response:
    line_id = _number(request)
    await run_in_threadpool(console.remove_line, line_id)
    return done("policies", "line_removed", str(line_id))


async def grants_page(request: Request, console: SecAdmin, form: Form = None) -> Response:
    q = request.query_params
    every = q.get("all") == "1"
    found = await run_in_threadpool(lambda: console.grants(
        active_only=not every, resource=q.get("resource", "").strip()[:64]))
    resources = await run_in_threadpool(console.gateway.catalogue.resources)
    titles = {(r.code, i.name): i.title for r in resources for i in r.items}
    return show(request, console, "admin_grants.html", grants=found, every=every,
                resource=q.get("resource", "").strip()[:64], item_titles=titles,
                resource_names={r.code: r.name for r in resources})


async def revoke_grant(request: Request, console: SecAdmin, form: Form) -> Response:
    grant_id = _number(request)
    await run_in_threadpool(console.revoke_grant, grant_id, _field(form, "reason", 500))
    return done("grants", "grant_revoked", str(grant_id))


async def keys_page(request: Request, console: SecAdmin, form: Form = None) -> Response:
    found = await run_in_threadpool(console.keys)
    return show(request, console, "admin_keys.html", keys=found, uses=USES,
                prepublish=console.services.settings.key_prepublish_seconds)


async def rotate_keys(request: Request, console: SecAdmin, form: Form) -> Response:
    use = _field(form, "use", 20)
    rotated = await run_in_threadpool(console.rotate_keys, [use] if use else [],
                                      form.get("now") == "on")
    return done("keys", "keys_rotated", ", ".join(k["use"] for k in rotated))


async def security_page(request: Request, console: SecAdmin, form: Form = None) -> Response:
    values = console.security_settings()
    rows = [(name, values[name]) for name in ("password_min_length", "password_history",
                                              *POLICY_SETTINGS)]
    return show(request, console, "admin_security.html", rows=rows,
                passkeys_usable=passkeys_usable(console.services.settings))


def routes() -> list[BaseRoute]:
    return [
        get(SecAdmin, "/policies", policies_page),
        post(SecAdmin, "/policies", add_line),
        post(SecAdmin, "/policies/{id}/remove", remove_line),
        get(SecAdmin, "/grants", grants_page),
        post(SecAdmin, "/grants/{id}/revoke", revoke_grant),
        get(SecAdmin, "/keys", keys_page),
        post(SecAdmin, "/keys/rotate", rotate_keys),
        get(SecAdmin, "/security", security_page),
    ]
