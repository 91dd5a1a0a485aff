"""``govgate session list|revoke --user U``: portal sessions and refresh tokens.

``revoke`` ends every session and refresh-token family of a user, puts the
sessions on the deny list (every gateway process stops honouring them within a
second) and tells every system that signed the user in through those sessions:
back-channel logout tokens to the relying parties, CAS single logout to the CAS
services that validated a ticket, SAML LogoutRequests (SOAP) to the SAML SPs."""

from __future__ import annotations

import asyncio

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.idp.sign_out import revoke_everywhere, tell_relying_parties


@click.group()
def session() -> None:
    """Inspect and end sign-in sessions."""


@session.command("list")
@click.option("--user", "username", default=None, help="Only this user's sessions.")
@pass_cli
def session_list(cli_ctx: CliContext, username: str | None) -> None:
    """List live sessions."""
    rows = cli_ctx.gateway.provider.store.list_sessions(username)
    click.echo("sid\tuser\tstage\tcreated_at\tlast_seen_at\texpires_at")
    for r in rows:
        click.echo(f"{r.sid}\t{r.username}\t{r.stage}\t{r.created_at:%Y-%m-%d %H:%M:%S}\t"
                   f"{r.last_seen_at:%Y-%m-%d %H:%M:%S}\t{r.expires_at:%Y-%m-%d %H:%M:%S}")


def end_sessions(cli_ctx: CliContext, username: str) -> tuple[int, int]:
    """End every portal session and refresh-token family of ``username`` (and so the
    access tokens bound to those sessions, within the deny list's refresh), tell the
    relying parties by back-channel logout, and audit it. Returns (sessions, families)."""
    provider = cli_ctx.gateway.provider
    out = revoke_everywhere(provider, username)
    cli_ctx.services.record_admin_change("sessions_revoked", {
        "user": username, "sessions": len(out.sessions), "families": out.families})
    sids = [row.sid for row in out.sessions]
    cas, saml = cli_ctx.gateway.cas, cli_ctx.gateway.saml

    async def notify() -> None:
        # back-channel logout to relying parties, single logout to CAS services and
        # SAML service providers, each answered before the command returns
        await asyncio.gather(tell_relying_parties(provider, out),
                             *(cas.notify_ended(sid, username) for sid in sids),
                             *(saml.notify_ended(sid) for sid in sids))

    if out.targets or sids:
        asyncio.run(notify())
    return len(out.sessions), out.families


@session.command("revoke")
@click.option("--user", "username", required=True, help="User whose sessions end.")
@pass_cli
def session_revoke(cli_ctx: CliContext, username: str) -> None:
    """End a user's sessions and refresh tokens everywhere."""
    sessions, families = end_sessions(cli_ctx, username)
    click.echo(cli_ctx.msg("session.revoked", username=username, sessions=sessions,
                           families=families))
