"""The catalogue in the proxy: a decider and a shaper for ``gateway.proxy.endpoint.Proxy``.

    Proxy(..., deciders=[catalogue_decider(catalogue)],
          shapers=[catalogue_shaper(CatalogueShaping(engine, keys))])   # gateway.root

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
        marked ungoverned (the catalogue-only rule, ``gateway.policy_wiring``);
        one below a governed route names it in the audit record
        (``extra.resembles``).
query   For a caller whose answer is shaped, the query string is checked before
        the upstream is called (``catalogue.query``): a parameter the route's
        ``query:`` does not list, or with no list one of the projection, renaming
        and wrapping parameters (``select``, ``$select``, ``fields``, ``callback``
        ...), or a parameter named twice, is refused (400 ``query_refused``,
        audited with ``extra.query_refused``): an upstream that renames on request
        (PostgREST ``?select=brand:driver_id_number``) would put a cut item under
        a granted item's name. The body of a shaped POST, PUT or PATCH (read
        whole by the proxy, up to its body limit: :func:`check_shaped_body`) is
        checked the same way, a form's names and a JSON object's top-level keys
        counting as parameters; any other body is refused; on the other methods
        a body is refused outright. The query string and the body are also read
        whole (``catalogue.request_names``): a name or value naming an item the
        caller is not given in the clear (``gateway.proxy.catalogue_names``), at any
        depth, GraphQL unless the route lists ``query`` and the caller is given
        every item in the clear, or, for a caller with items withheld, a free-text
        search the route does not list (``catalogue.free_text``: ``?q=``), is
        refused the same way (``extra.names_item``, ``extra.graphql``,
        ``extra.free_text``).
shape   The response of an allowed request for a consumer is cut to the allowed
        items, masked and encrypted (``catalogue.shape``); the provider's own
        requests pass unshaped. A body that cannot be checked is refused (502).
        A non-2xx upstream answer loses its body (it could carry records the
        catalogue never checked); a 204/205/304 goes without one. A HEAD is asked
        upstream as its GET and shaped as the GET, its head the GET's (502 where
        the GET's is, Content-Length the shaped size), sent without the body. The
        head keeps no validator or checksum of the raw body and says
        ``Cache-Control: private, no-store`` (:func:`shaped_headers`); the
        upstream was asked for the whole body, unencoded, unconditionally
        (``gateway.proxy.headers.SHAPED_DROP``). Of the upstream's header fields
        only counts pass (:func:`shaped_headers`; the rest named in
        ``extra.headers_dropped``). The envelope around the records keeps only
        what the route's ``envelope:`` lists, unlisted only pagination counts
        (``catalogue.envelope``, ``catalogue.pagination``); the dropped keys are
        named in the audit record (``extra.envelope_dropped``,
        ``extra.outside_records``).
audit   Both steps write into the request's one ``proxy_request`` record, which
        the proxy appends durably before the response leaves: the resource, the
        purpose, the items actually released, the grants used, and the items
        withheld and why (or why the body was refused).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import unquote_plus

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogue import Caller, Catalogue, CatalogueDecision, Resource, Shaped, ShapeError, shape
from catalogue.decision import both
from catalogue.envelope import bounded
from catalogue.item_names import item_key
from catalogue.model import NONE
from catalogue.pagination import NAMES as PAGINATION_NAMES
from catalogue.pagination import count_header
from catalogue.query import body_refusal
from catalogue.refusal import BODY, Refusal
from catalogue.service import Snapshot
from catalogue.shaping import Binding, encryption_key
from gateway.proxy import delegation
from gateway.proxy.admission import Decider, ProxyRequest
from gateway.proxy.catalogue_names import NAMED_ENCRYPTED, checked, checked_query
from gateway.proxy.endpoint import SHAPE_LIMIT_BYTES, Shaper, ShapingRefused, UpstreamResponse
from gateway.proxy.path import BadPath
from gateway.proxy.shaped_location import REDIRECTS, own_location
from gateway.proxy.target_redaction import redact_query_values
from gateway.proxy.through import SIDES as THROUGH
from gateway.tables import clients
from keys import KeyService
from policies import Decision
from texts import Text

_KEY = "catalogue"
PSEUDONYM_PURPOSE = "catalogue_pseudonym"


class AmbiguousPath(BadPath):
    code = "ambiguous_path"
    title = "Ambiguous spelling of a governed route"


class QueryRefused(BadPath):
    code = "query_refused"
    title = "Query parameter not allowed on this governed route"
    localised = True  # a consumer's developer reads it: its detail in their language


# upstream fields about the raw representation (its length, type, coding, range,
# validators, checksums) or about caching it: none is true of the shaped body, and a
# checksum or validator of the raw one lets a caller test guesses at cut items
_DROP = {b"content-length", b"content-type", b"content-encoding", b"content-range",
         b"accept-ranges", b"last-modified", b"expires", b"cache-control", b"pragma",
         b"age", b"surrogate-control", b"cdn-cache-control"}
_DROP_PARTS = (b"etag", b"digest", b"md5", b"sha", b"checksum", b"hash")
# the shaped body is this caller's alone (their grant's items, their key's JWE, their
# department's pseudonyms): no shared cache may keep it for the next caller, and
# nothing keeps it on disk; nor is it read as anything but JSON
_SHAPED_HEADERS = [(b"cache-control", b"private, no-store"),
                   (b"x-content-type-options", b"nosniff")]
_JSON = (b"content-type", b"application/json")
_NO_BODY = frozenset({204, 205, 304})  # RFC 9110 15.3.5, 15.3.6, 15.4.5


class CatalogueShaping:
    """Cuts, masks and encrypts one response for its consumer: the consumer's
    registered keys for encrypted items (each JWE naming this gateway, the resource,
    the item and the client, and holding the value signed by the gateway's assertion
    key with its place in the answer: ``catalogue.shaping.Binding``; unsigned for the
    ``unsigned_clients`` still on the old helper), a keyed hash per department for
    pseudonyms."""

    def __init__(self, engine: Engine, keys: KeyService, issuer: str = "",
                 unsigned_clients: Iterable[str] = ()) -> None:
        self.engine = engine
        self.keys = keys
        self.issuer = issuer
        self.unsigned_clients = frozenset(unsigned_clients)

    def sign_item(self, claims: dict[str, Any], header: dict[str, Any]) -> str:
        """A value's JWS by the active assertion key: the key set a consumer's
        ``govgate_upstream`` already fetches (``/.well-known/govgate-assertion-jwks.json``);
        its ``typ`` (``govgate-item+jwt``) keeps it from passing for an assertion."""
        return str(self.keys.sign_jwt("assertion", claims, headers=header))

    def mac_for(self, department: str | None) -> Callable[[bytes], bytes]:
        """The keyed hash for pseudonyms, per receiving department (``Caller.receiver``:
        the department of the system the answer lands in): two departments get
        different pseudonyms for the same value and cannot join their extracts, and
        one department's system gets one pseudonym of a value, whichever department's
        user it served."""
        prefix = (department or "").encode("utf-8") + b"\x00"

        def mac(data: bytes) -> bytes:
            return self.keys.mac(PSEUDONYM_PURPOSE, prefix + data)

        return mac

    def client_jwks(self, client_id: str | None) -> dict[str, Any] | None:
        if not client_id:
            return None
        with self.engine.connect() as conn:
            return conn.execute(sa.select(clients.c.jwks)
                                .where(clients.c.client_id == client_id)).scalar()

    def withholds_encrypted(self, caller: Caller) -> str | None:
        """Why the encrypted items are withheld from ``caller`` (no usable key), or None:
        :func:`catalogue.shape` withholds all of them or none."""
        if encryption_key(self.client_jwks(caller.client_id)) is not None:
            return None
        return _no_key(caller)

    def __call__(self, resource: Resource, decision: CatalogueDecision, caller: Caller,
                 body: bytes, content_type: str | None,
                 content_encoding: str | None = None, request_id: str = "") -> Shaped:
        """The shaped body of a matched, allowed request (ShapeError: 502); each
        encrypted value bound to ``request_id`` (the answer's ``X-Request-ID``)."""
        no_key = _no_key(caller)
        sign = None if caller.client_id in self.unsigned_clients else self.sign_item
        return shape(
            body, records=resource.route.records, items=resource.items,
            allowed=decision.items, content_type=content_type,
            content_encoding=content_encoding, max_bytes=SHAPE_LIMIT_BYTES,
            recipient_jwks=self.client_jwks(caller.client_id), no_key_reason=no_key,
            mac=self.mac_for(caller.receiver), envelope=resource.route.envelope,
            binding=(Binding(self.issuer, resource.code, caller.client_id, request_id, sign)
                     if caller.client_id else None),
        )


def _no_key(caller: Caller) -> str:
    return ("the consuming client registered no encryption key" if caller.client_id
            else "encrypted items go only to a registered client, not to a browser session")


def catalogue_decider(catalogue: Catalogue) -> Decider:
    async def decide(req: ProxyRequest, decision: Decision) -> Decision:
        # one consistent view for the lookups below; a reload runs off the event loop
        snap = await catalogue.current()
        two = delegation.sides(req)
        try:
            if two is None:
                found = _decide(catalogue, snap, req, decision)
            else:
                found = _decide_both(catalogue, snap, req, two)
        finally:
            _redact_query_values(req)  # refused (an ambiguous spelling) or not
        if found.allowed and req.shape:
            _check_query(req)
        return found

    return decide


# query parameters whose values order the records by field names (``sort=brand,desc``)
_ORDER_NAMES = frozenset(item_key(n) for n in (
    "sort", "order", "order_by", "sort_by", "dir", "direction"))
_ORDERING = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}(?:[: +](?:asc|desc))?", re.IGNORECASE)


