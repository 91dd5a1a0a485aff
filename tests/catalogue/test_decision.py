"""Pure decisions per share type, grants expired / revoked / for another client;
route matching; working days."""

from __future__ import annotations

from datetime import UTC, date, datetime

from catalogue.decision import Caller, both, decide
from catalogue.model import Grant, Item, Resource, Route, day_end
from catalogue.routes import RouteTable, template_problems
from catalogue.workflow import add_working_days

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def resource(share_type: str = "conditional", status: str = "published") -> Resource:
    return Resource(
        code="JG-0001", name="公务用车基础信息", provider="jgswj", system="vehicles",
        share_type=share_type, route=Route("GET", "/api/vehicles", "items"),
        items=(Item("plate_number", "车牌号"), Item("brand", "品牌"),
               Item("driver_phone", "手机号", encrypt=True),
               Item("secret", "内部", shareable=False)),
        status=status,
    )


def grant(gid: int = 1, **kw: object) -> Grant:
    values: dict = {"resource": "JG-0001", "consumer": "czt", "items": ("plate_number",),
                    "purpose": "费用核算", "until": date(2026, 12, 31)}
    values.update(kw)
    return Grant(id=gid, **values)


CZT = Caller("czt", "finance-system", client_department="czt")


def test_provider_gets_everything_unshaped() -> None:
    for share in ("unconditional", "conditional", "none"):
        d = decide(resource(share, status="draft"), Caller("jgswj"), [], NOW)
        assert d.allowed and not d.shape and "secret" in d.items and d.rule == "provider"


def test_unconditional_any_department_shareable_items_only() -> None:
    d = decide(resource("unconditional"), Caller("nn-jgsw"), [], NOW)
    assert d.allowed and d.items == ("plate_number", "brand", "driver_phone")
    assert "unconditionally" in d.reason and d.until is None
    assert not decide(resource("unconditional"), Caller(None), [], NOW).allowed


def test_none_only_provider() -> None:
    d = decide(resource("none"), CZT, [grant()], NOW)
    assert not d.allowed and "provider department jgswj only" in d.reason


def test_unpublished_resource_denied_to_consumers() -> None:
    for status in ("draft", "retired"):
        d = decide(resource("unconditional", status=status), CZT, [], NOW)
        assert not d.allowed and status in d.reason


def test_conditional_needs_an_active_grant() -> None:
    d = decide(resource(), CZT, [], NOW)
    assert not d.allowed and "no grant for department czt" in d.reason
    d = decide(resource(), CZT, [grant(items=("plate_number", "secret", "gone"))], NOW)
    assert d.allowed and d.items == ("plate_number",) and d.grant_ids == (1,)
    assert d.until == day_end(date(2026, 12, 31)) and d.purpose == "费用核算"
    assert "grant 1" in d.reason


def test_grants_of_other_departments_do_not_count() -> None:
    d = decide(resource(), Caller("nn-jgsw"), [grant()], NOW)
    assert not d.allowed


def test_expired_grant() -> None:
    g = grant(until=date(2026, 3, 1))  # ended at 2026-03-02 00:00 CST = 03-01 16:00 UTC
    d = decide(resource(), CZT, [g], NOW)
    assert not d.allowed and "expired after 2026-03-01" in d.reason
    last_moment = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
    assert decide(resource(), CZT, [g], last_moment).allowed


def test_revoked_grant() -> None:
    d = decide(resource(), CZT, [grant(status="revoked")], NOW)
    assert not d.allowed and "revoked" in d.reason


def test_not_yet_valid_grant() -> None:
    d = decide(resource(), CZT, [grant(valid_from=date(2026, 4, 1))], NOW)
    assert not d.allowed and "valid from 2026-04-01" in d.reason


def test_grant_for_one_client() -> None:
    g = grant(client_id="finance-system")
    assert decide(resource(), CZT, [g], NOW).allowed
    other = decide(resource(), Caller("czt", "other-client"), [g], NOW)
    assert not other.allowed and "is for client finance-system" in other.reason
    assert not decide(resource(), Caller("czt", None, "zhao.min"), [g], NOW).allowed


def test_grant_for_a_client_that_left_the_consumer() -> None:
    g = grant(client_id="finance-system")
    for moved in (Caller("czt", "finance-system", client_department="nn-jgsw"),
                  Caller("czt", "finance-system")):  # its department not known
        d = decide(resource(), moved, [g], NOW)
        assert not d.allowed and "is for client finance-system, now a client of" in d.reason


def test_grants_add_up() -> None:
    d = decide(resource(), CZT, [grant(1), grant(2, items=("brand",), until=date(2027, 1, 1),
                                                   purpose="审计")], NOW)
    assert d.items == ("plate_number", "brand") and d.grant_ids == (1, 2)
    assert d.until == day_end(date(2027, 1, 1))


