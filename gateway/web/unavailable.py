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

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from audit.errors import AuditWriteError
from gateway.errors import StorageError
from gateway.root import gateway_of
from gateway.web.api.problems import problem_json
from texts import Text

log = logging.getLogger("govgate")

# what a route meets when the database is down, full, or its pool exhausted: the
# server's or the disk's fault, not the request's (a constraint violation or a bad
# statement stays a 500: a bug to see)
STORAGE_FAILURES: tuple[type[Exception], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, AuditWriteError)


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    """A route that met one of ``STORAGE_FAILURES``: 503, never a bare 500."""
    if isinstance(exc, AuditWriteError):
        return problem_json(exc)
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return problem_json(StorageError(Text("storage.unavailable",
                                          "the database is unavailable; try again")))


async def readyz(request: Request) -> Response:
    """Ready when the audit log can append: a write, since a read still passes on a
    database whose disk is full. Off the event loop: a hung database does not stall
    the requests in flight."""
    audit = gateway_of(request).services.audit
    try:
        await asyncio.to_thread(audit.probe)
    except Exception as exc:  # AuditWriteError, or anything else the driver raised
        log.warning("not ready: %s", exc)
        return problem_json(StorageError(Text("storage.unavailable",
                                              "the database is unavailable; try again")))
    return JSONResponse({"status": "ready"})