def _redact_query_values(req: ProxyRequest) -> None:
    """The record's ``extra.path`` of a request on a catalogue resource's route keeps a
    query value only where it is no item's value the caller may not see: a parameter
    named after an item the decision gives this caller in the clear (no mask, no
    encryption), a count under a pagination name, an ordering by field names. Every
    other value (a masked, encrypted or withheld item's, a search box's, a name the
    catalogue does not know) is ``[redacted]``: a guessed phone number in
    ``?phone=13800001234`` stayed in the audit log."""
    path = req.audit.extra.get("path")
    if not req.audit.resource or not isinstance(path, str) or "?" not in path:
        return
    kept = req.extra.get(_KEY)
    clear: frozenset[str] = frozenset()
    if kept is not None and kept[0].code == req.audit.resource and kept[1].allowed:
        given = frozenset(kept[1].items)
        clear = frozenset(item_key(i.name) for i in kept[0].items
                          if i.name in given and not i.mask and not i.encrypt)

    def keep(name: str, value: str) -> bool:
        read = item_key(unquote_plus(name).split("[", 1)[0])
        text = unquote_plus(value)
        if read in clear:
            return True
        if read in PAGINATION_NAMES:
            return text.isascii() and text.isdigit() and len(text) <= 10
        return read in _ORDER_NAMES and all(
            _ORDERING.fullmatch(p.strip()) for p in text.split(","))

    req.audit.extra["path"] = redact_query_values(path, keep)