def test_route_table_prefers_literals_and_matches_templates() -> None:
    table: RouteTable[str] = RouteTable([
        ("GET", "/api/vehicles/{plate}", "one"), ("GET", "/api/vehicles", "list"),
        ("GET", "/api/vehicles/export", "export"), ("*", "/api/any", "any"),
    ])
    assert table.match("GET", "/api/vehicles").target == "list"  # type: ignore[union-attr]
    assert table.match("GET", "/api/vehicles/").target == "list"  # type: ignore[union-attr]
    m = table.match("GET", "/api/vehicles/桂A")  # the proxy decodes the path once
    assert m is not None and m.target == "one" and m.params == {"plate": "桂A"}
    m = table.match("GET", "/api/vehicles/%41")  # and never twice
    assert m is not None and m.params == {"plate": "%41"}
    assert table.match("GET", "/api/vehicles/export").target == "export"  # type: ignore[union-attr]
    assert table.match("HEAD", "/api/vehicles").target == "list"  # type: ignore[union-attr]
    assert table.match("POST", "/api/vehicles") is None
    assert table.match("DELETE", "/api/any").target == "any"  # type: ignore[union-attr]
    assert table.match("GET", "/api/vehicles/a/b") is None
    # spellings an upstream reads as the same route are the route
    for spelling in ("/API/Vehicles", "/Api/vehicles/", "/api/VEHICLES//"):
        assert table.match("GET", spelling).target == "list", spelling  # type: ignore[union-attr]
    assert table.match("GET", "/API/Vehicles", case_sensitive=True) is None
    # spellings only a lax upstream reads as the route resemble it, and are not it
    for spelling in ("/api/vehicles;x=1", "/api/vehicles.", "/api/vehicles.json",
                     "/api/vehicles ", "/api/vehicles?", "/api;v=2/vehicles#x",
                     "/Api/Vehicles;jsessionid=1/", "/api/vehicles. ."):
        assert table.match("GET", spelling) is None, spelling
        assert table.resembling("GET", spelling) == "list", spelling
    assert table.resembling("GET", "/api/vehicles/export.csv") == "export"
    assert table.resembling("GET", "/api/other.json") is None
    assert table.resembling("POST", "/api/vehicles;x") is None
    assert table.resembling("GET", "/api/trucks/a/b") is None
    assert table.resembling("GET", "/api/any/x/y", prefix=True) == "any"
    # a system that tells letters apart: another case is another path, not a spelling
    assert table.resembling("GET", "/API/Vehicles;x", case_sensitive=True) is None
    assert table.resembling("GET", "/api/vehicles;x", case_sensitive=True) == "list"
    assert template_problems("/api/{a}x") and template_problems("/api/{a}/{a}")
    assert not template_problems("/api/{a}/{b}")


def test_working_days() -> None:
    # Monday 09:00 CST + 10 working days = Monday two weeks later, 09:00 CST
    due = add_working_days(NOW, 10)
    assert due == datetime(2026, 3, 16, 1, 0, tzinfo=UTC)
    # filed on Saturday: counting starts on Monday
    saturday = datetime(2026, 3, 7, 2, 0, tzinfo=UTC)
    assert add_working_days(saturday, 1) == datetime(2026, 3, 9, 2, 0, tzinfo=UTC)
    # a holiday is skipped
    assert add_working_days(NOW, 1, {date(2026, 3, 3)}) == datetime(2026, 3, 4, 1, 0,
                                                                     tzinfo=UTC)


def test_a_user_through_another_departments_client_is_decided_for_both() -> None:
    assert not Caller("czt", "finance-system", "zhao.min", "czt").through_another_department
    assert not CZT.through_another_department  # a client's own token
    assert not Caller("czt", None, "zhao.min").through_another_department  # a session
    zhang = Caller("jgswj", "nn-web", "zhang.san", "nn-jgsw")
    assert zhang.through_another_department
    assert zhang.client_side() == Caller("nn-jgsw", "nn-web", None, "nn-jgsw")
    assert Caller("jgswj", "ghost", "zhang.san").client_side().department is None
    res = resource()
    provider = decide(res, Caller("jgswj"), [], NOW)
    nn = grant(2, consumer="nn-jgsw", items=("brand", "plate_number"), until=date(2026, 6, 30))
    consumer = decide(res, zhang.client_side(), [nn], NOW)
    d = both(provider, consumer, ("user zhang.san of jgswj", "client nn-web of nn-jgsw"))
    assert d.allowed and d.shape and d.items == ("plate_number", "brand")
    assert d.grant_ids == (2,) and d.until == nn.ends_at() and d.rule == "grant"
    assert d.reason.startswith("user zhang.san of jgswj: provider department")
    refused = both(provider, decide(res, Caller(None), [], NOW), ("u", "c"))
    assert not refused.allowed and refused.reason == "c: caller has no department"
    common = both(consumer, decide(res, CZT, [grant()], NOW), ("a", "b"))
    assert common.allowed and common.items == ("plate_number",)
    apart = both(consumer, decide(res, CZT, [grant(items=("driver_phone",))], NOW), ("a", "b"))
    assert not apart.allowed and "no item is granted to both a (plate_number, brand)" \
        " and b (driver_phone)" in apart.reason
