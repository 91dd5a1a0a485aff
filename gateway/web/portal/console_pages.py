"""What the auditor console's and the real-use pages share: the signed-in person, the
way to the sign-in, the 403/404 page, the page shown when the audit log cannot take
the record of what was asked, and China Standard Time for people."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import Response

from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.portal.error_page import page_headers, render_error
from gateway.web.portal.pages import page_lang, render

CST = timezone(timedelta(hours=8), "CST")


def services_of(request: Request) -> Services:
    return gateway_of(request).services


def error_page(request: Request, status: int, request_id: str) -> Response:
    """The portal's 403 or 404 page, naming the request id its audit record holds."""
    body = render_error(status, lang=page_lang(request), request_id=request_id,
                        query=request.url.query)
    return Response(body, status_code=status, headers=dict(
        (k.decode(), v.decode()) for k, v in page_headers(body, request_id)))


def unavailable(request: Request) -> Response:
    """503: what was asked could not be recorded, so it was not done."""
    return render(request, "message.html", status=503, title_key="aud_unavailable",
                  detail="", detail_key="aud_unavailable_detail")


def shown_time(ms: int | None) -> str:
    """UTC milliseconds as China Standard Time, to the second."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, CST).strftime("%Y-%m-%d %H:%M:%S")


def shown_day(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, CST).date().isoformat()
