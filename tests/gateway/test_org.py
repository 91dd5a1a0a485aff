from datetime import timedelta

import pytest
import sqlalchemy as sa

from gateway.errors import Conflict, NotFound, RoleConflict, ValidationError
from gateway.org import Org, check_roles
from gateway.passwords import policy_problems, verify_password

PW = "Correct-Horse-42"


@pytest.fixture
def org(engine: sa.Engine) -> Org:
    o = Org(engine)
    o.add_region("gx", "某省")
    o.add_region("gx-nn", "某市", parent="gx")
    o.add_department("jgswj", "机关事务管理局", "gx")
    o.add_department("czt", "财政厅", "gx")
    return o


@pytest.mark.parametrize(
    "roles", [["sysadmin", "auditor"], ["secadmin", "sysadmin"], ["auditor", "secadmin", "staff"]]
)
def test_admin_roles_are_mutually_exclusive_in_the_model(roles: list[str]) -> None:
    with pytest.raises(RoleConflict, match="三员分立"):
        check_roles(roles)


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown role 'root'"):
        check_roles(["root"])


def test_add_user_refuses_two_admin_roles_and_writes_nothing(org: Org) -> None:
    with pytest.raises(RoleConflict):
        org.add_user("a.b", "甲乙", "jgswj", ["sysadmin", "auditor"], PW)
    with pytest.raises(NotFound):
        org.get_user("a.b")


def test_adding_a_second_admin_role_later_is_refused(org: Org) -> None:
    org.add_user("sec", "安全员", "jgswj", ["secadmin"], PW)
    with pytest.raises(RoleConflict):
        org.add_role("sec", "auditor")
    assert org.get_user("sec").roles == {"secadmin"}


def test_user_roundtrip_and_password_hashed(org: Org, engine: sa.Engine) -> None:
    user = org.add_user("zhang.san", "张三", "jgswj", ["staff", "data_steward"], PW)
    assert user.roles == {"staff", "data_steward"} and user.region == "gx"
    stored = org.password_hash("zhang.san")
    assert stored and stored.startswith("$argon2id$") and PW not in stored
    assert verify_password(stored, PW) and not verify_password(stored, PW + "x")
    with pytest.raises(Conflict):
        org.add_user("zhang.san", "张三", "jgswj", ["staff"], PW)


def test_department_rules(org: Org) -> None:
    with pytest.raises(NotFound, match="region"):
        org.add_department("x", "某部门", "nowhere")
    with pytest.raises(ValidationError, match=r"another|region"):
        org.add_department("nn-sub", "下级", "gx-nn", parent="czt")
    org.add_department("czt-sub", "财政厅下属", "gx", parent="czt")
    assert {d["code"] for d in org.list_departments()} >= {"czt-sub", "czt", "jgswj"}


def test_weak_password_and_username_as_password(org: Org) -> None:
    with pytest.raises(ValidationError, match="too short"):
        org.add_user("li.si", "李四", "jgswj", ["staff"], "short")
    assert policy_problems("li.si.li.si.1", "li.si.li.si.1")


def test_password_history_blocks_last_five(org: Org) -> None:
    org.add_user("wang.wu", "王五", "czt", ["staff"], PW)
    org.change_password("wang.wu", "Second-Password-1")
    with pytest.raises(ValidationError, match="used recently"):
        org.change_password("wang.wu", PW)


def test_lockout_counter_and_unlock(org: Org) -> None:
    org.add_user("zhao.min", "赵敏", "czt", ["staff"], PW)
    for _ in range(4):
        user = org.record_failure("zhao.min", threshold=5, window_seconds=900)
        assert user.locked_until is None
    user = org.record_failure("zhao.min", threshold=5, window_seconds=900)
    assert user.locked_until is not None and user.failed_logins == 5
    org.unlock_user("zhao.min")
    user = org.get_user("zhao.min")
    assert user.locked_until is None and user.failed_logins == 0


def test_disable_and_reset(org: Org) -> None:
    org.add_user("chen", "陈", "czt", ["staff"], PW)
    org.disable_user("chen")
    assert org.get_user("chen").status == "disabled"
    temp = org.reset_password("chen")
    assert verify_password(org.password_hash("chen"), temp)
    assert org.get_user("chen").must_change


def test_concurrent_failures_are_all_counted(org: Org, engine: sa.Engine) -> None:
    """Parallel wrong passwords for one account, each on its own connection: every one
    counts and the lockout comes at the threshold. Each failure pauses between reading
    the counter and writing it, so a read-then-write that does not lock the row loses
    counts (on PostgreSQL's READ COMMITTED every thread read the same number)."""
    import threading
    import time

    from sqlalchemy import event

    from gateway.clock import FrozenClock

    clock = FrozenClock()
    org.clock = clock
    org.add_user("zhao.min", "赵敏", "czt", ["staff"], PW)
    n, threshold = 10, 10

    def slow_update(_conn, _cursor, sql: str, *_args) -> None:
        if sql.lstrip().upper().startswith("UPDATE USERS"):
            time.sleep(0.05)

    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def fail() -> None:
        try:
            start.wait(5)
            org.record_failure("zhao.min", threshold=threshold, window_seconds=900)
        except BaseException as exc:
            errors.append(exc)

    event.listen(engine, "before_cursor_execute", slow_update)
    try:
        threads = [threading.Thread(target=fail) for _ in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    finally:
        event.remove(engine, "before_cursor_execute", slow_update)
    assert errors == []
    user = org.get_user("zhao.min")
    assert user.failed_logins == n
    assert user.locked_until == clock() + timedelta(seconds=900)

    # one below the threshold, in parallel, locks nothing; the next failure does
    org.unlock_user("zhao.min")
    event.listen(engine, "before_cursor_execute", slow_update)
    try:
        start = threading.Barrier(threshold - 1)
        threads = [threading.Thread(target=fail) for _ in range(threshold - 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    finally:
        event.remove(engine, "before_cursor_execute", slow_update)
    assert errors == []
    user = org.get_user("zhao.min")
    assert user.failed_logins == threshold - 1 and user.locked_until is None
    user = org.record_failure("zhao.min", threshold=threshold, window_seconds=900)
    assert user.failed_logins == threshold
    assert user.locked_until == clock() + timedelta(seconds=900)
