"""``govgate catalogue ...``: the data-sharing catalogue, applications and grants.

    list | show CODE | search [Q] | publish CODE | retire CODE | duplicates
    import FILE (.yaml/.yml or .csv) [--dry-run] | export [--format yaml|csv] [--grants]
    apply-for CODE --department D --items a,b --purpose P --until YYYY-MM-DD
    approve ID [--items a] [--until D] | reject ID --reason R | escalate ID --reason R
    close ID --reason R | overdue | grants [--department D] [--active] | revoke ID --reason R

The operator on the gateway host acts as ``cli:<os user>`` with every right;
``--as USERNAME`` acts as that user instead, with that user's department and
roles checked as the API checks them. Every change is audited.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from catalogue import Actor, InvalidInput
from catalogue.io import MAX_IMPORT_BYTES, dump_yaml, load_yaml
from catalogue.model import Application, Grant, Resource
from gateway.cli.context import CliContext, CommandError, pass_cli, read_input, write_output
from gateway.errors import ValidationError
from gateway.i18n import render


def _os_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextlib.contextmanager
def _problems() -> Iterator[None]:
    """Catalogue validation errors as the CLI's one-problem-a-line list."""
    try:
        yield
    except InvalidInput as exc:
        raise ValidationError(exc.description, problems=exc.problems) from None


def _actor(cli_ctx: CliContext, as_user: str | None) -> Actor:
    if not as_user:
        return Actor(_os_user(), operator=True)
    user = cli_ctx.services.org.get_user(as_user)
    return Actor(user.username, user.department, frozenset(user.roles))


_AS = click.option("--as", "as_user", default=None, metavar="USERNAME",
                   help="Act as this user (their department and roles are checked).")


