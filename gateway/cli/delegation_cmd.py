"""``govgate delegation list|request|approve|revoke`` (委托, docs/delegation.md), and the
demo's approved delegation.

The operator acts in a named person's stead (``--from``, ``--by``): the same rules as
the portal and the API apply to that person (only a department head of the
delegator's department approves, never a party; only what the delegator holds), and
each step is the same ``admin_change`` record, with ``via: cli``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.delegations import Delegation, Delegations
from gateway.root import Gateway
from gateway.web.delegation_common import held_systems, when


@click.group()
def delegation() -> None:
    """Delegations: one user acting for another (委托)."""


def _line(d: Delegation, cli_ctx: CliContext) -> str:
    now = cli_ctx.services.clock()
    return (f"{d.id}\t{d.delegator}\t{d.delegate}\t{d.state_at(now)}\t"
            f"{','.join(d.roles) or '-'}\t{','.join(d.systems) or '-'}\t"
            f"{d.starts_at:%Y-%m-%d %H:%M}\t{d.ends_at:%Y-%m-%d %H:%M}\t{d.reason}")


@delegation.command("list")
@click.option("--user", "username", default="sysadmin", show_default=True,
              help="Whose view: what they gave, received or decide (sysadmin: all).")
@pass_cli
def delegation_list(cli_ctx: CliContext, username: str) -> None:
    """List delegations (id, from, to, state, roles, systems, start, end UTC, reason)."""
    book = Delegations(cli_ctx.services)
    click.echo("id\tfrom\tto\tstate\troles\tsystems\tstarts_at\tends_at\treason")
    for d in book.visible_to(cli_ctx.services.org.get_user(username)):
        click.echo(_line(d, cli_ctx))


@delegation.command("request")
@click.option("--from", "delegator", required=True, help="The user who delegates (A).")
@click.option("--to", "delegate", required=True, help="The colleague who acts (B).")
@click.option("--role", "roles", multiple=True, help="A role of A's to lend (repeatable).")
@click.option("--system", "systems", multiple=True, help="A system A may open (repeatable).")
@click.option("--until", "ends_at", required=True,
              help="The last day (2026-12-31, China time) or a date-time with its offset.")
@click.option("--reason", required=True, help="Why.")
@pass_cli
def delegation_request(cli_ctx: CliContext, delegator: str, delegate: str,
                       roles: Sequence[str], systems: Sequence[str], ends_at: str,
                       reason: str) -> None:
    """Ask, in A's stead, for B to act for A; a department head then approves."""
    made = request(cli_ctx.gateway, delegator, delegate, roles, systems, ends_at, reason)
    click.echo(_line(made, cli_ctx))


def request(gateway: Gateway, delegator: str, delegate: str, roles: Sequence[str],
            systems: Sequence[str], ends_at: str, reason: str) -> Delegation:
    services = gateway.services
    a = services.org.get_user(delegator)
    now = services.clock()
    return Delegations(services).request(
        a, delegate=delegate, roles=roles, systems=systems,
        ends_at=when(ends_at, "--until", end=True, now=now), reason=reason,
        held_systems=lambda: held_systems(gateway, a), via="cli")


@delegation.command("approve")
@click.argument("delegation_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--by", "approver", required=True, help="The department head who approves.")
@pass_cli
def delegation_approve(cli_ctx: CliContext, delegation_id: int, approver: str) -> None:
    """Approve, in the department head's stead."""
    services = cli_ctx.services
    done = Delegations(services).approve(services.org.get_user(approver), delegation_id,
                                         via="cli")
    click.echo(_line(done, cli_ctx))


@delegation.command("revoke")
@click.argument("delegation_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--by", "revoker", default="sysadmin", show_default=True,
              help="Who revokes: the delegator, a department head, a system administrator.")
@pass_cli
def delegation_revoke(cli_ctx: CliContext, delegation_id: int, revoker: str) -> None:
    """End a delegation now (every gateway process refuses it within a second)."""
    services = cli_ctx.services
    done = Delegations(services).revoke(services.org.get_user(revoker), delegation_id,
                                        via="cli")
    click.echo(_line(done, cli_ctx))


def demo_delegations(gateway: Gateway, entries: Sequence[Mapping[str, Any]]
                     ) -> list[Delegation]:
    """The demo's delegations (``delegations:`` of demo.yaml, not a state-file
    section): each asked for ``days`` from now and approved by its ``approver``,
    through the same rules and audit records as the portal."""
    services = gateway.services
    out = []
    for e in entries:
        end = (services.clock() + timedelta(days=int(e.get("days", 14)))).isoformat()
        made = request(gateway, e["from"], e["to"], e.get("roles", []), e.get("systems", []),
                       end, e["reason"])
        out.append(Delegations(services).approve(
            services.org.get_user(e["approver"]), made.id, via="cli"))
    return out
