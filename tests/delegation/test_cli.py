"""``govgate delegation list|request|approve|revoke``: the portal's rules, one line per
refusal, the same audit records (``via: cli``)."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from gateway.cli.main import cli
from tests.delegation.conftest import steps
from tests.proxy.conftest import World


def test_the_cli_asks_approves_lists_and_revokes(quick: World) -> None:
    settings = quick.services.settings
    env = {"GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
           "LANG": "C.UTF-8"}

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["delegation", *args], env=env)
        return result.exit_code, result.output

    until = (quick.services.clock() + timedelta(days=5)).date().isoformat()
    code, out = run("request", "--from", "li.ming", "--to", "wang.fang", "--system", "echo",
                    "--until", until, "--reason", "出差")
    assert code == 0, out
    number = out.split("\t", 1)[0]
    assert "\tli.ming\twang.fang\trequested\t-\techo\t" in out
    code, out = run("request", "--from", "li.ming", "--to", "wang.fang", "--role", "auditor",
                    "--until", until, "--reason", "x")
    assert code == 1 and "admin roles are never delegated: auditor" in out
    assert len(out.strip().splitlines()) == 1
    code, out = run("approve", number, "--by", "wang.fang")
    assert code == 1 and "neither party may decide their own delegation" in out
    assert run("approve", number, "--by", "zhao.head")[0] == 0
    code, out = run("list", "--user", "wang.fang")
    assert code == 0 and f"{number}\tli.ming\twang.fang\tapproved\t" in out
    code, out = run("revoke", number)
    assert code == 0 and "\trevoked\t" in out
    assert [(s.change, s.actor_user, s.extra["via"]) for s in steps(quick)] == [
        ("delegation_requested", "li.ming", "cli"),
        ("delegation_refused", "li.ming", "cli"),
        ("delegation_refused", "wang.fang", "cli"),
        ("delegation_approved", "zhao.head", "cli"),
        ("delegation_revoked", "sysadmin", "cli"),
    ]
