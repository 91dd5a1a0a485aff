"""``govgate session list|revoke --user U``: portal sessions and refresh tokens.

``revoke`` ends every session and refresh-token family of a user, puts the
sessions on the deny list (every gateway process stops honouring them within a
second) and sends back-channel logout tokens to the relying parties."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from gateway.cli.context import CliContext, pass_cli


@click.group()
def session() -> None:
    """Inspect and end sign-in sessions."""


@session.command("list")
@click.option("--user", "username", default=None, help="Only this user's sessions.")
@pass_cli
def session_list(cli_ctx: CliContext, username: str | None) -> None:
    """List live sessions."""
    from gateway.idp.oauth2.provider import get_provider

    rows = get_provider(cli_ctx.services).store.list_sessions(username)
    click.echo("sid\tuser\tstage\tcreated_at\tlast_seen_at\texpires_at")
    for r in rows:
        click.echo(f"{r.sid}\t{r.username}\t{r.stage}\t{r.created_at:%Y-%m-%d %H:%M:%S}\t"
                   f"{r.last_seen_at:%Y-%m-%d %H:%M:%S}\t{r.expires_at:%Y-%m-%d %H:%M:%S}")


def end_sessions(services: Any, username: str) -> tuple[int, int]:
    """End every session and refresh-token family of ``username``
    (``gateway.idp.oauth2.provider.end_user_sessions``) and tell the relying parties
    by back-channel logout before returning. Returns (sessions, families)."""
    from gateway.idp.oauth2.provider import end_user_sessions, get_provider

    sids, families, targets = end_user_sessions(services, username)
    notifier = get_provider(services).notifier

    async def notify() -> None:
        await asyncio.gather(*(notifier.notify([(cid, uri)], username, sid)
                               for sid, cid, uri in targets))

    if targets:
        asyncio.run(notify())
    return len(sids), families


@session.command("revoke")
@click.option("--user", "username", required=True, help="User whose sessions end.")
@pass_cli
def session_revoke(cli_ctx: CliContext, username: str) -> None:
    """End a user's sessions and refresh tokens everywhere."""
    sessions, families = end_sessions(cli_ctx.services, username)
    click.echo(cli_ctx.msg("session.revoked", username=username, sessions=sessions,
                           families=families))
