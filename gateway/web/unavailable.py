"""What the gateway answers while its database is gone (docs/proxy.md, "Under faults").

Every answer the gateway gives is audited first, so without a database that
takes writes it can serve nothing: each request fails with 503 problem+json
(the proxy and the token endpoint as ``audit_unavailable``, anything that met
the database first as ``storage``) and ``/readyz`` says not ready, until the
database takes writes again. No restart is needed: the connection pool
replaces dead connections and the audit writer re-reads its chain's head
before its next batch.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from audit.errors import AuditWriteError
from gateway.root import gateway_of
from gateway.storage import STORAGE_FAILURES, unavailable
from gateway.web.api.problems import problem_json

log = logging.getLogger("govgate")

# the exceptions a route may end with when the database fails it (an append to the
# audit log outside the proxy and the identity provider's own 503 included)
HANDLED = (*STORAGE_FAILURES, AuditWriteError)


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    """A route that met one of ``HANDLED``: 503, never a bare 500."""
    if isinstance(exc, AuditWriteError):
        return problem_json(exc)
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return problem_json(unavailable())


async def readyz(request: Request) -> Response:
    """Ready when the audit log can append: a write, since a read still passes on a
    database whose disk is full. Off the event loop: a hung database does not stall
    the requests in flight."""
    audit = gateway_of(request).services.audit
    try:
        await asyncio.to_thread(audit.probe)
    except Exception as exc:  # AuditWriteError, or anything else the driver raised
        log.warning("not ready: %s", exc)
        return problem_json(unavailable())
    return JSONResponse({"status": "ready"})
