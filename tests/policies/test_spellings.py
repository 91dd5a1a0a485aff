"""Deny lines and the spellings of a path (policies.engine's module docstring): a deny
line matches every spelling an upstream reads as its path, allow lines their letters
only, and the index still answers what casbin answers for canonical spellings."""

from __future__ import annotations

import random

import casbin
import pytest

from catalogue.routes import fold
from policies import PolicyEngine, PolicyIndex, PolicyLine, Query, subjects_for
from policies.adapter import casbin_enforcer
from policies.engine import reading

STAFF = subjects_for(username="zhang", roles=["staff"], department="d1")


def decide(lines: list[PolicyLine], obj: str, *, case_sensitive: bool = False,
           action: str = "GET") -> bool:
    return PolicyIndex(lines).decide(
        Query(STAFF, "d1", obj, action, "d1", case_sensitive)).allowed


DENY_ADMIN = [PolicyLine("role:staff", "*", "/s/echo/admin", "GET", "deny", 1)]
DENY_OPS = [PolicyLine("role:staff", "*", "/s/echo/ops*", "*", "deny", 2)]


@pytest.mark.parametrize("obj", [
    "/s/echo/admin", "/s/echo/ADMIN", "/s/echo/Admin", "/s/echo/admin/", "/s/echo/admin.",
    "/s/echo/admin..", "/s/echo/ADMIN./", "/s/echo/admin;jsessionid=1", "/s/echo/admin ",
    "/s/echo/admin+", "/s/echo/admin.json", "/s/echo/admin?x", "/s/echo/ａdmin",
    "/s/echo/admın", "/s/echo/admin/.json", "/s/echo/admin.a.b", "/s/echo/admin.-",
    "/s/echo/ADMIN::$DATA", "/s/echo/admin::$INDEX_ALLOCATION",
    "/s/echo/admin:$i30:$index_allocation",
])
def test_an_exact_deny_line_matches_every_spelling_of_its_path(obj: str) -> None:
    assert not decide(DENY_ADMIN, obj)


@pytest.mark.parametrize("obj", ["/s/echo/administrator", "/s/echo/admin/x", "/s/echo/adm",
                                 "/s/echo/x/admin", "/s/other/admin"])
def test_an_exact_deny_line_is_still_exact(obj: str) -> None:
    assert decide(DENY_ADMIN, obj)


@pytest.mark.parametrize("obj", ["/s/echo/OPS/x", "/s/echo/Ops", "/s/echo/OPS.",
                                 "/s/echo/OPS;x/y", "/s/echo/Ops./x", "/s/echo/ＯＰＳ/x",
                                 "/s/echo/opsx", "/s/echo/OPSX.json"])
def test_a_prefix_deny_line_matches_every_spelling_below_it(obj: str) -> None:
    assert not decide(DENY_OPS, obj)
    assert decide(DENY_OPS, "/s/echo/op") and decide(DENY_OPS, "/s/echo/x/ops")


def test_a_deny_lines_own_spelling_is_read_too() -> None:
    """A line written with capitals or a trailing slash denies the canonical spelling;
    a prefix's complete segments are read as segments (no format suffix cut)."""
    lines = [PolicyLine("role:staff", "*", "/s/echo/Admin/", "GET", "deny", 1),
             PolicyLine("role:staff", "*", "/s/echo/Report.v1/*", "GET", "deny", 2),
             PolicyLine("role:staff", "*", "/s/echo/export.*", "GET", "deny", 3)]
    assert not decide(lines, "/s/echo/admin")
    assert not decide(lines, "/s/echo/REPORT.V1/x")
    assert decide(lines, "/s/echo/report/x")
    # the letters folded, not read: the reading cuts ".CSV" and leaves "/s/echo/export"
    assert not decide(lines, "/s/echo/EXPORT.CSV")
    assert decide(lines, "/s/echo/exports")


def test_a_case_sensitive_system_keeps_letter_case_only() -> None:
    for obj in ("/s/echo/admin/", "/s/echo/admin.", "/s/echo/admin;x", "/s/echo/admin.json",
                "/s/echo/ａｄｍｉｎ"):
        assert not decide(DENY_ADMIN, obj, case_sensitive=True), obj
    for obj in ("/s/echo/ADMIN", "/s/echo/Admin.", "/s/echo/ＡＤＭＩＮ"):
        assert decide(DENY_ADMIN, obj, case_sensitive=True), obj
    assert decide(DENY_OPS, "/s/echo/OPS/x", case_sensitive=True)
    assert not decide(DENY_OPS, "/s/echo/ops./x", case_sensitive=True)


