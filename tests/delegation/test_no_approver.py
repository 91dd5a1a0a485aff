"""A request nobody can approve says so (walk of 2026-12-05, second): the department's
sole head asked to be a colleague's delegate cannot decide it (nobody decides a
delegation they are party to), and the page said only "待审批", for ever. Now the
list names who decides each request, or why nobody can and what to do, in both
languages; once another head is appointed, the page names them and they decide."""

from __future__ import annotations

import re
from datetime import timedelta

from starlette.testclient import TestClient

from tests.delegation.test_pages import signed_in
from tests.oauth2.helpers import csrf_of
from tests.proxy.conftest import World


def _ask(client: TestClient, world: World, delegate: str) -> tuple[int, str]:
    page = client.get("/portal/delegations")
    end = (world.services.clock() + timedelta(days=3)).date().isoformat()
    r = client.post("/portal/delegations", data={
        "csrf_token": csrf_of(page.text), "delegate": delegate, "systems": ["echo"],
        "ends_at": end, "reason": "出差期间代为办理"})
    assert r.status_code == 200, r.text  # the redirect followed: the list
    number = int(re.search(r"[?&]id=(\d+)", str(r.url)).group(1))  # type: ignore[union-attr]
    return number, r.text


def _row(page: str, number: int) -> str:
    found = re.search(rf'<tr id="delegation-{number}".*?</tr>', page, re.S)
    assert found, page
    return found.group(0)


def test_the_sole_head_as_delegate_is_told_nobody_can_approve(quick: World) -> None:
    a, head, b = (signed_in(quick, u) for u in ("li.ming", "zhao.head", "wang.fang"))
    number, page = _ask(a, quick, "zhao.head")
    assert f"已提交委托申请 #{number}，但目前无人能审批" in page
    row = _row(page, number)
    assert "无人能审批：本部门的部门负责人 赵主任（zhao.head） 是此委托的一方" in row
    assert "请系统管理员为本部门另指定一名部门负责人" in row
    # the head, the delegate: no approve button, the same explanation
    page = head.get("/portal/delegations?lang=en").text
    assert f'id="approve-{number}"' not in page
    assert ("Nobody can approve it: the department&#39;s head, 赵主任 (zhao.head), is party "
            "to it" in _row(page, number))
    assert "Ask a system administrator to make another person of the department its head" in page

    # an ordinary request names its head
    other, page = _ask(a, quick, "wang.fang")
    assert f"已提交委托申请 #{other}，等待部门负责人批准：赵主任（zhao.head）。" in page
    assert "由 赵主任（zhao.head） 审批" in _row(page, other)

    # another head appointed: the page names them, and they decide
    quick.services.org.add_role("wang.fang", "dept_head")
    page = b.get("/portal/delegations").text
    assert "由 王芳（wang.fang） 审批" in _row(page, number)
    assert "无人能审批" not in _row(page, number)
    r = b.post(f"/portal/delegations/{number}/approve", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and f'id="delegation-{number}" data-state="approved"' in r.text
