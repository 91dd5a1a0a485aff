"""Policy lines in the database: changes, audit events, hot reload across processes,
the state file's policies: section."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from audit.tables import records
from gateway.errors import StateFileError
from gateway.services import Services, open_services
from policies import Policies, PolicyLine, Query, make_line, subjects_for
from policies.adapter import DatabaseAdapter, casbin_enforcer, read_version
from tests.wiring import apply_state, parts

STEWARD = subjects_for(username="li.si", roles=["data_steward"], department="czt")
QUERY = Query(STEWARD, "czt", "/s/assets/api/items", "GET", "jgswj")


def test_add_remove_are_audited_and_seen_at_once(services: Services) -> None:
    policies = parts(services).policies
    assert not policies.decide(QUERY).allowed
    line, created = policies.add(
        make_line("role:data_steward", "czt", "/s/assets/api/*", "GET"), actor="secadmin"
    )
    assert created and line.id is not None
    assert policies.decide(QUERY).allowed
    assert policies.add(make_line("role:data_steward", "czt", "/s/assets/api/*", "GET"))[1] is False
    gone = policies.remove(PolicyLine("", "", "", "", id=line.id))
    assert gone == line
    assert not policies.decide(QUERY).allowed
    # both changes are in the durable audit log, with who made them
    services.settle_audit()  # journal mode (the SQLite default): into the tables now
    with services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(records.c.reason, records.c.actor_user, records.c.extra)
            .where(records.c.event_type == "admin_change")
            .where(records.c.reason.in_(["policy_add", "policy_remove"]))
            .order_by(records.c.id)
        ).all()
    assert [r.reason for r in rows] == ["policy_add", "policy_remove"]
    assert rows[0].actor_user == "secadmin"
    assert json.loads(rows[0].extra)["line_id"] == line.id


def test_a_change_by_another_process_is_enforced_within_one_second(
    services: Services,
) -> None:
    here = parts(services).policies  # watching
    other = open_services(services.settings)  # a second process: own engine, own Policies
    try:
        theirs = Policies(other.engine)
        assert not here.decide(QUERY).allowed
        start = time.monotonic()
        theirs.add(make_line("dept:czt", "czt", "/s/assets/*", "*"))
        while not here.decide(QUERY).allowed:
            assert time.monotonic() - start < 1.0, "not seen within 1 s"
            time.sleep(0.02)
        seen_after = time.monotonic() - start
        theirs.add(make_line("user:li.si", "czt", "/s/assets/api/*", "GET", "deny"))
        while here.decide(QUERY).allowed:
            assert time.monotonic() - start - seen_after < 1.0, "deny not seen within 1 s"
            time.sleep(0.02)
        assert "deny by policy line" in here.decide(QUERY).reason
    finally:
        other.close()


def test_state_file_section_adds_missing_lines_and_exports(services: Services) -> None:
    doc = {"policies": [
        {"subject": "role:data_steward", "department": "czt", "object": "/s/assets/api/*",
         "action": "get"},
        {"subject": "user:li.si", "department": "czt", "object": "/s/assets/api/secret*",
         "action": "*", "effect": "deny"},
    ]}
    applier = parts(services).state_applier()
    changes = applier.apply(doc)
    assert [c.kind for c in changes] == ["policy", "policy"]
    assert applier.apply(doc) == []
    parts(services).policies.refresh()
    assert parts(services).policies.decide(QUERY).allowed
    from gateway.statefile import export_state

    exported = export_state(services.engine, parts(services).state_sections())
    assert exported["policies"][0]["action"] == "GET"
    assert exported["policies"][1]["effect"] == "deny"
    assert applier.apply({"policies": exported["policies"]}) == []


def test_state_file_problems_have_places(services: Services) -> None:
    from gateway.statefile import load_text

    doc = load_text(
        "policies:\n"
        "  - {subject: role:x, department: nope, object: /s/a/*, action: GET}\n"
        "  - {subject: boss, department: czt, object: '/s/a/*/b', action: FETCH, effect: maybe}\n"
        "  - {subject: role:x, department: czt}\n"
    )
    with pytest.raises(StateFileError) as info:
        apply_state(services, doc)
    text = "\n".join(info.value.problems)
    assert "policies[0] (line 2): unknown department 'nope'" in text
    assert "policies[1] (line 3): subject 'boss'" in text
    assert "policies[1] (line 3): object" in text and "action 'FETCH'" in text
    assert "policies[2] (line 4): missing key 'object'" in text
    assert parts(services).policies.lines() == []


def test_casbin_adapter_round_trip(services: Services) -> None:
    parts(services).policies.add(make_line("role:data_steward", "czt", "/s/assets/api/*", "GET"))
    import casbin

    from policies.adapter import MODEL_PATH

    enforcer = casbin.Enforcer(str(MODEL_PATH), DatabaseAdapter(services.engine))
    enforcer.add_named_grouping_policy("g", "caller", "role:data_steward", "czt")
    assert enforcer.enforce("caller", "czt", "/s/assets/api/items", "GET")
    with services.engine.connect() as conn:
        before = read_version(conn)  # users created by the fixture counted too
    enforcer.add_policy("user:x", "czt", "/s/assets/*", "*", "deny")  # written through
    with services.engine.connect() as conn:
        assert read_version(conn) == before + 1
    assert len(parts(services).policies.lines()) == 2
    assert casbin_enforcer(parts(services).policies.lines()).get_policy()


def test_cli_add_list_test_remove(services: Services, env: dict[str, str]) -> None:
    from click.testing import CliRunner

    from gateway.cli.main import cli

    runner = CliRunner(env=env)

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    out = run("policy", "test", "role:data_steward", "czt", "/s/assets/api/items", "GET")
    assert out.startswith("deny\tdeny by default rule")
    assert "added" in run("policy", "add", "role:data_steward", "czt", "/s/assets/api/*", "get")
    out = run("policy", "test", "role:data_steward", "czt", "/s/assets/api/items", "GET")
    assert out.startswith("allow\tallow by policy line 1: p, role:data_steward, czt")
    run("policy", "add", "--deny", "dept:czt", "czt", "/s/assets/api/secret*", "*")
    out = run("policy", "test", "role:data_steward", "czt", "/s/assets/api/secret/1", "GET")
    assert out.startswith("deny\tdeny by policy line 2")
    assert "/s/assets/api/secret*" in run("policy", "list", "-d", "czt")
    assert "removed\t2" in run("policy", "remove", "2")
    bad = runner.invoke(cli, ["policy", "add", "boss", "czt", "/s/a/*", "GET"])
    assert bad.exit_code == 1 and "subject 'boss'" in bad.output
    parts(services).policies.refresh()
    assert parts(services).policies.decide(QUERY).allowed


def test_cli_policy_commands_in_both_languages(services: Services, env: dict[str, str]) -> None:
    """Errors and problems in Chinese under zh_CN; the tab-separated lines (added,
    removed, the listing, a decision) the same in both languages."""
    from click.testing import CliRunner

    from gateway.cli.main import cli

    def run(lang: str, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, list(args), env={**env, "LANG": lang, "LC_ALL": lang})
        return result.exit_code, result.stdout, result.stderr

    zh, c = "zh_CN.UTF-8", "C"
    code, out, _ = run(zh, "policy", "add", "role:data_steward", "czt", "/s/assets/api/*", "GET")
    assert code == 0 and out.startswith("added\t1\t")
    assert run(c, "policy", "add", "role:data_steward", "czt", "/s/assets/api/*", "GET")[1] == (
        out.replace("added", "exists"))
    for args in (("policy", "list"),
                 ("policy", "test", "role:data_steward", "czt", "/s/assets/api/x", "GET")):
        assert run(zh, *args)[1] == run(c, *args)[1], args
    code, _, err = run(zh, "policy", "add", "boss", "nodept", "/s/a/../b", "FETCH")
    assert code == 1 and err == (
        "错误：策略行无效\n"
        "  - 主体 'boss'：应为 role:NAME、user:NAME、client:ID 或 dept:CODE\n"
        "  - 对象 '/s/a/../b'：应为 '/s/SYSTEM/path'，末尾可以是 '*'（不得有其他 '*'，"
        "不得有 . 或 .. 路径段，不得有空路径段）\n"
        "  - 操作 'FETCH'：应为 *, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT 之一\n")
    code, _, err = run(c, "policy", "add", "boss", "nodept", "/s/a/../b", "FETCH")
    assert code == 1 and err.startswith(
        "error: bad policy line\n"
        "  - subject 'boss': expected role:NAME, user:NAME, client:ID or dept:CODE\n")
    code, _, err = run(zh, "policy", "add", "dept:nodept", "nodept", "/s/a/*", "GET")
    assert err == ("错误：策略行无效\n"
                   "  - 部门 'nodept' 不存在\n"
                   "  - 主体 'dept:nodept' 中的部门不存在\n")
    assert run(zh, "policy", "remove", "99") == (1, "", "错误：没有这条策略行\n")
    assert run(c, "policy", "remove", "99") == (1, "", "error: no such policy line\n")
    code, _, err = run(zh, "policy", "remove", "a", "b")
    assert code == 2 and "请指定策略行编号，或 SUBJECT DEPARTMENT OBJECT ACTION" in err
    assert run(zh, "policy", "remove", "1")[1].startswith("removed\t1\t")
