"""``govgate apply`` and ``govgate export``: the declarative state file."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.statefile import dump_yaml, export_state, load_file


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
    changes = cli_ctx.services.state_applier().apply(doc, dry_run=dry_run)
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
    text = dump_yaml(export_state(cli_ctx.services.engine))
    if output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
