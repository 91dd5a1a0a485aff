"""Building the gateway in tests the way ``create_app`` does, when a test acts on
its parts (catalogue, workflow, identity provider, proxy) beside the app.

``parts(services)`` is the one gateway of those services in a test: hand it to
``create_app`` and the app and the test act on the same objects (a grant revoked
by the test is seen by the app's proxy at once, as in one process)."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from gateway.app import browser_seams
from gateway.root import Gateway, Seams, build_gateway, state_applier
from gateway.services import Services

_BUILT: WeakKeyDictionary[Services, Gateway] = WeakKeyDictionary()


_OPENED: list[Gateway] = []


def gateway_for(services: Services, **seams: Any) -> Gateway:
    """A new gateway as ``create_app(services, seams=Seams(**seams))`` builds it (its
    policy watcher stopped when the test ends: ``close_gateways``)."""
    built = build_gateway(services, browser_seams(Seams(**seams)))
    _OPENED.append(built)
    return built


def close_gateways() -> None:
    """Stop the policy watchers of the gateways this test built (``Services.close``
    stops them too; this covers a test that never closes its services)."""
    while _OPENED:
        _OPENED.pop().policies.close()
    _BUILT.clear()


def parts(services: Services, **seams: Any) -> Gateway:
    """The gateway of ``services`` in this test, built on first use (with ``seams``;
    asking again with other seams is a mistake in the test)."""
    found = _BUILT.get(services)
    if found is None:
        found = _BUILT[services] = gateway_for(services, **seams)
    elif seams:
        raise AssertionError("parts(services) was built already: pass its seams first")
    return found


def apply_state(services: Services, doc: dict[str, Any], **kw: Any) -> Any:
    """Apply a state document as ``govgate apply`` does: through the test's gateway
    when there is one (its caches see the change at once), else through a gateway
    of its own (so the test's may still be built with seams)."""
    found = _BUILT.get(services)
    if found is not None:
        return found.state_applier().apply(doc, **kw)
    return state_applier(services).apply(doc, **kw)
