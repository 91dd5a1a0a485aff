"""The gateway's icon at ``/favicon.ico``: the portal's pages name
``/portal/static/favicon.svg`` in their head, but a browser still asks the root
for an icon when it shows an answer that is not such a page (a problem+json, a
system's page through ``/s/``); without it every first visit logged a 404 in the
console. The same small SVG, from the package, never fetched from elsewhere."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

ICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


async def favicon(request: Request) -> Response:
    return Response(ICON, media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400",
                             "X-Content-Type-Options": "nosniff"})
