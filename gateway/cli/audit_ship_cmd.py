"""``govgate audit ship``: append the audit records not shipped yet to the JSON-lines
file a log collector tails (:mod:`audit.ship`). ``govgate serve`` ships once a second
by itself; this is for a host where no gateway runs (a timer) and to catch up."""

from __future__ import annotations

from pathlib import Path

import click

from audit.ship import ship
from gateway.cli.context import CliContext, input_error, pass_cli


@click.command("ship")
@click.option("--to", "to", type=click.Path(dir_okay=False), default=None,
              help="The file (default: the audit_ship_file setting).")
@pass_cli
def ship_cmd(cli_ctx: CliContext, to: str | None) -> None:
    """Append the records not shipped yet to the file a log collector tails."""
    path = Path(to) if to else cli_ctx.settings.audit_ship_path
    if path is None:
        raise input_error("audit.ship_no_target")
    engine = cli_ctx.services.engine
    total = 0
    while True:
        done = ship(engine, path)
        if done is None:
            click.echo(cli_ctx.msg("audit.ship_busy", path=path))
            return
        if not done.records:
            break
        total += done.records
    cli_ctx.record("audit_ship", "audit records shipped (cli)", records=total, file=str(path))
    click.echo(cli_ctx.msg("audit.shipped", records=total, path=path))
