"""``govgate client add|list|rotate-secret|disable|enable``: OAuth clients of department systems.

A client secret is generated here (256 bits), shown once and stored only as a
keyed hash (HMAC-SHA-256, or HMAC-SM3 under the gm profile)."""

from __future__ import annotations

import json
import secrets

import click
import sqlalchemy as sa

from gateway.cli.context import CliContext, pass_cli
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.tables import clients


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


@click.group()
def client() -> None:
    """Manage OAuth 2.0 / OpenID Connect clients."""


@client.command("add")
@click.argument("client_id")
@click.option("--name", required=True, help="Display name.")
@click.option("--department", "-d", required=True, help="Owning department code.")
@click.option("--grant-type", "grant_types", multiple=True, required=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
              help="Grant type (repeatable).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True,
              help="Where a logout may send the browser back (repeatable; exact match).")
@click.option("--scope", default="openid profile", show_default=True)
@click.option("--auth-method", default=None,
              type=click.Choice(["client_secret_basic", "client_secret_post",
                                 "private_key_jwt", "none"]),
              help="Token endpoint auth method (default client_secret_basic, or "
                   "private_key_jwt with --jwks-file).")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public JWK set for private_key_jwt.")
@click.option("--backchannel-logout-uri", default=None)
@pass_cli
def client_add(cli_ctx: CliContext, client_id: str, name: str, department: str,
               grant_types: tuple[str, ...], redirect_uris: tuple[str, ...],
               post_logout_uris: tuple[str, ...], scope: str,
               auth_method: str | None, jwks_file: str | None,
               backchannel_logout_uri: str | None) -> None:
    """Register a client; a generated secret is printed once."""

    services = cli_ctx.services
    with services.engine.connect() as conn:
        if conn.execute(sa.select(clients.c.client_id)
                        .where(clients.c.client_id == client_id)).first():
            raise Conflict(cli_ctx.msg("client.exists", cid=repr(client_id)))
    method = auth_method or ("private_key_jwt" if jwks_file else "client_secret_basic")
    entry: dict[str, object] = {
        "client_id": client_id, "name": name, "department": department,
        "grant_types": list(grant_types), "redirect_uris": list(redirect_uris),
        "scope": scope, "token_endpoint_auth_method": method,
    }
    if post_logout_uris:
        entry["post_logout_redirect_uris"] = list(post_logout_uris)
    secret = None
    if method in ("client_secret_basic", "client_secret_post"):
        secret = new_client_secret()
        entry["secret"] = secret
    if jwks_file:
        try:
            with open(jwks_file, encoding="utf-8") as fh:
                entry["jwks"] = json.load(fh)
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
            raise ValidationError(cli_ctx.msg("client.jwks_not_json", file=jwks_file,
                                     detail=str(exc))) from None
    if backchannel_logout_uri:
        entry["backchannel_logout_uri"] = backchannel_logout_uri
    cli_ctx.gateway.state_applier().apply({"clients": [entry]})
    services.record_admin_change("client_added", {"client": client_id, "method": method})
    click.echo(cli_ctx.msg("client.added", cid=client_id))
    if secret:
        click.echo(cli_ctx.msg("client.secret", secret=secret))


@client.command("list")
@pass_cli
def client_list(cli_ctx: CliContext) -> None:
    """List clients (never their secrets)."""

    with cli_ctx.services.engine.connect() as conn:
        rows = conn.execute(sa.select(clients).order_by(clients.c.client_id)).all()
    click.echo("client_id\tname\tdepartment\tgrant_types\tauth_method\tstatus")
    for r in rows:
        click.echo(f"{r.client_id}\t{r.name}\t{r.department_code}\t"
                   f"{','.join(r.grant_types or [])}\t{r.token_endpoint_auth_method}\t{r.status}")


def _update(cli_ctx: CliContext, client_id: str, **values: object) -> None:

    with cli_ctx.services.engine.begin() as conn:
        n = conn.execute(clients.update().where(clients.c.client_id == client_id)
                         .values(**values)).rowcount
    if n == 0:
        raise NotFound(cli_ctx.msg("client.unknown", cid=repr(client_id)))


@client.command("rotate-secret")
@click.argument("client_id")
@pass_cli
def client_rotate(cli_ctx: CliContext, client_id: str) -> None:
    """Replace a client's secret; the new one is printed once."""
    secret = new_client_secret()
    _update(cli_ctx, client_id, secret_hash=cli_ctx.services.hash_client_secret(secret))
    cli_ctx.services.record_admin_change("client_secret_rotated", {"client": client_id})
    click.echo(cli_ctx.msg("client.rotated", cid=client_id))
    click.echo(cli_ctx.msg("client.secret", secret=secret))


@client.command("disable")
@click.argument("client_id")
@pass_cli
def client_disable(cli_ctx: CliContext, client_id: str) -> None:
    """Disable a client: no new tokens, its refresh tokens revoked, and its access
    tokens refused by every gateway process within a second."""
    _update(cli_ctx, client_id, status="disabled")
    cli_ctx.services.record_admin_change("client_disabled", {"client": client_id})
    cli_ctx.gateway.provider.end_client_tokens(client_id)
    click.echo(cli_ctx.msg("client.disabled", cid=client_id))


@client.command("enable")
@click.argument("client_id")
@pass_cli
def client_enable(cli_ctx: CliContext, client_id: str) -> None:
    """Enable a disabled client again. Tokens issued before the disable stay dead; new
    ones work (a process that has not yet seen the change may refuse them for up to
    two seconds)."""
    _update(cli_ctx, client_id, status="active")
    cli_ctx.services.record_admin_change("client_enabled", {"client": client_id})
    click.echo(cli_ctx.msg("client.enabled", cid=client_id))
