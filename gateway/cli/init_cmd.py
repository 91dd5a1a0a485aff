"""``govgate init``: schema, master key, first keys and the three admin accounts."""

from __future__ import annotations

import click
import sqlalchemy as sa

from gateway.cli.context import CliContext, pass_cli
from gateway.passwords import generate_password
from gateway.setup import initialise


@click.command()
@click.option(
    "--admin-password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the admins' first passwords to this file (mode 0600) instead of the terminal.",
)
@pass_cli
def init(cli_ctx: CliContext, admin_password_file: str | None) -> None:
    """Create or upgrade the schema, the master key, the first signing keys and the
    three admin accounts (sysadmin, secadmin, auditor). Safe to run again."""
    settings = cli_ctx.settings
    created = initialise(settings, password_factory=generate_password)
    db = sa.engine.make_url(settings.db_url).render_as_string(hide_password=True)
    click.echo(cli_ctx.msg("init.done", home=settings.home, db=db))
    if created:
        lines = [f"{username}\t{password}" for username, password in created]
        if admin_password_file:
            import os

            fd = os.open(admin_password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            click.echo(cli_ctx.msg("init.admins") + f" {admin_password_file}")
        else:
            click.echo(cli_ctx.msg("init.admins"))
            for line in lines:
                click.echo(f"  {line}")