def _check_query(req: ProxyRequest) -> None:
    """Refuse (400, audited) a query parameter the shaped caller may not send on the
    matched route, before the upstream is called: an upstream that renames or projects
    on request would put a cut item under a granted item's name (``catalogue.query``)."""
    resource, found, _ = req.extra[_KEY]
    why, named = checked_query(resource, found, req.target.query)
    if named is not None:
        req.extra[NAMED_ENCRYPTED] = named
    if why is None and req.method in NO_BODY_METHODS and _has_body(req.headers):
        # Rack, Express's body parsers and others read a form body's parameters on any
        # method, beside the query string's: a projection there would never be checked
        why = Refusal(BODY, Text("qr.body_method", "a {method} request carries no body on "
                                 "a route whose answer is cut for this caller",
                                 method=req.method))
    if why is not None:
        _refuse(req, resource, why)


# a larger body is read off the event loop (every key and string of it: about 2.5 µs
# each, so at most a few milliseconds here)
INLINE_BODY_BYTES = 16 * 1024


async def check_shaped_body(req: ProxyRequest, body: bytes,
                            headers: list[tuple[bytes, bytes]]) -> None:
    """Refuse (400, audited) a shaped request's body, read whole by the proxy before the
    upstream is called, whose names the caller may not send on the matched route, or
    which cannot be checked (``catalogue.query.body_refusal``): Rack merges a form
    body's parameters into the request's, Rails a JSON body's top-level keys."""
    found = req.extra.get(_KEY)
    if found is None:
        return  # not a catalogue resource: nothing shapes it by item name
    resource = found[0]
    check = functools.partial(
        body_refusal, body, _field(headers, b"content-type", once=True),
        _field(headers, b"content-encoding"), req.target.query, resource.route.query)
    why, named = (checked(resource, found[1], check) if len(body) <= INLINE_BODY_BYTES
                  else await asyncio.to_thread(checked, resource, found[1], check))
    if named is not None:
        req.extra[NAMED_ENCRYPTED] = named
    if why is not None:
        _refuse(req, resource, why)


