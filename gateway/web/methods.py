"""The methods a path takes, across every route that serves it.

Starlette answers a method a route does not take with 405 and an ``Allow`` header
naming that one route's methods; where two routes serve one path (``GET`` and ``POST``
of ``/api/v1/catalogue/resources`` are two declared operations) that header leaves
methods out, and RFC 9110 section 15.5.6 wants the resource's methods, all of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method the routes that match ``scope``'s path take, sorted."""
    found: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                found |= route.methods
    return sorted(found)
