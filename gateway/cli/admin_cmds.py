"""``govgate user ...`` and ``govgate dept ...``."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.cli.session_cmd import end_sessions
from gateway.errors import ValidationError
from gateway.factor_failures import FactorFailures
from gateway.login_throttle import LoginThrottle, address_key
from gateway.passwords import generate_password
from gateway.statefile import contact_problems


@click.group()
def user() -> None:
    """Manage user accounts."""


@user.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Display name (e.g. 张三).")
@click.option("--department", "-d", required=True, help="Department code.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=("staff",),
    show_default=True,
    help="Role (repeatable): staff, data_steward, dept_head, sysadmin, secadmin, auditor.",
)
@click.option(
    "--password", default=None, help="Initial password (default: generate one and print it once)."
)
@click.option("--email", default=None, help="E-mail address (the OpenID Connect email claim).")
@click.option("--phone", default=None,
              help="Phone number, e.g. +86 771 1234567 (the phone_number claim).")
@pass_cli
def user_add(
    cli_ctx: CliContext,
    username: str,
    name: str,
    department: str,
    roles: tuple[str, ...],
    password: str | None,
    email: str | None,
    phone: str | None,
) -> None:
    """Add a user; they must change the password at first login."""

    contact = {k: v for k, v in (("email", email), ("phone_number", phone)) if v is not None}
    problems = contact_problems(contact)
    if problems:
        raise ValidationError(problems[0], problems=problems)
    initial = password or generate_password()
    cli_ctx.services.org.add_user(
        username, name, department, list(roles), initial, must_change=True
    )
    if contact:
        cli_ctx.gateway.state_applier().apply({"users": [{
            "username": username, "name": name, "department": department,
            "roles": list(roles), **contact}]})
    click.echo(cli_ctx.msg("user.added", username=username))
    if password is None:
        click.echo(cli_ctx.msg("user.temp_password", password=initial))


@user.command("list")
@click.option("--department", "-d", default=None, help="Only this department.")
@pass_cli
def user_list(cli_ctx: CliContext, department: str | None) -> None:
    """List users."""
    services = cli_ctx.services
    rows = services.org.list_users(department)
    # the codes' lock (gateway.factor_failures) outlives the account lock: shown beside
    # it with the wrong codes in a row, lifted by `govgate user unlock`
    factors = FactorFailures(services.engine, limit=services.settings.mfa_failure_limit,
                             clock=services.clock).counts([u.id for u in rows])
    click.echo("username\tname\tdepartment\troles\tstatus\tlocked_until\tfactor_locked\t"
               "factor_failures")
    for u in rows:
        count = factors.get(u.id)
        click.echo(
            f"{u.username}\t{u.name}\t{u.department}\t{','.join(sorted(u.roles))}\t"
            f"{u.status}\t{u.locked_until.isoformat() if u.locked_until else '-'}\t"
            f"{'yes' if count and count.locked else 'no'}\t{count.failures if count else 0}"
        )


@user.command("disable")
@click.argument("username")
@pass_cli
def user_disable(cli_ctx: CliContext, username: str) -> None:
    """Disable a user account and end their sessions and refresh tokens everywhere."""
    cli_ctx.services.org.disable_user(username)
    end_sessions(cli_ctx, username)
    click.echo(cli_ctx.msg("user.disabled", username=username))


@user.command("enable")
@click.argument("username")
@pass_cli
def user_enable(cli_ctx: CliContext, username: str) -> None:
    """Enable a disabled user account again."""
    cli_ctx.services.org.enable_user(username)
    click.echo(cli_ctx.msg("user.enabled", username=username))


@user.command("reset-totp")
@click.argument("username")
@pass_cli
def user_reset_totp(cli_ctx: CliContext, username: str) -> None:
    """Forget a user's TOTP authenticator (a lost phone); an admin enrols again at the
    next sign-in."""
    cli_ctx.services.org.reset_totp(username)
    click.echo(cli_ctx.msg("user.totp_reset", username=username))


@user.command("unlock")
@click.argument("username")
@pass_cli
def user_unlock(cli_ctx: CliContext, username: str) -> None:
    """Clear a lockout after failed sign-ins and the lock of the second factor's codes
    after `mfa_failure_limit` wrong ones in a row (`user list`: factor_locked)."""
    cli_ctx.services.org.unlock_user(username)
    click.echo(cli_ctx.msg("user.unlocked", username=username))


@user.command("clear-delay")
@click.argument("address")
@pass_cli
def user_clear_delay(cli_ctx: CliContext, address: str) -> None:
    """Lift the sign-in delay of a source address and forget its failures (an office's
    shared address slowed by someone's mistakes, say)."""
    services = cli_ctx.services
    LoginThrottle.from_settings(services.settings, services.engine, services.clock).clear(
        address_key(address))
    services.record_admin_change("login_delay_cleared", {"address": address})
    click.echo(cli_ctx.msg("user.delay_cleared", address=address))


@user.command("reset-password")
@click.argument("username")
@pass_cli
def user_reset_password(cli_ctx: CliContext, username: str) -> None:
    """Set a temporary password (printed once) that must be changed at next login."""
    password = cli_ctx.services.org.reset_password(username)
    click.echo(cli_ctx.msg("user.reset", username=username))
    click.echo(cli_ctx.msg("user.temp_password", password=password))


@user.command("add-role")
@click.argument("username")
@click.argument("role")
@pass_cli
def user_add_role(cli_ctx: CliContext, username: str, role: str) -> None:
    """Give a user one more role (admin roles stay mutually exclusive)."""
    cli_ctx.services.org.add_role(username, role)
    click.echo(cli_ctx.msg("user.role_added", username=username, role=role))


@click.group()
def dept() -> None:
    """Manage departments."""


@dept.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Department name (e.g. 财政厅).")
@click.option("--region", required=True, help="Region code.")
@click.option("--parent", default=None, help="Parent department code.")
@pass_cli
def dept_add(cli_ctx: CliContext, code: str, name: str, region: str, parent: str | None) -> None:
    """Add a department."""
    cli_ctx.services.org.add_department(code, name, region, parent)
    click.echo(cli_ctx.msg("dept.added", code=code))


@dept.command("list")
@pass_cli
def dept_list(cli_ctx: CliContext) -> None:
    """List departments."""
    click.echo("code\tname\tregion\tparent")
    for d in cli_ctx.services.org.list_departments():
        click.echo(f"{d['code']}\t{d['name']}\t{d['region_code']}\t{d['parent_code'] or '-'}")


@dept.command("rename")
@click.argument("code")
@click.argument("name")
@pass_cli
def dept_rename(cli_ctx: CliContext, code: str, name: str) -> None:
    """Give a department a new name (its code stays)."""
    cli_ctx.services.org.rename_department(code, name)
    click.echo(cli_ctx.msg("dept.renamed", code=code))


@dept.command("move")
@click.argument("code")
@click.option("--parent", default=None,
              help="The new parent department (same region); leave out for the top.")
@pass_cli
def dept_move(cli_ctx: CliContext, code: str, parent: str | None) -> None:
    """Put a department under another one of its region, or at the top."""
    cli_ctx.services.org.move_department(code, parent)
    click.echo(cli_ctx.msg("dept.moved", code=code, parent=parent or "-"))
