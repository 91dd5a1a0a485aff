"""``govgate audit partitions``: the monthly partitions of the audit records on
PostgreSQL (:mod:`audit.partitions`); ``--ensure`` creates this month and the next
ones, and the months that have records in the DEFAULT partition (moving them in).
``govgate serve`` does the same in its maintenance round; this is for a host where
no gateway runs (a timer) and to see the state."""

from __future__ import annotations

import click
import sqlalchemy as sa

from audit.partitions import AHEAD, ensure_partitions, partitions
from gateway.cli.context import CliContext, pass_cli


@click.command("partitions")
@click.option("--ensure", is_flag=True,
              help=f"Create this month's partition and the next {AHEAD}, and move records "
              "out of the DEFAULT partition.")
@pass_cli
def partitions_cmd(cli_ctx: CliContext, ensure: bool) -> None:
    """List the audit records' monthly partitions (PostgreSQL)."""
    engine = cli_ctx.services.engine
    if engine.dialect.name != "postgresql":
        click.echo(cli_ctx.msg("audit.partitions_sqlite"))
        return
    if ensure:
        now_ms = int(cli_ctx.services.clock().timestamp() * 1000)
        done = ensure_partitions(engine, now_ms)
        cli_ctx.record("audit_partitions", "audit partitions ensured (cli)",
                       created=list(done.created), moved=done.moved)
        click.echo(cli_ctx.msg("audit.partitions_ensured", n=len(done.created),
                               names=", ".join(done.created) or "-", moved=done.moved))
    with engine.connect() as conn:
        for p in partitions(conn):
            rows = conn.execute(sa.select(sa.func.count()).select_from(sa.table(p.name)))
            click.echo(f"{p.month}\t{p.name}\t{rows.scalar_one()}")