def _refuse(req: ProxyRequest, resource: Resource, why: Refusal) -> NoReturn:
    req.audit.extra["query_refused"] = why.parameter
    if why.item is not None:
        req.audit.extra["names_item"] = why.item
    if why.graphql:
        req.audit.extra["graphql"] = True
    if why.free_text:
        req.audit.extra["free_text"] = True
    req.audit.reason = (f"{resource.code}: query parameter {why.parameter!r} refused: "
                        f"{why.reason}")
    listed = resource.route.query
    raise QueryRefused(
        Text("qr.refused", "query parameter {parameter!r} is not allowed on {code}: "
             "{reason}", parameter=why.parameter, code=resource.code, reason=why.reason),
        parameter=why.parameter,
        allowed=None if listed is None else list(listed))


# RFC 9110 9.3: a body on these has no defined meaning (the proxy forwards it as sent)
NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _has_body(headers: Mapping[str, str]) -> bool:
    return (headers.get("content-length", "0").strip() not in ("", "0")
            or "transfer-encoding" in headers)


def _decide(catalogue: Catalogue, snap: Snapshot, req: ProxyRequest, decision: Decision,
            *, through: bool = True) -> Decision:
    """The catalogue's decision for the one caller of ``req`` (module docstring): a
    user's token through another department's client for both departments
    (``Caller.through_another_department``; ``through``: not for a delegated token's
    user side, whose client is decided as the other side)."""
    system, path = req.system.code, req.target.path
    exact = req.system.case_sensitive
    resource = snap.match(system, req.method, path, case_sensitive=exact)
    if resource is None:
        if system not in snap.tables:
            return decision  # the system serves no catalogue resource
        return _off_route(snap, req, decision, _receivers(req.principal, through))
    req.audit.resource = resource.code
    if not decision.allowed and decision.line is not None:
        return decision  # an explicit deny line wins over any grant
    p = req.principal
    caller = Caller(p.department or None, p.client_id, p.username, p.client_department)
    if through and caller.through_another_department:
        # the data lands in the client's system: its department must be allowed it too
        found = catalogue.decide_through(resource, caller, snap=snap)
        req.audit.extra["client_department"] = caller.client_department
    else:
        found = catalogue.decide(resource, caller, snap=snap)
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


