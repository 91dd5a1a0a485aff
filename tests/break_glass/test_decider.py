"""The proxy's break-glass decider on its own: what it opens and what it leaves as the
policy and the catalogue decided (no database: an active break-glass handed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from catalogue import Caller, CatalogueDecision
from catalogue.model import Item, Resource, Route
from gateway.break_glass.active import Active
from gateway.proxy.admission import AuditDraft, ProxyRequest, System
from gateway.proxy.break_glass import break_glass_decider
from gateway.proxy.path import parse
from policies import Decision
from policies.engine import PolicyLine

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DENIED = Decision(False, "default", "no line allows it")


class Found:
    """An ActiveBreakGlass holding one active break-glass."""

    def __init__(self, active: Active) -> None:
        self.active = active
        self.marked: list[str] = []

    def find(self, username: str | None, system: str, resource: str | None) -> Active | None:
        ok = username == self.active.username and self.active.covers(system, resource)
        return self.active if ok else None

    def use_recorded(self, bg_id: str) -> bool:
        return bool(self.marked)

    def mark_used(self, bg_id: str) -> None:
        self.marked.append(bg_id)


def request(username: str | None, system: str = "echo", resource: str | None = None,
            **principal: Any) -> ProxyRequest:
    who = SimpleNamespace(username=username, client_id="office-web", actor=None, **principal)
    audit = AuditDraft("r1", None, resource=resource)
    return ProxyRequest("r1", "GET", parse(f"/s/{system}/x".encode(), b""),
                        System(system, "czt", "http://127.0.0.1:1"), who, None, {},
                        audit=audit)


async def decide(found: Found, req: ProxyRequest, decision: Decision = DENIED) -> Decision:
    return await break_glass_decider(found)(req, decision)  # type: ignore[arg-type]


async def test_it_opens_only_its_holders_requests_to_its_system() -> None:
    found = Found(Active("bg_1", "wang.wu", "echo", None, NOW + timedelta(hours=1)))
    req = request("wang.wu")
    opened = await decide(found, req)
    assert opened.allowed and opened.rule == "break_glass" and "bg_1" in opened.reason
    assert req.audit.extra == {"break_glass": "bg_1", "break_glass_needed": True}
    assert req.extra["assertion_claims"]["break_glass"]["id"] == "bg_1"
    assert found.marked == ["bg_1"]
    for other in (request("li.si"), request("wang.wu", system="vehicles"),
                  request(None),  # a client-credentials token
                  request("wang.wu", resource="JG-0001")):  # a governed route
        assert await decide(found, other) is DENIED
        assert "break_glass" not in other.audit.extra


async def test_a_delegated_token_and_an_explicit_deny_line_stay_refused() -> None:
    found = Found(Active("bg_2", "wang.wu", "echo", None, NOW + timedelta(hours=1)))
    delegated = request("wang.wu")
    delegated.principal.actor = SimpleNamespace(client_id="office-desk")
    assert await decide(found, delegated) is DENIED
    line = PolicyLine("user:wang.wu", "nn-jgsw", "/s/echo/*", "GET", "deny", id=7)
    deny = Decision(False, "policy", "denied by line 7", line)
    req = request("wang.wu")
    assert await decide(found, req, deny) is deny
    assert req.audit.extra == {"break_glass": "bg_2", "break_glass_needed": False}


def matched(req: ProxyRequest, share_type: str = "conditional") -> ProxyRequest:
    """``req`` as the catalogue's decider leaves a request it matched to JG-0001's route
    and refused (no grant)."""
    resource = Resource("JG-0001", "公务用车", "jgswj", "vehicles", share_type,
                        Route("GET", "/x"), (Item("plate_number", "车牌号"),
                                             Item("driver_id_number", "身份证号",
                                                  shareable=False)))
    refused = CatalogueDecision(False, "no grant", "JG-0001", "no_grant")
    req.extra["catalogue"] = (resource, refused, Caller("nn-jgsw", None, "wang.wu"))
    return req


async def test_a_resource_one_opens_that_resource_only() -> None:
    found = Found(Active("bg_3", "wang.wu", "vehicles", "JG-0001", NOW + timedelta(hours=1)))
    req = matched(request("wang.wu", "vehicles", "JG-0001"))
    assert (await decide(found, req)).allowed
    # released cut to its shareable items, in the clear
    assert req.shape and req.extra["catalogue"][1].items == ("plate_number",)
    assert not (await decide(found, request("wang.wu", "vehicles"))).allowed
    assert not (await decide(found, request("wang.wu", "vehicles", "JG-0002"))).allowed
    # named by the catalogue but not matched (another method on its route), or not
    # shared (不予共享): not opened, not marked
    for other in (request("wang.wu", "vehicles", "JG-0001"),
                  matched(request("wang.wu", "vehicles", "JG-0001"), "none")):
        assert await decide(found, other) is DENIED
        assert "break_glass" not in other.audit.extra
        assert other.audit.extra["break_glass_not_opened"].startswith("bg_3: ")
