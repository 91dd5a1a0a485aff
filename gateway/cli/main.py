"""The ``govgate`` command.

Exit codes: 0 ok, 1 failed, 2 usage. Messages follow the locale: Chinese when
LANG (or LC_ALL / LC_MESSAGES) is zh_*, English otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from gateway.cli.context import CliContext, GovgateGroup, pass_cli  # noqa: F401 - re-exported
from gateway.i18n import cli_lang


@click.group(cls=GovgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory (default: $GOVGATE_HOME or ./.govgate).",
)
@click.option("--database-url", default=None, help="Database URL (overrides GOVGATE_DATABASE_URL).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, database_url: str | None) -> None:
    """govgate: identity provider, policy-enforcing gateway and audit log
    for government back-office systems."""
    overrides: dict[str, Any] = {}
    if home:
        overrides["home"] = home
    if database_url:
        overrides["database_url"] = database_url
    obj = CliContext(lang=cli_lang(), overrides=overrides)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def _register() -> None:
    from gateway.cli import admin_cmds, init_cmd, keys_cmd, serve_cmd, state_cmds

    cli.add_command(init_cmd.init)
    cli.add_command(serve_cmd.serve)
    cli.add_command(serve_cmd.demo)
    cli.add_command(state_cmds.apply)
    cli.add_command(state_cmds.export)
    cli.add_command(admin_cmds.user)
    cli.add_command(admin_cmds.dept)
    from gateway.cli import client_cmd, session_cmd

    cli.add_command(client_cmd.client)
    cli.add_command(session_cmd.session)
    cli.add_command(keys_cmd.keys)
    from gateway.cli import policy_cmd

    cli.add_command(policy_cmd.policy)
    cli.add_command(__import__("gateway.cli.audit_cmd", fromlist=["audit"]).audit)
    from gateway.cli import catalogue_cmd

    cli.add_command(catalogue_cmd.catalogue)
    from gateway.cli import saml_cmd

    cli.add_command(saml_cmd.saml)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="govgate", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
