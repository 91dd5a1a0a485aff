"""Which service URLs may receive a ticket (pure)."""

from __future__ import annotations

import pytest

from gateway.idp.cas import services as s

REGISTERED = {"offices": ["https://x.example/app/*", "https://y.example/cb"],
              "deep": ["https://x.example/app/deep/*"]}


@pytest.mark.parametrize("service,system", [
    ("https://x.example/app/", "offices"),
    ("https://x.example/app/page?a=1&b=2", "offices"),
    ("https://x.example/app/deep/x", "deep"),  # the longest pattern wins
    ("https://y.example/cb", "offices"),
    ("https://y.example/cb?x=1", None),  # exact means exact
    ("https://y.example/cb/", None),
    ("https://x.example/app", None),  # the prefix ends on the path boundary
    ("https://x.example/application", None),
    ("https://x.example.evil.test/app/", None),
    ("http://x.example/app/", None),  # another scheme
    ("https://x.example/app/../admin", None),  # a browser resolves the dots away
    ("https://x.example/app/%2e%2e/admin", None),
    ("https://x.example/app/ x", None),
    ("https://x.example/app/\u00e9", None),
    ("https://x.example/app/#frag", None),
    ("https://user@x.example/app/", None),
    ("", None),
])
def test_match(service: str, system: str | None) -> None:
    assert s.match(REGISTERED, service) == system


@pytest.mark.parametrize("pattern", [
    "https://x.example/app/*", "https://x.example/*", "https://x.example/cb",
    "http://127.0.0.1:9102/cas/*", "http://localhost/cb", "http://[::1]:8000/x",
])
def test_registrable(pattern: str) -> None:
    assert s.pattern_problem(pattern) is None


@pytest.mark.parametrize("pattern,why", [
    ("*", "right after a /"),
    ("https://*", "right after a /"),
    ("https://x.example*", "right after a /"),
    ("https://x.example/app*", "right after a /"),
    ("https://x.example/*/x", "only at the end"),
    ("http://x.example/cb", "must be https"),
    ("ftp://x.example/cb", "absolute http"),
    ("https://x.example/cb#f", "fragment"),
    ("https://x.example/a?b=/*", "not in the query"),
    ("https://u:p@x.example/cb", "user information"),
    ("/relative", "absolute"),
])
def test_refused_patterns(pattern: str, why: str) -> None:
    problem = s.pattern_problem(pattern)
    assert problem is not None and why in problem, problem


def test_list_problems() -> None:
    assert s.list_problems(["https://x.example/cb"]) == []
    assert s.list_problems([]) and s.list_problems("https://x.example/cb")
    assert "cas_services[1]" in s.list_problems(["https://x.example/cb", "http://x/"])[0]


def test_launch_url() -> None:
    assert s.launch_url(["https://x.example/app/*", "https://y"]) == "https://x.example/app/"
    assert s.launch_url(["https://y.example/cb"]) == "https://y.example/cb"
    assert s.launch_url([]) is None


def test_state_file_round_trip(settings: object) -> None:
    """``cas_services`` is validated, applied, exported and re-applied as a no-op."""
    from gateway.errors import StateFileError
    from gateway.statefile import export_state
    from tests.cas.conftest import CAS_SYSTEM
    from tests.oauth2.helpers import close_services, make_services
    from tests.wiring import parts

    services = make_services(settings)  # type: ignore[arg-type]
    try:
        applier = parts(services).state_applier()
        bad = dict(CAS_SYSTEM, cas_services=["https://*", "http://evil.example/cb"])
        with pytest.raises(StateFileError) as caught:
            applier.apply({"systems": [bad]})
        assert len(caught.value.problems) == 2
        twice = dict(CAS_SYSTEM, code="offices-2")
        with pytest.raises(StateFileError) as caught:
            applier.apply({"systems": [CAS_SYSTEM, twice]})
        assert [p for p in caught.value.problems if "registered by system 'offices'" in p]
        applier.apply({"systems": [CAS_SYSTEM]})
        exported = export_state(services.engine)
        offices = next(x for x in exported["systems"] if x["code"] == "offices")
        assert offices["cas_services"] == CAS_SYSTEM["cas_services"]
        vehicles = next(x for x in exported["systems"] if x["code"] == "vehicles")
        assert "cas_services" not in vehicles
        assert applier.apply({"systems": exported["systems"]}) == []
    finally:
        close_services(services)
