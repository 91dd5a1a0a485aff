"""The catalogue in the proxy: a decider and a shaper for ``gateway.proxy.endpoint.Proxy``.

    proxy = Proxy(services, deciders=[catalogue_decider(services)],
                  shapers=[catalogue_shaper(services)])      # or: install(services)

decide  When the request (system, method, path) matches a catalogue resource's
        route under any spelling an upstream reads as the same (letter case,
        trailing slash: ``catalogue.routes``), the catalogue decides
        (``catalogue.decide``): an explicit deny policy line still wins; otherwise
        the catalogue's answer replaces the policy's, with its reason (the grant
        used, or why none applies). A spelling only a lax upstream reads as a
        governed route (``;x=1``, a trailing dot, ``.json``, an encoded ``?``) is
        refused (400, the resource named in the audit record): the gateway cannot
        know which reading the upstream applies. Requests matching no resource
        keep the policy decision, except that a policy line does not open a
        system that publishes resources to another department unless it is
        marked ungoverned (the catalogue-only rule, ``gateway.proxy.policies``);
        one below a governed route names it in the audit record
        (``extra.resembles``).
shape   The response of an allowed request for a consumer is cut to the allowed
        items, masked and encrypted (``catalogue.shape``); the provider's own
        requests pass unshaped. A body that cannot be checked is refused (502).
        A non-2xx upstream answer loses its body (it could carry records the
        catalogue never checked).
audit   Both steps write into the request's one ``proxy_request`` record, which
        the proxy appends durably before the response leaves: the resource, the
        purpose, the items actually released, the grants used, and the items
        withheld and why (or why the body was refused).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from catalogue import Caller, ShapeError
from catalogue.service import Snapshot
from gateway.catalogue_wiring import get_catalogue, shape_response
from gateway.proxy.admission import Decider, ProxyRequest
from gateway.proxy.endpoint import Proxy, Shaper, ShapingRefused, UpstreamResponse
from gateway.proxy.path import BadPath
from policies import Decision

_KEY = "catalogue"


class AmbiguousPath(BadPath):
    code = "ambiguous_path"
    title = "Ambiguous spelling of a governed route"


_DROP = {b"content-length", b"content-type", b"content-encoding", b"etag",
         b"content-md5", b"digest"}


def catalogue_decider(services: Any) -> Decider:
    async def decide(req: ProxyRequest, decision: Decision) -> Decision:
        cat = get_catalogue(services)
        snap = cat.snapshot()  # one consistent view for the lookups below
        system, path = req.system.code, req.target.path
        exact = req.system.case_sensitive
        resource = snap.match(system, req.method, path, case_sensitive=exact)
        if resource is None:
            if system not in snap.tables:
                return decision  # the system serves no catalogue resource
            return _off_route(snap, req, decision)
        req.audit.resource = resource.code
        if not decision.allowed and decision.line is not None:
            return decision  # an explicit deny line wins over any grant
        p = req.principal
        caller = Caller(p.department or None, p.client_id, p.username)
        found = cat.decide(resource, caller)
        req.extra[_KEY] = (resource, found, caller)
        # what the catalogue says, whatever the method: a HEAD has no body to shape, but
        # forward-auth must not hand out an assertion a GET could reuse
        req.shape = found.allowed and found.shape
        if req.shape:
            req.audit.extra["shape"] = True  # cut, masked or encrypted for this caller
        if found.purpose:
            req.audit.purpose = found.purpose
        if found.grant_ids:
            req.audit.extra["grants"] = list(found.grant_ids)
        return Decision(
            found.allowed, "grant" if found.rule == "grant" else "catalogue", found.reason,
            decision.line,
            extra={"resource": resource.code, "items": list(found.items),
                   "grants": list(found.grant_ids), "purpose": found.purpose},
        )

    return decide


def _off_route(snap: Snapshot, req: ProxyRequest, decision: Decision) -> Decision:
    """A request on a system with catalogue resources whose route governs none of it:
    an ambiguous spelling of one is refused (400), another method on one is refused
    to other departments, and a policy line opens the system to another department
    only when it is marked ungoverned."""
    system, path = req.system.code, req.target.path
    exact = req.system.case_sensitive
    near = snap.resembling(system, req.method, path, case_sensitive=exact)
    if near is not None:
        req.audit.resource = near.code
        req.audit.reason = (f"{path!r} is an ambiguous spelling of the route of "
                            f"{near.code} ({near.route.path})")
        raise AmbiguousPath("ambiguous spelling of a governed route; use "
                            f"{near.route.path}")
    # the route under another method: many upstreams answer any method on a
    # route (PHP, Express app.all, a body's _method), so another department
    # gets it only through a resource of its own method
    other = (snap.match(system, req.method, path, case_sensitive=exact,
                        any_method=True)
             or snap.resembling(system, req.method, path, case_sensitive=exact,
                                any_method=True))
    if other is not None and req.principal.department != other.provider:
        req.audit.resource = other.code
        return Decision(False, "catalogue", (
            f"{req.method} on the route of {other.code} ({other.route.method} "
            f"{other.route.path}): another department reaches it through the "
            "catalogue only"), decision.line)
    near = snap.resembling(system, req.method, path, prefix=True,
                           case_sensitive=exact)
    if near is not None:
        req.audit.extra["resembles"] = near.code
    line = decision.line
    if (decision.allowed and line is not None and line.ungoverned is None
            and req.principal.department != req.system.department
            and system in snap.publishing):
        return Decision(False, "catalogue", (
            f"{system} publishes catalogue resources: another department reaches "
            f"it through the catalogue only, and {line.describe()} is not marked "
            "ungoverned"), line)
    return decision


def catalogue_shaper(services: Any) -> Shaper:
    async def shape(req: ProxyRequest, decision: Decision, resp: UpstreamResponse
                    ) -> UpstreamResponse:
        found = req.extra.get(_KEY)
        if found is None or not req.shape or req.method == "HEAD":
            return resp
        resource, cd, caller = found
        headers = [(k, v) for k, v in resp.headers if k.lower() not in _DROP]
        headers.append((b"content-type", b"application/json"))
        if not 200 <= resp.status < 300:
            body = json.dumps({"upstream_status": resp.status}).encode()
            req.audit.items = ()
            return UpstreamResponse(resp.status, headers, body)
        content_type = next((v.decode("latin-1") for k, v in resp.headers
                             if k.lower() == b"content-type"), None)
        try:
            shaped = await asyncio.to_thread(shape_response, services, resource, cd, caller,
                                             resp.body, content_type)
        except ShapeError as exc:
            req.audit.items = ()
            req.audit.extra["refused"] = exc.description
            raise ShapingRefused("the response could not be shaped") from None
        req.audit.items = tuple(shaped.released)
        req.audit.extra.update(withheld=shaped.withheld, records=shaped.records,
                                  rule=cd.rule)
        return UpstreamResponse(resp.status, headers, shaped.body)

    return shape


def install(services: Any, **kwargs: Any) -> Proxy:
    """A Proxy with the catalogue's steps, as ``services``' proxy (``get_proxy``)."""
    proxy = Proxy(services, deciders=[catalogue_decider(services), *kwargs.pop("deciders", ())],
                  shapers=[catalogue_shaper(services), *kwargs.pop("shapers", ())], **kwargs)
    services.extra["proxy"] = proxy
    return proxy
