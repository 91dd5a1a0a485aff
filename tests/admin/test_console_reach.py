"""What an operator could only do in the state file, or could not see, reached from the
CLI, the admin API and the console (a Keycloak administrator does these in its admin
console): the second factor's lock in the user lists and its unlock, the decision test
through a client on the security console's page."""

from __future__ import annotations

import html
import re

from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.cli.main import cli
from gateway.factor_failures import FactorFailures
from gateway.services import Services
from gateway.tables import user_factor_failures
from tests.admin.conftest import as_session, bearer
from tests.admin.test_operations import changes

API = "/api/v1/admin"


def cli_run(services: Services, *args: str) -> tuple[int, str]:
    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url, "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def wrong_codes(services: Services, username: str, count: int) -> FactorFailures:
    """``count`` wrong second-factor codes of ``username`` in a row, as the sign-in
    counts them (each counted before its check, none passed)."""
    failures = FactorFailures(services.engine, limit=services.settings.mfa_failure_limit,
                              clock=services.clock)
    user_id = services.org.get_user(username).id
    for _ in range(count):
        failures.attempt(user_id)
    return failures


def lock_codes(services: Services, username: str) -> None:
    """The codes' lock as the limit-th wrong code leaves it (the row the sign-in
    writes; guessing a hundred codes here would only cost time)."""
    limit = services.settings.mfa_failure_limit
    now = services.clock()
    with services.engine.begin() as conn:
        conn.execute(user_factor_failures.insert().values(
            user_id=services.org.get_user(username).id, failures=limit,
            last_failed_at=now, locked_at=now))


def listed(client: TestClient, headers: dict[str, str], username: str) -> dict[str, object]:
    found = client.get(f"{API}/users", headers=headers, params={"q": username}).json()
    return next(u for u in found["users"] if u["username"] == username)


def test_the_codes_lock_is_listed_and_lifted_in_the_api_the_cli_and_the_console(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    limit = services.settings.mfa_failure_limit
    lock_codes(services, "zhang.san")
    wrong_codes(services, "li.si", 3)
    h = bearer(services, "sysadmin")

    # the API: the lock and the count, beside the account's state (active: the
    # account lock ran out, the codes' lock does not)
    zhang = listed(client, h, "zhang.san")
    assert (zhang["state"], zhang["factor_locked"], zhang["factor_failures"]) == (
        "active", True, limit)
    li = listed(client, h, "li.si")
    assert (li["factor_locked"], li["factor_failures"]) == (False, 3)
    assert listed(client, h, "zhao.min")["factor_failures"] == 0

    # the CLI's list: two columns at the end
    code, out = cli_run(services, "user", "list", "-d", "jgswj")
    assert code == 0
    head, *rows = out.splitlines()
    assert head.endswith("\tfactor_locked\tfactor_failures")
    columns = {r.split("\t")[0]: r.split("\t")[-2:] for r in rows}
    assert columns["zhang.san"] == ["yes", str(limit)] and columns["li.si"] == ["no", "3"]

    # the console: marked with the count, the unlock offered
    as_session(services, client, "sysadmin")
    page = client.get("/portal/admin/users", params={"q": "zhang.san"}).text
    row = re.search(r'<tr data-user="zhang.san">(.*?)</tr>', page, re.S)
    assert row and f"验证码已锁定（连续输错 {limit} 次）" in row.group(1)
    assert 'data-action="unlock"' in row.group(1)
    english = client.get("/portal/admin/users", params={"q": "zhang.san", "lang": "en"}).text
    assert f"codes locked ({limit} wrong in a row)" in english

    # the API's unlock lifts it, audited with before and after
    client.cookies.clear()
    r = client.post(f"{API}/users/zhang.san/unlock", headers=h)
    assert r.status_code == 200
    assert (r.json()["user"]["factor_locked"], r.json()["user"]["factor_failures"]) == (
        False, 0)
    record = changes(services, "user_unlock")[-1]["extra"]
    assert record["before"]["factor_locked"] is True and record["after"]["factor_locked"] \
        is False
    failures = FactorFailures(services.engine, limit=limit)
    assert not failures.locked(services.org.get_user("zhang.san").id)

    # the CLI's unlock too, audited as the operator's change
    lock_codes(services, "zhang.san")
    code, out = cli_run(services, "user", "unlock", "zhang.san")
    assert code == 0
    assert not failures.locked(services.org.get_user("zhang.san").id)
    assert changes(services, "user_unlocked")[-1]["extra"]["user"] == "zhang.san"
    code, out = cli_run(services, "user", "list", "-d", "jgswj")
    columns = {r.split("\t")[0]: r.split("\t")[-2:] for r in out.splitlines()[1:]}
    assert columns["zhang.san"] == ["no", "0"]


def test_the_decision_page_asks_through_a_client_as_the_cli_does(
        world: tuple[Services, TestClient]) -> None:
    """zhang.san of jgswj may open jgswj's offices himself; through czt's
    finance-system the proxy decides for both sides, and czt's side is refused. The
    console's decision test had no client field (the API and the CLI had)."""
    services, client = world
    as_session(services, client, "secadmin")
    ask = {"subject": "user:zhang.san", "system": "offices", "path": "/", "method": "GET"}

    def decided(**more: str) -> tuple[str, str]:
        page = client.get("/portal/admin/policies", params={**ask, **more})
        assert page.status_code == 200, page.text[:300]
        outcome = re.search(r'id="decision-outcome">([^<]+)<', page.text)
        # the stored reason is the last code of the span (a reading may come first)
        span = re.search(r'id="decision-reason">(.*?)</p>', page.text, re.S)
        assert outcome and span, page.text[:500]
        return outcome.group(1), html.unescape(re.findall(r"<code>([^<]*)</code>",
                                                          span.group(1))[-1])

    assert decided()[0] == "允许"
    outcome, reason = decided(client="finance-system")
    code, out = cli_run(services, "policy", "test", "user:zhang.san", "jgswj", "/s/offices/",
                        "GET", "--client", "finance-system")
    assert code == 0 and out.strip() == f"deny\t{reason}"
    assert outcome == "拒绝" and "client finance-system of czt" in reason
    page = client.get("/portal/admin/policies", params={**ask, "client": "finance-system"}).text
    assert 'id="t-client" value="finance-system"' in page
    # the same client with a subject that is no user: said on the page, in its language
    page = client.get("/portal/admin/policies", params={
        **ask, "subject": "role:staff", "client": "finance-system", "lang": "en"}).text
    assert 'id="test-error"' in page and "a client goes with a user:NAME subject" in page
