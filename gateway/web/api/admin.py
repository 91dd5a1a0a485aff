"""``/api/v1/admin/...``: the three consoles' endpoints (``admin_sys``, ``admin_sec``,
``admin_compliance``; their plumbing is ``admin_common``)."""

from __future__ import annotations

from gateway.web.api import admin_compliance, admin_sec, admin_sys
from gateway.web.api.operation import ApiRoute


def routes() -> list[ApiRoute]:
    return admin_sys.routes() + admin_sec.routes() + admin_compliance.routes()