def _decide_both(catalogue: Catalogue, snap: Snapshot, req: ProxyRequest,
                 two: tuple[tuple[Any, Decision], tuple[Any, Decision]]) -> Decision:
    """A delegated request (``gateway.proxy.delegation``): each side decided as a
    caller of its own, then one answer: allowed only when both are, the items those
    granted to both, shaped unless both sides are the provider."""
    done = []
    for principal, policy in two:
        # each side its own draft: one side's grants must not be recorded as used when
        # the other refuses
        side = dataclasses.replace(req, principal=principal, extra={}, shape=False,
                                   audit=dataclasses.replace(
                                       req.audit, extra=dict(req.audit.extra)))
        try:
            found = _decide(catalogue, snap, side, policy, through=False)
        except AmbiguousPath:
            req.audit.resource, req.audit.reason = side.audit.resource, side.audit.reason
            raise
        done.append((principal, found, side.extra.get(_KEY), side.audit))
    (user, du, user_found, ua), (client, dc, client_found, ca) = done
    req.audit.resource = ua.resource or ca.resource
    if "resembles" in ua.extra:
        req.audit.extra["resembles"] = ua.extra["resembles"]
    decision = delegation.both(user, du, client, dc)
    if not decision.allowed or user_found is None or client_found is None:
        return decision  # refused, or no catalogue resource (the policy decided)
    resource, fu, caller = user_found
    joint = both(fu, client_found[1], (f"user {user.username}",
                                       f"acting client {client.client_id}"))
    if not joint.allowed:
        return Decision(False, "catalogue", joint.reason, decision.line)
    req.extra[_KEY] = (resource, joint, caller)
    req.shape = joint.shape
    req.audit.purpose = joint.purpose
    if req.shape:
        req.audit.extra["shape"] = True
    if joint.grant_ids:
        req.audit.extra["grants"] = list(joint.grant_ids)
    return Decision(True, "grant" if joint.rule == "grant" else "catalogue", joint.reason,
                    decision.line,
                    extra={"resource": resource.code, "items": list(joint.items),
                           "grants": list(joint.grant_ids), "purpose": joint.purpose})


def emergency_closed(req: ProxyRequest, code: str) -> str | None:
    """Why a resource break-glass for ``code`` (``gateway.proxy.break_glass``) does not
    open ``req``, or None: it opens the request the catalogue matched to that
    resource's own route and method only (another method on the route is a write the
    emergency was not granted), and never a resource not shared (不予共享: its provider
    department only, DESIGN.md)."""
    found = req.extra.get(_KEY)
    if found is None or found[0].code != code:
        return f"the request is not {code}'s route and method"
    resource = found[0]
    if resource.share_type == NONE and found[2].department != resource.provider:
        return (f"{code} is not shared (不予共享): provider department "
                f"{resource.provider} only")
    return None


def open_in_emergency(req: ProxyRequest, bg_id: str) -> None:
    """Release the matched resource to a break-glass (``emergency_closed`` said yes):
    every shareable item in the clear (no mask, no encryption: that is the
    emergency), never an item withheld from every consumer (``shareable: false``)
    nor a key the catalogue does not list; the query and body checks of a shaped
    caller apply (a renaming parameter would put a withheld item under a released
    name)."""
    resource, _, caller = req.extra[_KEY]
    clear = dataclasses.replace(resource, items=tuple(
        dataclasses.replace(i, mask=None, encrypt=False) for i in resource.items))
    found = CatalogueDecision(
        True, f"break-glass {bg_id}: the shareable items of {resource.code}, in the clear",
        resource.code, "break_glass", resource.shareable_items)
    req.extra[_KEY] = (clear, found, caller)
    req.shape = True
    req.audit.extra["shape"] = True
    _check_query(req)


def _receivers(p: Any, through: bool) -> tuple[str | None, ...]:
    """The departments whose systems receive the answer: the caller's, and for a user's
    token through another department's client that client's (None: unregistered)."""
    caller = Caller(p.department or None, p.client_id, p.username, p.client_department)
    if through and caller.through_another_department:
        return caller.department, caller.client_department
    return (caller.department,)


