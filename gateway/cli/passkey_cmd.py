"""``govgate passkey list|remove --user U``: a user's security keys and passkeys
(WebAuthn). Removing them is the way back for someone whose key is lost: at the next
sign-in the password (and TOTP, where set up) leads on, or, for an admin who must use
a key, to registering a new one (docs/webauthn.md, "A lost key"). Audited."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.idp.passkeys.store import PasskeyStore


def _store(cli_ctx: CliContext) -> PasskeyStore:
    services = cli_ctx.services
    return PasskeyStore(services.engine, services.keys, services.clock)


@click.group()
def passkey() -> None:
    """Users' security keys and passkeys (WebAuthn)."""


@passkey.command("list")
@click.option("--user", "username", required=True, help="Whose keys.")
@pass_cli
def passkey_list(cli_ctx: CliContext, username: str) -> None:
    """List a user's keys."""
    user = cli_ctx.services.org.get_user(username)
    click.echo("id\tname\ttransports\tcreated_at\tlast_used_at")
    for k in _store(cli_ctx).of_user(user.id):
        used = f"{k.last_used_at:%Y-%m-%d %H:%M:%S}" if k.last_used_at else "-"
        click.echo(f"{k.id}\t{k.name}\t{','.join(k.transports) or '-'}\t"
                   f"{k.created_at:%Y-%m-%d %H:%M:%S}\t{used}")


@passkey.command("remove")
@click.option("--user", "username", required=True, help="Whose key.")
@click.option("--id", "key_id", type=int, default=None, help="The key's id (passkey list).")
@click.option("--all", "every", is_flag=True, help="Every key of the user.")
@pass_cli
def passkey_remove(cli_ctx: CliContext, username: str, key_id: int | None,
                   every: bool) -> None:
    """Remove one key (--id) or every key (--all) of a user."""
    if every == (key_id is not None):
        raise click.UsageError(cli_ctx.msg("passkey.id_or_all"))
    user = cli_ctx.services.org.get_user(username)
    store = _store(cli_ctx)
    if every:
        count = store.remove_all(user.id)
        names = "*"
    else:
        assert key_id is not None
        removed = store.remove(user.id, key_id)
        if removed is None:
            raise click.ClickException(cli_ctx.msg("passkey.no_such", username=username,
                                                   id=key_id))
        count, names = 1, removed.name
    cli_ctx.record_change("user_webauthn_removed", user=username, keys=count, name=names)
    click.echo(cli_ctx.msg("passkey.removed", username=username, count=count))
