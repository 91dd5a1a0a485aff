"""The pure decision core: semantics, reasons, and agreement with casbin itself."""

from __future__ import annotations

import random

import pytest

from policies import Decision, PolicyEngine, PolicyIndex, PolicyLine, Query, make_line, subjects_for
from policies.adapter import casbin_enforcer
from policies.engine import line_problems


def q(subjects: tuple[str, ...], dept: str, obj: str, act: str = "GET",
      owner: str | None = "jgswj") -> Query:
    return Query(subjects, dept, obj, act, owner)


STEWARD = subjects_for(username="li.si", roles=["data_steward"], department="czt")


def test_default_rule_owner_department_allowed_others_denied() -> None:
    idx = PolicyIndex([])
    d = idx.decide(q(STEWARD, "czt", "/s/assets/api/x", owner="czt"))
    assert d.allowed and d.rule == "default" and "belongs to department czt" in d.reason
    d = idx.decide(q(STEWARD, "czt", "/s/assets/api/x", owner="jgswj"))
    assert not d.allowed and d.rule == "default" and d.line is None


def test_allow_line_names_itself() -> None:
    line = PolicyLine("role:data_steward", "czt", "/s/assets/api/*", "GET", "allow", 7)
    d = PolicyIndex([line]).decide(q(STEWARD, "czt", "/s/assets/api/items"))
    assert d == Decision(True, "policy", f"allow by policy line 7: {line}", line)
    assert "p, role:data_steward, czt, /s/assets/api/*, GET, allow" in d.reason


def test_line_needs_method_department_and_subject() -> None:
    idx = PolicyIndex([PolicyLine("role:data_steward", "czt", "/s/assets/api/*", "GET", id=1)])
    assert not idx.decide(q(STEWARD, "czt", "/s/assets/api/items", "POST")).allowed
    assert not idx.decide(q(STEWARD, "gat", "/s/assets/api/items")).allowed  # other domain
    other = subjects_for(username="wang", roles=["staff"], department="czt")
    assert not idx.decide(q(other, "czt", "/s/assets/api/items")).allowed
    assert not idx.decide(q(STEWARD, "czt", "/s/assets/api")).allowed  # keyMatch: needs the /
    assert not idx.decide(q(STEWARD, "czt", "/s/assets/apix")).allowed


def test_deny_wins_over_allow_and_over_the_default_rule() -> None:
    lines = [
        PolicyLine("dept:czt", "czt", "/s/assets/*", "*", "allow", 1),
        PolicyLine("user:li.si", "czt", "/s/assets/api/secret*", "*", "deny", 2),
    ]
    idx = PolicyIndex(lines)
    d = idx.decide(q(STEWARD, "czt", "/s/assets/api/secret/1", "DELETE"))
    assert not d.allowed and d.line == lines[1] and d.reason.startswith("deny by policy line 2")
    assert idx.decide(q(STEWARD, "czt", "/s/assets/api/public")).allowed
    own = PolicyIndex([PolicyLine("role:staff", "jgswj", "/s/vehicles/admin*", "*", "deny", 3)])
    staff = subjects_for(username="zhang", roles=["staff"], department="jgswj")
    assert not own.decide(q(staff, "jgswj", "/s/vehicles/admin/x", owner="jgswj")).allowed
    assert own.decide(q(staff, "jgswj", "/s/vehicles/api", owner="jgswj")).allowed


def test_star_department_and_client_subject() -> None:
    idx = PolicyIndex([PolicyLine("client:finance-system", "*", "/s/vehicles/api/*", "GET", id=4)])
    subs = subjects_for(client_id="finance-system", department="czt")
    assert idx.decide(q(subs, "czt", "/s/vehicles/api/v")).allowed


def test_first_line_by_id_is_the_reason_when_several_match() -> None:
    lines = [PolicyLine("dept:czt", "czt", "/s/a/*", "*", id=9),
             PolicyLine("role:data_steward", "czt", "/s/a/x", "GET", id=3)]
    assert PolicyIndex(lines).decide(q(STEWARD, "czt", "/s/a/x")).line == lines[1]


def test_cache_is_per_index_and_replace_invalidates() -> None:
    engine = PolicyEngine([], 0)
    query = q(STEWARD, "czt", "/s/assets/api/x")
    assert not engine.decide(query).allowed
    assert engine.decide(query) is engine.decide(query)  # cached
    engine.replace([PolicyLine("dept:czt", "czt", "/s/assets/*", "GET", id=1)], 1)
    assert engine.decide(query).allowed and engine.version == 1


def test_decide_caller_is_decide_of_the_callers_query_and_follows_replace() -> None:
    """The proxy's shortcut (the caller's fields as the cache key, no Query built)
    answers what ``decide`` answers for the same caller, and a new index (a policy
    change) answers anew."""
    rng = random.Random(17)
    callers = [("u1", None, frozenset({"a"}), "d1"),
               (None, "c1", frozenset(), "czt"),
               ("u3", "c1", frozenset({"a", "b"}), "d2")]
    for _world in range(10):
        engine = PolicyEngine(_random_world(rng, 25), 0)
        for user, client, roles, dept in callers:
            for path in ("/s/s1/api/x", "/s/s2/other", "/s/s3/a"):
                for act in ("GET", "POST"):
                    for owner in ("d1", dept):
                        got = engine.decide_caller(user, client, roles, dept, path, act, owner)
                        assert got == engine.decide(Query(subjects_for(
                            username=user, client_id=client, roles=roles, department=dept),
                            dept, path, act, owner))
                        assert engine.decide_caller(user, client, roles, dept, path, act,
                                                    owner) is got  # cached
    engine = PolicyEngine([], 0)
    args = ("li.si", None, frozenset({"data_steward"}), "czt", "/s/assets/api/x", "GET",
            "jgswj")
    assert not engine.decide_caller(*args).allowed
    engine.replace([PolicyLine("dept:czt", "czt", "/s/assets/*", "GET", id=1)], 1)
    assert engine.decide_caller(*args).allowed