def _off_route(snap: Snapshot, req: ProxyRequest, decision: Decision,
               receivers: tuple[str | None, ...]) -> Decision:
    """A request on a system with catalogue resources whose route governs none of it:
    an ambiguous spelling of one is refused (400), another method on one is refused
    unless every department receiving the answer (``receivers``, :func:`_receivers`)
    is its provider, and a policy line opens the system to another department only
    when it is marked ungoverned."""
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
    if other is not None and any(d != other.provider for d in receivers):
        req.audit.resource = other.code
        return Decision(False, "catalogue", (
            f"{req.method} on the route of {other.code} ({other.route.method} "
            f"{other.route.path}): another department reaches it through the "
            "catalogue only"), decision.line)
    near = snap.resembling(system, req.method, path, prefix=True,
                           case_sensitive=exact)
    if near is not None:
        req.audit.extra["resembles"] = near.code
    if not decision.allowed or system not in snap.publishing:
        return decision
    # each side's own line (a user through another department's client: both sides,
    # gateway.proxy.through), each against its own department
    two = req.extra.get(THROUGH)
    sides = two if two is not None else ((req.principal.department, decision),)
    for department, side in sides:
        line = side.line
        if line is not None and line.ungoverned is None \
                and department != req.system.department:
            return Decision(False, "catalogue", (
                f"{system} publishes catalogue resources: another department reaches "
                f"it through the catalogue only, and {line.describe()} is not marked "
                "ungoverned"), line)
    return decision


def _field(headers: list[tuple[bytes, bytes]], name: bytes, *, once: bool = False
           ) -> str | None:
    """All values of header field ``name`` as one (RFC 9110 5.3), or None; ``once``:
    the same value repeated counts once (a type sent twice is still that type, a
    coding applied twice is not)."""
    values = [v.decode("latin-1") for k, v in headers if k.lower() == name]
    if once:
        values = list(dict.fromkeys(v.strip() for v in values))
    return ", ".join(values) if values else None


def shaped_headers(headers: list[tuple[bytes, bytes]], *, body: bool,
                   dropped: list[str] | None = None,
                   location: Callable[[bytes], bool] | None = None
                   ) -> list[tuple[bytes, bytes]]:
    """The upstream's header fields as they go out with a shaped answer (``body``:
    whether it has one): only counts (pagination, rate limits, ``Retry-After``:
    ``catalogue.pagination.count_header``), and one ``Location`` that ``location``
    accepts (a redirect to the request's own path: ``gateway.proxy.shaped_location``).
    Any other value is the upstream's to fill and passes uncut:
    ``Location: /vehicles?driver_id_number=...``, a ``Content-Disposition`` file name,
    a ``Link``'s query, a cookie. ``dropped`` gets the names of those dropped, but for
    the fields about the raw body the gateway replaces."""
    out = []
    locations = [v for k, v in headers if k.lower() == b"location"]
    for k, v in headers:
        low = k.lower()
        if count_header(low.decode("latin-1"), v) or (
                low == b"location" and location is not None and len(locations) == 1
                and location(v)):
            out.append((k, v))
        elif dropped is not None and low not in _DROP and not any(
                part in low for part in _DROP_PARTS):
            dropped.append(low.decode("latin-1"))
    out += _SHAPED_HEADERS
    if body:
        out.append(_JSON)
    return out