def test_allow_lines_match_their_letters_only() -> None:
    """Fail closed: a spelling that matches an allow line only when read loosely falls
    to the default rule (the caller's department does not own the system: denied)."""
    idx = PolicyIndex([PolicyLine("role:staff", "*", "/s/echo/public", "GET", "allow", 1),
                       PolicyLine("role:staff", "*", "/s/echo/open/*", "GET", "allow", 2)])

    def allowed(obj: str) -> bool:
        return idx.decide(Query(STAFF, "d1", obj, "GET", "d9")).allowed

    assert allowed("/s/echo/public") and allowed("/s/echo/open/x")
    for obj in ("/s/echo/PUBLIC", "/s/echo/public/", "/s/echo/public.", "/s/echo/OPEN/x",
                "/s/echo/open./x"):
        assert not allowed(obj), obj


def test_a_get_deny_line_denies_head_and_a_get_allow_line_does_not_allow_it() -> None:
    lines = [*DENY_ADMIN, PolicyLine("role:staff", "*", "/s/echo/public", "GET", "allow", 3)]
    for obj in ("/s/echo/admin", "/s/echo/ADMIN/"):
        assert not decide(lines, obj, action="HEAD"), obj
    idx = PolicyIndex(lines)
    assert idx.decide(Query(STAFF, "d1", "/s/echo/public", "GET", "d9")).allowed
    assert not idx.decide(Query(STAFF, "d1", "/s/echo/public", "HEAD", "d9")).allowed
    assert decide(lines, "/s/echo/admin", action="POST")  # another method stays allowed


def test_the_reason_names_the_line_and_the_other_spelling() -> None:
    idx = PolicyIndex(DENY_ADMIN)
    literal = idx.decide(Query(STAFF, "d1", "/s/echo/admin", "GET", "d1"))
    assert literal.reason == f"deny by policy line 1: {DENY_ADMIN[0]}"
    other = idx.decide(Query(STAFF, "d1", "/s/echo/ADMIN", "GET", "d1"))
    assert other.line == DENY_ADMIN[0]
    assert other.reason == (f"deny by policy line 1: {DENY_ADMIN[0]} ('/s/echo/ADMIN' is "
                            "another spelling of its path)")


def test_decision_caches_are_keyed_by_the_case_flag() -> None:
    engine = PolicyEngine(DENY_ADMIN, 0)
    args = ("zhang", None, frozenset({"staff"}), "d1", "/s/echo/ADMIN", "GET", "d1")
    assert not engine.decide_caller(*args).allowed
    assert engine.decide_caller(*args, True).allowed
    assert not engine.decide_caller(*args, False).allowed
    query = Query(STAFF, "d1", "/s/echo/ADMIN", "GET", "d1")
    assert not engine.decide(query).allowed
    assert engine.decide(Query(STAFF, "d1", "/s/echo/ADMIN", "GET", "d1", True)).allowed


# -- random policies against casbin -----------------------------------------------------

SUBJECTS = ["role:a", "role:b", "user:u1", "client:c1", "dept:d1", "dept:d2"]
CALLERS = [(subjects_for(username="u1", roles=["a"], department="d1"), "d1"),
           (subjects_for(client_id="c1", roles=["b"], department="d2"), "d2")]
CANONICAL = ["/s/s1/api/x", "/s/s1/api", "/s/s1/api/xy", "/s/s2/adm", "/s/s2/admin/x",
             "/s/s2/other", "*", "/s/s1/*", "/s/s1/api/*", "/s/s2/adm*", "/s/*"]


def _spell(rng: random.Random, obj: str) -> str:
    """Another spelling of ``obj`` a lax upstream reads as it (a line's ``*`` kept)."""
    star = obj.endswith("*")
    body = obj[:-1] if star else obj
    if body.startswith("/s/") and body.count("/") > 2:
        head, last = body[:body.index("/", 3) + 1], body[body.index("/", 3) + 1:]
        last = rng.choice([last.upper(), last.title(), last, last.replace("a", "ａ")])
        if not star and last:
            last += rng.choice(["", "/", ".", ";x", ".json", " ", "+", "..", "./"])
        body = head + last
    return body + ("*" if star else "")


def _world(rng: random.Random, spelt: bool) -> list[PolicyLine]:
    out: dict[tuple[str, ...], PolicyLine] = {}
    for i in range(20):
        obj = rng.choice(CANONICAL)
        line = PolicyLine(rng.choice(SUBJECTS), rng.choice(["d1", "d2", "*"]),
                          _spell(rng, obj) if spelt else obj, rng.choice(["GET", "*"]),
                          rng.choice(["allow", "deny"]), i + 1)
        out.setdefault(line.key(), line)
    return list(out.values())


