"""``govgate session list|revoke --user U``: portal sessions and refresh tokens.

``revoke`` ends every session and refresh-token family of a user, puts the
sessions on the deny list (every gateway process stops honouring them within a
second) and tells every system that signed the user in through those sessions:
back-channel logout tokens to the relying parties, CAS single logout to the CAS
services that validated a ticket, SAML LogoutRequests (SOAP) to the SAML SPs."""

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
    """End every portal session and refresh-token family of ``username`` (and so the
    access tokens bound to those sessions, within the deny list's refresh), tell the
    relying parties by back-channel logout, and audit it. Returns (sessions, families)."""
    from gateway.idp.oauth2.provider import get_provider

    services.org.get_user(username)  # NotFound for a typo
    provider = get_provider(services)
    settings = services.settings
    sids, families = provider.store.revoke_user(
        username, ttl_seconds=max(settings.access_token_lifetime,
                                  settings.refresh_token_lifetime))
    services.record_admin_change("sessions_revoked", {"user": username, "sessions": len(sids),
                                                      "families": families})
    targets = []
    for sid in sids:
        for cid in provider.store.session_clients(sid):
            c = provider.server.clients.get(cid)
            if c is not None and c.backchannel_logout_uri:
                targets.append((sid, cid, c.backchannel_logout_uri))

    cas, saml = _single_logouts(services)

    async def notify() -> None:
        await asyncio.gather(*(provider.notifier.notify([(cid, uri)], username, sid)
                               for sid, cid, uri in targets),
                             *(cas.notify_ended(sid, username) for sid in sids),
                             *(saml.notify_ended(sid) for sid in sids))

    if targets or sids:
        asyncio.run(notify())
    return len(sids), families


def _single_logouts(services: Any) -> tuple[Any, Any]:
    """The CAS server and the SAML IdP of ``services``: who sends single logout."""
    from gateway.idp.cas.routes import cas_server
    from gateway.idp.saml.routes import saml_idp

    return cas_server(services), saml_idp(services)


@session.command("revoke")
@click.option("--user", "username", required=True, help="User whose sessions end.")
@pass_cli
def session_revoke(cli_ctx: CliContext, username: str) -> None:
    """End a user's sessions and refresh tokens everywhere."""
    sessions, families = end_sessions(cli_ctx.services, username)
    click.echo(cli_ctx.msg("session.revoked", username=username, sessions=sessions,
                           families=families))