def without_items(headers: list[tuple[bytes, bytes]], resource: Resource,
                  audit_extra: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """``headers`` without a field named after an item of ``resource`` (``X-`` aside,
    compared as the envelope's keys are: ``X-Driver-ID-Number`` is driver_id_number):
    its value would pass uncut, unmasked, unencrypted. The names dropped go to
    ``outside_headers`` in the audit record."""
    items = frozenset(item_key(i.name) for i in resource.items)
    kept, dropped = [], []
    for k, v in headers:
        name = k.decode("latin-1")
        if item_key(name.lower().removeprefix("x-")) in items:
            dropped.append(name.lower())
        else:
            kept.append((k, v))
    if dropped:
        audit_extra["outside_headers"] = dropped
    return kept


def catalogue_shaper(shaping: CatalogueShaping) -> Shaper:
    async def shape(req: ProxyRequest, decision: Decision, resp: UpstreamResponse
                    ) -> UpstreamResponse:
        found = req.extra.get(_KEY)
        if found is None or not req.shape:
            return resp
        resource, cd, caller = found
        upstream = without_items(resp.headers, resource, req.audit.extra)
        dropped: list[str] = []
        # a redirect keeps a Location naming the request's own path up to a slash
        own = (functools.partial(own_location, system=req.system.code,
                                 path=req.target.upstream_path)
               if resp.status in REDIRECTS else None)
        headers = shaped_headers(upstream, body=resp.status not in _NO_BODY,
                                 dropped=dropped, location=own)
        if dropped:
            _name_bounded(req.audit.extra, "headers_dropped", list(dict.fromkeys(dropped)))
        named = req.extra.get(NAMED_ENCRYPTED)
        # before any answer goes: a HEAD's counts and a 404 tell what records would
        if named is not None and (
                why := await asyncio.to_thread(shaping.withholds_encrypted, caller)):
            req.audit.items = ()
            req.audit.extra["names_item"] = named
            req.audit.extra["refused"] = (
                f"the request names or searches item {named!r}, which this answer withholds "
                f"({why}): its records would tell the item's values")
            raise ShapingRefused("the response could not be shaped")
        if resp.status in _NO_BODY:
            # no body to shape; the head still must not describe the raw one
            req.audit.items = ()
            return UpstreamResponse(resp.status, headers, b"")
        if not 200 <= resp.status < 300:
            body = json.dumps({"upstream_status": resp.status}).encode()
            req.audit.items = ()
            return UpstreamResponse(resp.status, headers, body)
        try:
            if resp.status == 206:  # the client's Range never reaches the upstream
                raise ShapeError("a partial answer (206) is a slice, not the records")
            shaped = await asyncio.to_thread(
                shaping, resource, cd, caller, resp.body,
                _field(resp.headers, b"content-type", once=True),
                _field(resp.headers, b"content-encoding"), req.audit.request_id)
        except ShapeError as exc:
            req.audit.items = ()
            req.audit.extra["refused"] = exc.description
            raise ShapingRefused("the response could not be shaped") from None
        # a HEAD (asked upstream as its GET, endpoint.upstream_method) releases
        # nothing: its head is the shaped GET's, Content-Length the shaped size
        req.audit.items = () if req.method == "HEAD" else tuple(shaped.released)
        req.audit.extra.update(withheld=shaped.withheld, records=shaped.records,
                                  rule=cd.rule)
        # how each released item went, and to which key (the client is the record's
        # actor_client): the auditor's answer to "what did they get in the clear"
        if shaped.encrypted:
            req.audit.extra["encrypted"] = {"items": list(shaped.encrypted),
                                            "key": shaped.key, "signed": shaped.signed}
        if shaped.masked:
            req.audit.extra["masked"] = shaped.masked
        # beside the records: an item's name, or a key the route's envelope does not
        # keep (catalogue.envelope); dropped, and said (bounded: the upstream's keys)
        for name, keys in (("outside_records", shaped.outside),
                           ("envelope_dropped", shaped.dropped)):
            if keys:
                _name_bounded(req.audit.extra, name, list(keys))
        return UpstreamResponse(resp.status, headers, shaped.body)

    return shape


def _name_bounded(extra: dict[str, Any], name: str, keys: list[str]) -> None:
    """``keys`` (the upstream's, any number of them) in the audit record: the first
    ones under ``name``, how many more under ``name_more``."""
    shown, more = bounded(keys)
    extra[name] = shown
    if more:
        extra[f"{name}_more"] = more