@pytest.mark.parametrize(
    "args",
    [
        ("role:x", "czt", "/s/a/*/b", "GET", "allow"),  # '*' only at the end
        ("role:x", "czt", "/s/a/../b", "GET", "allow"),
        ("role:x", "czt", "/s/a//b", "GET", "allow"),
        ("bogus", "czt", "/s/a/b", "GET", "allow"),
        ("role:x", "CZT", "/s/a/b", "GET", "allow"),
        ("role:x", "czt", "/api/b", "GET", "allow"),
        ("role:x", "czt", "/s/a/b", "FETCH", "allow"),
        ("role:x", "czt", "/s/a/b", "GET", "maybe"),
    ],
)
def test_bad_lines_are_refused(args: tuple[str, ...]) -> None:
    assert line_problems(*args)
    with pytest.raises(ValueError):
        make_line(*args)


def test_make_line_upper_cases_the_method() -> None:
    assert make_line("role:x", "czt", "/s/a/*", "get").action == "GET"


def _random_world(rng: random.Random, n: int) -> list[PolicyLine]:
    subjects = ["role:a", "role:b", "user:u1", "user:u2", "client:c1", "dept:d1", "dept:d2"]
    depts = ["d1", "d2", "*"]
    objects = ["/s/s1/*", "/s/s1/api/*", "/s/s1/api/x", "/s/s2/*", "*", "/s/s2/api/x*",
               "/s/s1/api"]
    actions = ["GET", "POST", "*"]
    out = []
    seen = set()
    for i in range(n):
        line = PolicyLine(rng.choice(subjects), rng.choice(depts), rng.choice(objects),
                          rng.choice(actions), rng.choice(["allow", "allow", "deny"]), i + 1)
        if line.key() not in seen:
            seen.add(line.key())
            out.append(line)
    return out


def test_index_agrees_with_casbin_enforce_on_random_policies() -> None:
    rng = random.Random(6)
    paths = ["/s/s1/api/x", "/s/s1/api/y", "/s/s1/api", "/s/s2/api/xyz", "/s/s2/other", "/s/s3/a"]
    callers = [
        (subjects_for(username="u1", roles=["a"], department="d1"), "d1"),
        (subjects_for(username="u2", roles=["b"], department="d2"), "d2"),
        (subjects_for(client_id="c1", department="d1"), "d1"),
        (subjects_for(username="u3", roles=["a", "b"], department="d2"), "d2"),
    ]
    for _world in range(15):
        lines = _random_world(rng, 25)
        idx = PolicyIndex(lines)
        enforcer = casbin_enforcer(lines)
        for subs, dept in callers:
            # the caller's g() links: caller -> each subject it holds, in its domain
            enforcer.get_role_manager().clear()
            for s in subs:
                enforcer.add_named_grouping_policy("g", "caller", s, dept)
            for path in paths:
                for act in ("GET", "POST"):
                    ours = idx.decide(Query(subs, dept, path, act, owner=None))
                    assert ours.allowed == enforcer.enforce("caller", dept, path, act), (
                        lines, subs, dept, path, act, ours)
            enforcer.remove_filtered_named_grouping_policy("g", 0, "caller")


@pytest.mark.parametrize("n", [100, 10_000, 100_000])
def test_decision_work_does_not_grow_with_lines(n: int) -> None:
    """No linear scan: a decision probes only the caller's (department, subject)
    buckets, once per distinct prefix length, however many lines there are. (Its
    speed is measured in bench/bench_proxy.py, not here.)"""
    rng = random.Random(n)
    lines = [
        PolicyLine(f"role:r{rng.randrange(50)}", f"d{rng.randrange(200)}",
                   f"/s/sys{rng.randrange(100)}/api/{i}*", rng.choice(["GET", "*"]), id=i)
        for i in range(n)
    ]
    idx = PolicyIndex(lines)
    subs = subjects_for(username="u", roles=["r1", "r2"], department="d7")
    queries = [Query(subs, "d7", f"/s/sys{i % 100}/api/{i}/x", "GET", "d1") for i in range(200)]
    longest = max(len(q.object) for q in queries)
    for query in queries:
        visited = [idx._buckets[(dom, sub)] for dom in (query.department, "*")
                   for sub in query.subjects if (dom, sub) in idx._buckets]
        probes = sum(1 + len(bucket.lengths) for bucket in visited)
        assert probes <= 2 * len(subs) * (1 + longest)
        # and the answer is the one a full scan gives
        full = [ln for ln in lines if ln.department in (query.department, "*")
                and ln.subject in subs and query.object.startswith(ln.object.rstrip("*"))
                and ln.action in ("*", query.action)]
        assert {ln.id for ln in idx.matching(query)} == {ln.id for ln in full}
