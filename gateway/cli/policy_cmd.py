"""``govgate policy add|remove|list|test``: policy lines beside the catalogue.

Every change is audited (through the services' admin-change hook) and reaches
every running gateway process within one second.
"""

from __future__ import annotations

import getpass
from types import SimpleNamespace

import click

from gateway.admin.policy_lines import (
    case_sensitive_paths,
    client_department,
    line_problems,
    new_line,
    system_owner,
    test_subject,
)
from gateway.cli.context import CliContext, input_error, pass_cli
from gateway.errors import NotFound, ValidationError
from gateway.proxy.through import decide_for
from policies import Policies, PolicyLine


def _policies(cli_ctx: CliContext) -> Policies:
    services = cli_ctx.services
    return Policies(services.engine, clock=services.clock,
                    on_change=services.record_admin_change)


def _line(cli_ctx: CliContext, subject: str, department: str, obj: str, action: str,
          effect: str, ungoverned: str | None = None) -> PolicyLine:
    try:
        return new_line(subject, department, obj, action, effect, ungoverned)
    except ValidationError as exc:
        raise ValidationError(cli_ctx.msg("policy.bad_line"), problems=exc.problems) from None


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.group()
def policy() -> None:
    """Policy lines: who (besides a system's own department) may call what."""


_ARGS = [
    click.argument("subject"),
    click.argument("department"),
    click.argument("object", metavar="OBJECT"),
    click.argument("action"),
]


def _with_args(f):  # type: ignore[no-untyped-def]
    for deco in reversed(_ARGS):
        f = deco(f)
    return f


@policy.command("add")
@_with_args
@click.option("--deny", is_flag=True, help="An explicit deny line (deny wins).")
@click.option("--ungoverned", "reason", default=None, metavar="REASON",
              help="Let another department reach a system that publishes catalogue "
                   "resources without the catalogue, and say why.")
@pass_cli
def policy_add(cli_ctx: CliContext, subject: str, department: str, object: str, action: str,
               deny: bool, reason: str | None) -> None:
    """Add a line, e.g. `policy add role:data_steward czt '/s/assets/api/*' GET`.

    Adding an existing line again with --ungoverned marks it (or changes its reason)."""
    line = _line(cli_ctx, subject, department, object, action, "deny" if deny else "allow",
                 reason)
    problems = line_problems(cli_ctx.services.engine, line, reason)
    if problems:
        raise ValidationError(cli_ctx.msg("policy.bad_line"), problems=problems)
    stored, created = _policies(cli_ctx).add(line, actor=_actor())
    click.echo(f"{'added' if created else 'exists'}\t{stored.id}\t{stored}")


@policy.command("remove")
@click.argument("args", nargs=-1, required=True, metavar="ID | SUBJECT DEPARTMENT OBJECT ACTION")
@click.option("--deny", is_flag=True, help="Remove the deny line (not the allow line).")
@pass_cli
def policy_remove(cli_ctx: CliContext, args: tuple[str, ...], deny: bool) -> None:
    """Remove a line by its id or by its fields."""
    if len(args) == 1 and args[0].isdigit():
        line = PolicyLine("", "", "", "", id=int(args[0]))
    elif len(args) == 4:
        line = _line(cli_ctx, *args, "deny" if deny else "allow")
    else:
        raise click.UsageError(cli_ctx.msg("policy.remove_usage"))
    gone = _policies(cli_ctx).remove(line, actor=_actor())
    if gone is None:
        raise NotFound(cli_ctx.msg("policy.no_such_line"))
    click.echo(f"removed\t{gone.id}\t{gone}")


@policy.command("list")
@click.option("--department", "-d", default=None, help="Only lines of this department.")
@click.option("--subject", "-s", default=None, help="Only lines of this subject.")
@pass_cli
def policy_list(cli_ctx: CliContext, department: str | None, subject: str | None) -> None:
    """List the lines."""
    click.echo("id\tsubject\tdepartment\tobject\taction\teffect\tungoverned")
    for line in _policies(cli_ctx).lines(department=department, subject=subject):
        click.echo(f"{line.id}\t{line.subject}\t{line.department}\t{line.object}\t"
                   f"{line.action}\t{line.effect}\t{line.ungoverned or ''}")


@policy.command("test")
@_with_args
@click.option("--client", "client_id", default=None, metavar="CLIENT_ID",
              help="A user:NAME subject's token issued to this client: a client of "
                   "another department (or of none) is decided for both, as the proxy "
                   "does.")
@pass_cli
def policy_test(cli_ctx: CliContext, subject: str, department: str, object: str,
                action: str, client_id: str | None) -> None:
    """Print allow or deny and what decided it. A user:NAME subject is expanded to the
    user's roles and department, as the proxy does."""
    if client_id is not None and not subject.startswith("user:"):
        raise input_error("policy.client_needs_user")
    with cli_ctx.services.engine.connect() as conn:
        who = test_subject(conn, subject, department)
        owner = system_owner(conn, object)
        exact = case_sensitive_paths(conn, object)
        home = client_department(conn, client_id) if client_id is not None else None
    caller = SimpleNamespace(username=who["username"], client_id=client_id or who["client_id"],
                             roles=frozenset(who["roles"]), department=who["department"],
                             client_department=home if client_id else who["department"])
    decision, _ = decide_for(_policies(cli_ctx), caller, object, action.upper(), owner, exact)
    click.echo(f"{decision.outcome}\t{decision.reason}")
