"""Sign a user out everywhere: every portal session, every refresh-token family, and
through the deny list every access token bound to them. One code path for
``govgate session revoke``, ``govgate user disable`` and the account page's
"sign out everywhere"; each caller audits in its own words and tells the relying
parties (back-channel logout) in its own way (the CLI waits, the web schedules)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.store import SessionRow


@dataclass(frozen=True)
class SignedOut:
    username: str
    sessions: list[SessionRow]
    families: int
    #: relying parties to tell: (sid, client_id, back-channel logout URI)
    targets: list[tuple[str, str, str]]


def revoke_everywhere(provider: Provider, username: str) -> SignedOut:
    """End every live session and refresh-token family of ``username``. The deny
    list's entries outlive the longest token a session or family could have issued."""
    provider.services.org.get_user(username)  # NotFound for a typo
    settings = provider.settings
    live = provider.store.list_sessions(username)
    sids, families = provider.store.revoke_user(
        username, ttl_seconds=max(settings.access_token_lifetime,
                                  settings.refresh_token_lifetime))
    ended = [row for row in live if row.sid in set(sids)]
    targets = []
    for sid in sids:
        for cid in provider.store.session_clients(sid):
            client = provider.server.clients.get(cid)
            if client is not None and client.backchannel_logout_uri:
                targets.append((sid, cid, client.backchannel_logout_uri))
    return SignedOut(username, ended, families, targets)


async def tell_relying_parties(provider: Provider, out: SignedOut) -> None:
    """Deliver every back-channel logout now (and wait for the answers)."""
    await asyncio.gather(*(provider.notifier.notify([(cid, uri)], out.username, sid)
                           for sid, cid, uri in out.targets))


def schedule_notices(provider: Provider, out: SignedOut) -> None:
    """From a running server: back-channel logouts in the background, and each
    session's end hooks (CAS single logout), as a sign-out of one session does."""
    for sid, cid, uri in out.targets:
        provider.notifier.schedule([(cid, uri)], out.username, sid)
    for row in out.sessions:
        for hook in provider.on_session_end:
            hook(row)