def _items(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _resource_line(r: Resource) -> str:
    return (f"{r.code}\t{r.name}\t{r.provider}\t{r.system}\t{r.share_type}\t{r.status}\t"
            f"v{r.version}\t{len(r.items)} items")


def _app_line(a: Application) -> str:
    return (f"{a.id}\t{a.resource}\t{a.consumer}\t{a.status}\t{','.join(a.items)}\t"
            f"{a.purpose}\tuntil {a.until}\tdue {a.due_at:%Y-%m-%d %H:%M}Z")


def _grant_line(g: Grant, now: Any) -> str:
    who = g.consumer + (f"/{g.client_id}" if g.client_id else "")
    return (f"{g.id}\t{g.resource}\t{who}\t{g.state_at(now)}\t{','.join(g.items)}\t"
            f"{g.purpose}\tuntil {g.until}")


@click.group()
def catalogue() -> None:
    """The data-sharing catalogue (政务信息资源目录), applications and grants."""


@catalogue.command("list")
@click.option("--department", "-d", default=None, help="Only this provider's resources.")
@click.option("--share-type", default=None,
              type=click.Choice(["unconditional", "conditional", "none"]))
@click.option("--status", default=None, type=click.Choice(["draft", "published", "retired"]))
@pass_cli
def list_(cli_ctx: CliContext, department: str | None, share_type: str | None,
          status: str | None) -> None:
    """List resources: code, name, provider, system, share type, status, version."""
    for r in cli_ctx.gateway.catalogue.search(department=department,
                                                    share_type=share_type, status=status):
        click.echo(_resource_line(r))


@catalogue.command()
@click.argument("code")
@pass_cli
def show(cli_ctx: CliContext, code: str) -> None:
    """A resource in the state-file format."""

    click.echo(dump_yaml([cli_ctx.gateway.catalogue.get(code)]), nl=False)


@catalogue.command()
@click.argument("q", required=False)
@click.option("--department", "-d", default=None)
@click.option("--share-type", default=None,
              type=click.Choice(["unconditional", "conditional", "none"]))
@click.option("--item", default=None, help="An item name or title.")
@click.option("--level", type=click.IntRange(1, 4), default=None)
@pass_cli
def search(cli_ctx: CliContext, q: str | None, department: str | None, share_type: str | None,
           item: str | None, level: int | None) -> None:
    """Search by keyword, department, share type, item and level."""
    for r in cli_ctx.gateway.catalogue.search(q=q, department=department,
                                                    share_type=share_type, item=item,
                                                    level=level):
        click.echo(_resource_line(r))


def _print_warnings(cli_ctx: CliContext, warnings: list[str]) -> None:
    for w in warnings:
        click.echo(cli_ctx.msg("catalogue.warning", detail=render(w, cli_ctx.lang)), err=True)


@catalogue.command()
@click.argument("code")
@_AS
@pass_cli
def publish(cli_ctx: CliContext, code: str, as_user: str | None) -> None:
    """Publish a resource; warns about items another department already provides."""
    saved, warnings = cli_ctx.gateway.catalogue.publish(_actor(cli_ctx, as_user), code)
    _print_warnings(cli_ctx, warnings)
    click.echo(f"published\t{saved.code}\tv{saved.version}")


@catalogue.command()
@click.argument("code")
@_AS
@pass_cli
def retire(cli_ctx: CliContext, code: str, as_user: str | None) -> None:
    """Retire a resource (consumers lose access at once)."""
    saved, _ = cli_ctx.gateway.catalogue.retire(_actor(cli_ctx, as_user), code)
    click.echo(f"retired\t{saved.code}")


@catalogue.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and plan; write nothing.")
@pass_cli
def import_(cli_ctx: CliContext, file: Path, dry_run: bool) -> None:
    """Import resources (and grants) from state-file YAML, or resources from CSV."""
    cat = cli_ctx.gateway.catalogue
    data = read_input(file, MAX_IMPORT_BYTES)  # never a file of any size, nor a stream
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        raise CommandError(cli_ctx.msg("catalogue.not_utf8", file=file)) from None
    with _problems():
        if file.suffix.lower() == ".csv":
            planned, warnings = cat.import_csv(text, actor=_os_user(), dry_run=dry_run)
        else:
            planned, warnings = cat.import_doc(load_yaml(text), actor=_os_user(),
                                               dry_run=dry_run)
    _print_warnings(cli_ctx, warnings)
    for p in planned:
        click.echo(str(p))
    if not planned:
        click.echo(cli_ctx.msg("catalogue.nothing"))
    elif dry_run:
        click.echo(cli_ctx.msg("catalogue.dry_run"))


@catalogue.command()
@click.option("--format", "fmt", type=click.Choice(["yaml", "csv"]), default="yaml")
@click.option("--grants", is_flag=True, help="YAML only: include the active grants.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
@pass_cli
def export(cli_ctx: CliContext, fmt: str, grants: bool, output: Path | None) -> None:
    """Export the catalogue as state-file YAML or as CSV (one row per item)."""
    cat = cli_ctx.gateway.catalogue
    text = cat.export_csv() if fmt == "csv" else cat.export_yaml(with_grants=grants)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text)


@catalogue.command()
@pass_cli
def duplicates(cli_ctx: CliContext) -> None:
    """Every item another department already provides as authoritative (一数一源)."""
    found = cli_ctx.gateway.catalogue.duplicates()
    for o in found:
        click.echo(render(o.message(), cli_ctx.lang))
    if not found:
        click.echo(cli_ctx.msg("catalogue.no_duplicates"))


@catalogue.command("apply-for")
@click.argument("code")
@click.option("--department", "-d", default=None,
              help="The consumer department (default: the --as user's).")
@click.option("--items", required=True, help="Comma-separated item names.")
@click.option("--purpose", required=True, help="用途.")
@click.option("--until", required=True, help="Last day, YYYY-MM-DD.")
@click.option("--from", "valid_from", default=None, help="First day, YYYY-MM-DD.")
@click.option("--basis", default="", help="依据.")
@click.option("--client", default=None, help="Only this client of the department.")
@_AS
@pass_cli
def apply_for(cli_ctx: CliContext, code: str, department: str | None, items: str,
              purpose: str, until: str, valid_from: str | None, basis: str,
              client: str | None, as_user: str | None) -> None:
    """Apply for a conditional resource (申请)."""
    actor = _actor(cli_ctx, as_user)
    if department is not None:
        cli_ctx.services.org.department_region(department)  # NotFound: an application for no one
    with _problems():
        app = cli_ctx.gateway.workflow.apply(
            actor, code, consumer=department, items=_items(items) or [], purpose=purpose,
            until=until, valid_from=valid_from, basis=basis, client_id=client)
    click.echo(_app_line(app))


@catalogue.command()
@click.argument("application_id", type=int)
@click.option("--items", default=None, help="Narrow to these items (comma-separated).")
@click.option("--until", default=None, help="Narrow to this last day.")
@click.option("--note", default="")
@_AS
@pass_cli
def approve(cli_ctx: CliContext, application_id: int, items: str | None, until: str | None,
            note: str, as_user: str | None) -> None:
    """Approve an application (possibly narrowing); prints the grant."""
    with _problems():
        grant = cli_ctx.gateway.workflow.approve(_actor(cli_ctx, as_user), application_id,
                                               items=_items(items), until=until, note=note)
    click.echo(_grant_line(grant, cli_ctx.services.clock()))


def _decision(kind: str, doc: str) -> click.Command:
    @click.argument("application_id", type=int)
    @click.option("--reason", required=True)
    @_AS
    @pass_cli
    def run(cli_ctx: CliContext, application_id: int, reason: str, as_user: str | None) -> None:
        with _problems():
            app = getattr(cli_ctx.gateway.workflow, kind)(_actor(cli_ctx, as_user),
                                                        application_id, reason)
        click.echo(_app_line(app))

    run.__doc__ = doc
    return catalogue.command(kind)(run)


_decision("reject", "Reject an application, with the reason.")
_decision("escalate", "Escalate a rejected application to the security admin (协商).")
_decision("close", "End an escalated application without a grant.")


@catalogue.command()
@click.option("--department", "-d", default=None, help="Only this provider's.")
@pass_cli
def overdue(cli_ctx: CliContext, department: str | None) -> None:
    """Open applications past their due date (10 working days by default)."""
    found = cli_ctx.gateway.workflow.overdue(provider=department)
    for a in found:
        click.echo(_app_line(a))
    if not found:
        click.echo(cli_ctx.msg("catalogue.no_overdue"))


@catalogue.command()
@click.option("--department", "-d", default=None, help="Only this consumer's.")
@click.option("--resource", default=None)
@click.option("--active", is_flag=True, help="Only grants in force now.")
@pass_cli
def grants(cli_ctx: CliContext, department: str | None, resource: str | None,
           active: bool) -> None:
    """List grants: id, resource, consumer[/client], state, items, purpose, until."""
    services = cli_ctx.services
    now = services.clock()
    for g in cli_ctx.gateway.workflow.grants(consumer=department, resource=resource,
                                           active_only=active):
        click.echo(_grant_line(g, now))


@catalogue.command()
@click.argument("grant_id", type=int)
@click.option("--reason", required=True)
@_AS
@pass_cli
def revoke(cli_ctx: CliContext, grant_id: int, reason: str, as_user: str | None) -> None:
    """Revoke a grant; every gateway process stops honouring it within a second."""
    with _problems():
        grant = cli_ctx.gateway.workflow.revoke(_actor(cli_ctx, as_user), grant_id, reason)
    click.echo(_grant_line(grant, cli_ctx.services.clock()))
