"""``/portal/admin/...``: the consoles' pages (``admin_pages`` holds their plumbing,
the index and the audit administrator's page; ``admin_sys_pages`` and
``admin_sec_pages`` the two others')."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.web.portal import admin_sec_pages, admin_sys_pages
from gateway.web.portal.admin_pages import own_routes


def routes() -> list[BaseRoute]:
    return [*own_routes(), *admin_sys_pages.routes(), *admin_sec_pages.routes()]
