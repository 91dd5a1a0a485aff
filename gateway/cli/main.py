"""The ``govgate`` command.

Exit codes: 0 ok, 1 failed, 2 usage. Messages follow the locale: Chinese when
LANG (or LC_ALL / LC_MESSAGES) is zh_*, English otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from gateway.cli import (
    admin_cmds,
    audit_partitions_cmd,
    audit_ship_cmd,
    break_glass_cmd,
    catalogue_cmd,
    client_cmd,
    compliance_cmd,
    delegation_cmd,
    directory_cmd,
    init_cmd,
    keys_cmd,
    passkey_cmd,
    policy_cmd,
    saml_cmd,
    serve_cmd,
    session_cmd,
    state_cmds,
    steward_cmds,
    system_cmd,
)
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

    cli.add_command(init_cmd.init)
    cli.add_command(serve_cmd.serve)
    cli.add_command(serve_cmd.demo)
    cli.add_command(state_cmds.apply)
    cli.add_command(state_cmds.export)
    cli.add_command(admin_cmds.user)
    cli.add_command(admin_cmds.dept)

    cli.add_command(client_cmd.client)
    cli.add_command(session_cmd.session)
    cli.add_command(keys_cmd.keys)

    cli.add_command(policy_cmd.policy)
    audit_group = __import__("gateway.cli.audit_cmd", fromlist=["audit"]).audit
    cli.add_command(audit_group)
    audit_group.add_command(audit_ship_cmd.ship_cmd)
    audit_group.add_command(audit_partitions_cmd.partitions_cmd)

    cli.add_command(catalogue_cmd.catalogue)
    cli.add_command(steward_cmds.calendar)
    catalogue_cmd.catalogue.add_command(steward_cmds.escalate_overdue)
    catalogue_cmd.catalogue.add_command(steward_cmds.webhook_secret)
    cli.add_command(saml_cmd.saml)
    cli.add_command(compliance_cmd.compliance)
    cli.add_command(directory_cmd.directory)
    cli.add_command(break_glass_cmd.break_glass)
    cli.add_command(delegation_cmd.delegation)
    cli.add_command(passkey_cmd.passkey)
    cli.add_command(system_cmd.system)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="govgate", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