def _enforcer(lines: list[PolicyLine], subs: tuple[str, ...], dept: str) -> casbin.Enforcer:
    enforcer = casbin_enforcer(lines)
    for s in subs:
        enforcer.add_named_grouping_policy("g", "caller", s, dept)
    return enforcer


@pytest.mark.parametrize("case_sensitive", [False, True])
def test_canonical_spellings_are_decided_as_casbin_decides(case_sensitive: bool) -> None:
    """Lines and paths in their canonical spelling: the one difference never shows."""
    rng = random.Random(1205)
    paths = [p for p in CANONICAL if "*" not in p] + ["/s/s2/admin", "/s/s1/api/x/y"]
    for _world_no in range(10):
        lines = _world(rng, spelt=False)
        idx = PolicyIndex(lines)
        for subs, dept in CALLERS:
            enforcer = _enforcer(lines, subs, dept)
            for path in paths:
                for act in ("GET", "POST"):
                    ours = idx.decide(Query(subs, dept, path, act, None, case_sensitive))
                    assert ours.allowed == enforcer.enforce("caller", dept, path, act), (
                        lines, subs, path, act)


@pytest.mark.parametrize("case_sensitive", [False, True])
def test_random_spellings_against_casbin(case_sensitive: bool) -> None:
    """Lines and requests in random spellings. Never more open than casbin; exactly
    casbin over the lines' letters, denied besides where casbin, asked for the
    request's readings (``reading``, letters folded unless case-sensitive), finds a
    deny line's reading (an exact line's reading, a prefix line's read prefix)."""
    rng = random.Random(512)
    for _world_no in range(8):
        lines = _world(rng, spelt=True)
        idx = PolicyIndex(lines)
        read_denies = [PolicyLine(ln.subject, ln.department, _read_object(ln, case_sensitive),
                                  ln.action, "allow", ln.id)
                       for ln in lines if ln.effect == "deny"]
        for subs, dept in CALLERS:
            literal = _enforcer(lines, subs, dept)
            denies = _enforcer(read_denies, subs, dept)
            for _ in range(20):
                path = _spell(rng, rng.choice([p for p in CANONICAL if "*" not in p]))
                read = reading(path, case_sensitive)
                readings = {read, read.rstrip("/")} | (
                    set() if case_sensitive else {fold(path)})
                for act in ("GET", "POST"):
                    ours = idx.decide(Query(subs, dept, path, act, None, case_sensitive))
                    theirs = literal.enforce("caller", dept, path, act)
                    assert not ours.allowed or theirs, (lines, subs, path, act)
                    hit = any(denies.enforce("caller", dept, r, act) for r in readings)
                    assert ours.allowed == (theirs and not hit), (lines, subs, path, act)


def _read_object(line: PolicyLine, case_sensitive: bool) -> str:
    """A deny line's object as its reading (the reference for the random test)."""
    if not line.object.endswith("*"):
        return reading(line.object, case_sensitive).rstrip("/") or "/"
    prefix = line.object[:-1]
    cut = prefix.rfind("/") + 1
    head = reading(prefix[:cut] + "_", case_sensitive)[:-1] if cut else ""
    tail = prefix[cut:] if case_sensitive else fold(prefix[cut:])
    return head + tail + "*"


def test_lent_roles_read_the_system_case_flag_as_direct_callers_do() -> None:
    """B acting for A through lent roles (gateway.proxy.acting) was decided without the
    system's case flag: on a case-sensitive system a deny line for /admin also refused
    /ADMIN to B, which A's own call passes (stricter, but not the same answer)."""
    from gateway.proxy.acting import lent_roles_decide

    engine = PolicyEngine([
        PolicyLine("role:fleet", "*", "/s/echo/*", "GET", "allow", 1),
        PolicyLine("role:fleet", "*", "/s/echo/admin", "GET", "deny", 2),
    ])

    def lent(obj: str, case_sensitive: bool) -> bool:
        return lent_roles_decide(engine, "li.ming", frozenset({"fleet"}), "d1", 7, obj, "GET",
                                 "d2", case_sensitive).allowed

    assert not lent("/s/echo/ADMIN", False) and not lent("/s/echo/admin", True)
    assert lent("/s/echo/ADMIN", True)  # as a direct caller's decision on that system
    own = engine.decide(Query(subjects_for(username="li.ming", roles=["fleet"],
                                           department="d1"),
                              "d1", "/s/echo/ADMIN", "GET", "d2", True))
    assert own.allowed
