"""``govgate audit ship``: append the audit records not shipped yet to the JSON-lines
file a log collector tails (:mod:`audit.ship`), or with ``--syslog`` send them to the
syslog receiver of ``audit_syslog_target`` (:mod:`audit.syslog_ship`). ``govgate
serve`` ships once a second by itself; this is for a host where no gateway runs (a
timer) and to catch up. ``govgate audit stats --shipping`` shows what waits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from audit.ship import ship
from audit.syslog_message import timestamp
from gateway.audit_shipping import lags, syslog_round, syslog_target
from gateway.cli.context import CliContext, input_error, pass_cli


@click.command("ship")
@click.option("--to", "to", type=click.Path(dir_okay=False), default=None,
              help="The file (default: the audit_ship_file setting).")
@click.option("--syslog", "to_syslog", is_flag=True,
              help="Send to the syslog receiver of the audit_syslog_target setting instead.")
@pass_cli
def ship_cmd(cli_ctx: CliContext, to: str | None, to_syslog: bool) -> None:
    """Append the records not shipped yet to the file a log collector tails."""
    if to_syslog:
        _ship_syslog(cli_ctx)
        return
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


def _ship_syslog(cli_ctx: CliContext) -> None:
    target = syslog_target(cli_ctx.settings)
    if target is None:
        raise input_error("audit.syslog_no_target")
    total = syslog_round(cli_ctx.services)  # ShipError: one line, exit 1, nothing marked
    if total is None:
        click.echo(cli_ctx.msg("audit.ship_busy", path=target.address))
        return
    cli_ctx.record("audit_ship", "audit records shipped (cli)", records=total,
                   syslog=target.address)
    click.echo(cli_ctx.msg("audit.shipped", records=total, path=target.address))


def lag_rows(cli_ctx: CliContext) -> list[dict[str, Any]]:
    """``audit stats --shipping``: per target, what it has not accepted yet."""
    found = lags(cli_ctx.services)
    if not found:
        raise input_error("audit.ship_none")
    now = int(time.time() * 1000)
    return [{"target": one.target, "where": one.where, "records": one.lag.records,
             "seconds": round(one.lag.seconds(now), 1),
             "oldest": "" if one.lag.oldest_ts is None else timestamp(one.lag.oldest_ts)}
            for one in found]
