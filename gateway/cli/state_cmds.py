"""``govgate apply`` and ``govgate export``: the declarative state file."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, pass_cli, write_output
from gateway.cli.session_cmd import end_sessions
from gateway.statefile import dump_yaml, export_state, load_file
from statedoc import Change


@click.command()
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="State file (YAML).",
)
@click.option("--dry-run", is_flag=True, help="Validate and show the plan; write nothing.")
@pass_cli
def apply(cli_ctx: CliContext, path: str, dry_run: bool) -> None:
    """Apply a state file: regions, departments, users, systems, clients.
    Idempotent; nothing is written if any entry is invalid."""
    doc = load_file(path)
    changes = cli_ctx.gateway.state_applier().apply(doc, dry_run=dry_run)
    if not dry_run:
        _end_sessions_of_disabled(cli_ctx, changes)
    report(cli_ctx, changes, dry_run)


def report(cli_ctx: CliContext, changes: list[Change], dry_run: bool) -> None:
    """The plan or what was applied: one line a change, then a summary."""
    for change in changes:
        click.echo(str(change))
    if not changes:
        click.echo(cli_ctx.msg("apply.nothing"))
    elif dry_run:
        click.echo(cli_ctx.msg("apply.dry_run"))
    else:
        click.echo(cli_ctx.msg("apply.summary", n=len(changes)))


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="-",
    help="Write to this file instead of standard output.",
)
@pass_cli
def export(cli_ctx: CliContext, output: str) -> None:
    """Write the current state (without secrets) in the state-file format."""
    text = dump_yaml(export_state(cli_ctx.services.engine, cli_ctx.gateway.state_sections()))
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_output(output, text)


def _end_sessions_of_disabled(cli_ctx: CliContext, changes: list[Change]) -> None:
    """A user or client the file disables loses their sessions and tokens at once, as
    with ``govgate user disable`` and ``govgate client disable``."""
    services = cli_ctx.services
    provider = cli_ctx.gateway.provider
    for change in changes:
        if (
            change.kind == "user"
            and "status" in change.fields
            and services.org.get_user(change.key).status == "disabled"
        ):
            end_sessions(cli_ctx, change.key)
        if change.kind == "client" and "status" in change.fields:
            registry = provider.server.clients
            registry.invalidate()  # the file has just changed what it may have cached
            found = registry.get(change.key, include_disabled=True)
            if found is not None and found.status == "disabled":
                provider.end_client_tokens(change.key)
