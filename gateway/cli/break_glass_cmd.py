"""``govgate break-glass list``: the break-glass accesses (紧急授权) for the operator,
newest first. Requesting, approving, ending and reviewing need a signed-in person
(two security administrators, the audit administrator): the portal or
``/api/v1/break-glass`` (docs/break-glass.md)."""

from __future__ import annotations

import json

import click

from gateway.break_glass.active import ActiveBreakGlass
from gateway.break_glass.desk import BreakGlassDesk
from gateway.cli.context import CliContext, pass_cli

STATES = ("pending", "active", "expired", "ended", "refused", "lapsed")


@click.group("break-glass")
def break_glass() -> None:
    """Break-glass (紧急授权): emergency access under dual control."""


@break_glass.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only those in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_cli
def break_glass_list(cli_ctx: CliContext, state: str | None, as_json: bool) -> None:
    """List every break-glass: id, holder, system (and resource), state, approvers,
    end, whether it awaits the audit administrator's review."""
    services = cli_ctx.services
    desk = BreakGlassDesk(services, ActiveBreakGlass(services.engine, services.clock))
    found = desk.listing(state=state, limit=1000)
    if as_json:
        for view in found:
            click.echo(json.dumps(view, ensure_ascii=False))
        return
    click.echo("id\tusername\tsystem\tstate\tapprovals\tends_at\tin_review")
    for v in found:
        where = v["system"] + (f"/{v['resource']}" if v["resource"] else "")
        approvers = ",".join(a["approver"] for a in v["approvals"]) or "-"
        click.echo(f"{v['id']}\t{v['username']}\t{where}\t{v['state']}\t{approvers}\t"
                   f"{v['ends_at'] or '-'}\t{str(v['in_review']).lower()}")
