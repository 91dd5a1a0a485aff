"""The catalogue in the proxy: a decider and a shaper for ``gateway.proxy.Proxy``.

    proxy = Proxy(services, deciders=[catalogue_decider(services)],
                  shapers=[catalogue_shaper(services)])      # or: install(services)

decide  When the request (system, method, path) matches a catalogue resource's
        route, the catalogue decides (``catalogue.decide``): an explicit deny
        policy line still wins; otherwise the catalogue's answer replaces the
        policy's, with its reason (the grant used, or why none applies).
        Requests matching no resource keep the policy decision.
shape   The response of an allowed request for a consumer is cut to the allowed
        items, masked and encrypted (``catalogue.shape``); the provider's own
        requests pass unshaped. A body that cannot be checked is refused (502)
        and a ``catalogue.refused`` audit record keeps the detail. A non-2xx
        upstream answer loses its body (it could carry records the catalogue
        never checked). Before the response leaves, a ``catalogue.release``
        audit record (same request id as the proxy's record) lists the items
        actually released, the purpose, the grants and the items withheld and
        why; if it cannot be written the request fails with 503.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from catalogue import Caller, CatalogueDecision, Resource, ShapeError
from gateway.catalogue_wiring import get_catalogue, shape_response
from gateway.proxy import (
    AuditUnavailable,
    Decider,
    Proxy,
    ProxyRequest,
    Shaper,
    ShapingRefused,
    UpstreamResponse,
)
from policies import Decision

_KEY = "catalogue"
_DROP = {b"content-length", b"content-type", b"content-encoding", b"etag",
         b"content-md5", b"digest"}


def catalogue_decider(services: Any) -> Decider:
    async def decide(req: ProxyRequest, decision: Decision) -> Decision:
        cat = get_catalogue(services)
        resource = cat.match(req.system.code, req.method, req.target.path)
        if resource is None:
            return decision
        if not decision.allowed and decision.line is not None:
            return decision  # an explicit deny line wins over any grant
        p = req.principal
        caller = Caller(p.department or None, p.client_id, p.username)
        found = cat.decide(resource, caller)
        req.extra[_KEY] = (resource, found, caller)
        return Decision(
            found.allowed, "grant" if found.rule == "grant" else "catalogue", found.reason,
            decision.line,
            extra={"resource": resource.code, "items": list(found.items),
                   "grants": list(found.grant_ids), "purpose": found.purpose},
        )

    return decide


def catalogue_shaper(services: Any) -> Shaper:
    async def shape(req: ProxyRequest, decision: Decision, resp: UpstreamResponse
                    ) -> UpstreamResponse:
        found = req.extra.get(_KEY)
        if found is None:
            return resp
        resource, cd, caller = found
        if not cd.allowed or not cd.shape or req.method == "HEAD":
            return resp
        headers = [(k, v) for k, v in resp.headers if k.lower() not in _DROP]
        headers.append((b"content-type", b"application/json"))
        if not 200 <= resp.status < 300:
            body = json.dumps({"upstream_status": resp.status}).encode()
            return UpstreamResponse(resp.status, headers, body)
        content_type = next((v.decode("latin-1") for k, v in resp.headers
                             if k.lower() == b"content-type"), None)
        try:
            shaped = await asyncio.to_thread(shape_response, services, resource, cd, caller,
                                             resp.body, content_type)
        except ShapeError as exc:
            await _append(services, "catalogue.refused", "error", req, resource, cd, (),
                          {"detail": exc.description})
            raise ShapingRefused("the response could not be shaped") from None
        await _append(services, "catalogue.release", "allow", req, resource, cd,
                      shaped.released, {"withheld": shaped.withheld, "records": shaped.records,
                                        "grants": list(cd.grant_ids), "rule": cd.rule})
        return UpstreamResponse(resp.status, headers, shaped.body)

    return shape


async def _append(services: Any, event: str, outcome: str, req: ProxyRequest,
                  resource: Resource, cd: CatalogueDecision, items: tuple[str, ...],
                  extra: dict[str, Any]) -> None:
    from audit.record import AuditRecord

    log = services.audit
    if log is None:
        raise AuditUnavailable("audit log not configured")
    p = req.principal
    try:
        await log.append(AuditRecord(
            event_type=event, outcome=outcome, actor_user=p.username, actor_client=p.client_id,
            department=p.department, source_ip=req.client_ip, system=req.system.code,
            resource=resource.code, items=items, purpose=cd.purpose, reason=cd.reason,
            request_id=req.request_id, extra=extra,
        ))
    except Exception as exc:
        raise AuditUnavailable("the request could not be audited") from exc


def install(services: Any, **kwargs: Any) -> Proxy:
    """A Proxy with the catalogue's steps, as ``services``' proxy (``get_proxy``)."""
    proxy = Proxy(services, deciders=[catalogue_decider(services), *kwargs.pop("deciders", ())],
                  shapers=[catalogue_shaper(services), *kwargs.pop("shapers", ())], **kwargs)
    services.extra["proxy"] = proxy
    return proxy
