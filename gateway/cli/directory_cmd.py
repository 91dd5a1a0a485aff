"""``govgate directory sync [--dry-run]``: the directory's departments, users, roles
and disabled accounts into the gateway (docs/directory.md)."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, CommandError, pass_cli
from gateway.cli.session_cmd import end_sessions
from gateway.directory import DirectoryClient, DirectoryConfig, SyncConflict, SyncPlan, sync
from gateway.directory.sync import NOT_READ_LISTED
from gateway.i18n import render


@click.group()
def directory() -> None:
    """LDAP / Active Directory."""


@directory.command("sync")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@pass_cli
def sync_cmd(cli_ctx: CliContext, dry_run: bool) -> None:
    """Sync departments, users, roles and disabled accounts from the directory.
    Never deletes; a conflict applies nothing."""
    config = DirectoryConfig.from_settings(cli_ctx.settings)
    if config is None:
        raise CommandError(cli_ctx.msg("directory.not_configured"))
    try:
        plan = sync(cli_ctx.services, DirectoryClient(config), dry_run=dry_run)
    except SyncConflict as exc:
        for problem in exc.problems:
            click.echo(f"! {render(problem, cli_ctx.lang)}")
        raise
    for change in plan.changes:
        click.echo(str(change))
    for username in plan.held:
        click.echo(cli_ctx.msg("directory.held", user=username))
    for username in plan.returned:
        click.echo(cli_ctx.msg("directory.returned", user=username))
    _not_read(cli_ctx, plan)
    _unusable(cli_ctx, plan)
    _summary(cli_ctx, plan, dry_run)
    if not dry_run:
        for username in plan.newly_disabled():
            end_sessions(cli_ctx, username)


def _not_read(cli_ctx: CliContext, plan: SyncPlan) -> None:
    """What the sync did not read, so the operator knows whose roles it does not
    decide: the references not followed, the mapped groups' members in other domains
    or forests, outside the base DN and under a reference (the first NOT_READ_LISTED
    of each)."""
    for uri in plan.references[:NOT_READ_LISTED]:
        click.echo(cli_ctx.msg("directory.reference", uri=uri))
    for key, pairs in (("directory.foreign", plan.foreign), ("directory.outside", plan.outside),
                       ("directory.referred", plan.referred)):
        for group, member in pairs[:NOT_READ_LISTED]:
            click.echo(cli_ctx.msg(key, group=group, member=member))
    for more in (len(plan.references), len(plan.foreign), len(plan.outside),
                 len(plan.referred)):
        if more > NOT_READ_LISTED:
            click.echo(cli_ctx.msg("directory.not_listed", n=more - NOT_READ_LISTED))


def _unusable(cli_ctx: CliContext, plan: SyncPlan) -> None:
    """The people skipped for a username that is none of govgate's (the first
    NOT_READ_LISTED; the value shown as a literal, any control character escaped)."""
    for dn, name in plan.unusable[:NOT_READ_LISTED]:
        click.echo(cli_ctx.msg("directory.unusable", dn=dn, name=repr(name)))
    if len(plan.unusable) > NOT_READ_LISTED:
        click.echo(cli_ctx.msg("directory.not_listed", n=len(plan.unusable) - NOT_READ_LISTED))


def _summary(cli_ctx: CliContext, plan: SyncPlan, dry_run: bool) -> None:
    click.echo(cli_ctx.msg("directory.summary", people=plan.people,
                           created=plan.count("create"), updated=plan.count("update"),
                           disabled=len(plan.disabled), skipped=len(plan.skipped)))
    if plan.unusable:
        click.echo(cli_ctx.msg("directory.unusable_count", n=len(plan.unusable)))
    if not plan.changes:
        click.echo(cli_ctx.msg("apply.nothing"))
    elif dry_run:
        click.echo(cli_ctx.msg("apply.dry_run"))
    else:
        click.echo(cli_ctx.msg("apply.summary", n=len(plan.changes)))
