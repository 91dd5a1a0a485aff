"""What the portal home page offers a user: the systems they may open.

One function, ``launcher_systems``, asking the proxy's policy decision."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.idp.authenticator import Principal
from gateway.idp.cas.services import launch_url, matches
from gateway.org import ADMIN_ROLES
from gateway.proxy.through import decide_for
from gateway.tables import departments, systems
from policies import Policies


def launcher_systems(engine: Engine, policies: Policies, principal: Principal,
                     break_glass: Collection[str] = (), lang: str | None = None
                     ) -> list[dict[str, str]]:
    """Systems the principal may open: those whose portal page (GET
    ``/s/{code}{portal_path}``) the proxy's policy decision allows, i.e. the
    systems of their own department (default rule) and those a policy line opens
    to them, minus explicit denies. Each: code, name, department name, url. A
    system that speaks CAS (``cas_services``) opens with one click through
    ``/cas/login?service=`` its first registered service (a ``/*`` prefix without
    its ``*``), which redirects there with a ticket: no second sign-in. A system that
    speaks SAML opens at its SP's ``launch_url`` (``saml_sp``), where the SP sends its
    AuthnRequest, which the portal session answers at once. A system with a
    ``launch_url`` of its own (reached at the agency's nginx with forward-auth, not
    through ``/s/``) opens there, whatever it speaks: the operator named the address
    (the policy decision above still decides whether it is listed). The three admin roles get
    none: they are not business users. ``break_glass``: the systems an active
    break-glass opens to the person (listed, marked ``break_glass``). ``lang``: the
    portal page's language, which the address tells the system (``with_lang``)."""
    if set(principal.roles or ()) & ADMIN_ROLES:
        return []  # 三员: the admins run the platform, they do not use business systems
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(systems.c.code, systems.c.name, systems.c.portal_path,
                      systems.c.department_code, systems.c.cas_services, systems.c.saml_sp,
                      systems.c.case_sensitive_paths, systems.c.launch_url,
                      departments.c.name.label("department_name"))
            .join(departments, departments.c.code == systems.c.department_code)
            .order_by(systems.c.code)
        ).all()
    out = []
    for r in rows:
        path = r.portal_path or "/"
        url = f"/s/{r.code}{path if path.startswith('/') else '/' + path}"
        # the proxy's reading of the caller (gateway.proxy.through): a portal session
        # is the user's; a token through another department's client both sides'
        decision, _ = decide_for(policies, principal, url.split("?", 1)[0], "GET",
                                 r.department_code, bool(r.case_sensitive_paths))
        if decision.allowed or r.code in break_glass:
            service = launch_url(r.cas_services or [])
            if r.launch_url:  # the system's own address, as registered
                url = str(r.launch_url)
            elif service:  # a CAS system signs the user in itself, with a ticket
                told = with_lang(service, lang)
                if any(matches(p, told) for p in r.cas_services or []):
                    service = told  # else the registered URL as it is: no refusal
                url = "/cas/login?" + urlencode({"service": service})
            elif isinstance(r.saml_sp, dict) and r.saml_sp.get("launch_url"):
                url = str(r.saml_sp["launch_url"])  # the SP asks; the session answers
            else:
                url = with_lang(url, lang)
            out.append({"code": r.code, "name": r.name, "department": r.department_name,
                        "url": url, "break_glass": "" if decision.allowed else "yes"})
    return out


def with_lang(url: str, lang: str | None) -> str:
    """``url`` telling the system the portal's page is in English (``lang=en`` added to
    its query), the way a portal's link tells a system how to open; without it a
    system speaks Chinese, the agencies' working language, so a Chinese page's link is
    the system's plain address. The proxied page reads it; a CAS service keeps it
    through the ticket (docs/proxy.md, "The portal's language")."""
    if lang != "en":
        return url
    return url + ("&" if "?" in url else "?") + urlencode({"lang": lang})
