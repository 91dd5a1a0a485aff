"""``govgate keys destroy`` keeps an audit key whose signatures the log still holds.

Erasing an ``audit`` key's private part leaves every checkpoint it signed
unverifiable on the gateway (the ring refuses a destroyed key, and ``audit.key_trust``
proves a key the ring's own by opening that part) and drops it from every trust file
written after (``govgate audit keys``). A CT log keeps its key for as long as its
signed tree heads must verify, X-Road the certificates of what its archives hold: so
an audit key stays while a checkpoint it signed is in the log; checkpoints are never
purged, and an archive carries copies of them. Retired, it signs nothing new.
"""

from __future__ import annotations

from audit import AuditRecord
from audit.key_trust import KEY_USE, signatures_in_log
from gateway.cli.context import CliContext
from gateway.services import os_actor
from keys import KeyStateError
from texts import Text


def refuse_signing_audit_key(state: CliContext, kid: str) -> None:
    """KeyStateError (audited) when ``kid`` is an audit key that signed what the log holds."""
    services = state.services
    info = next((i for i in services.keys.list_keys() if i.kid == kid), None)
    if info is None or info.use != KEY_USE or info.state in ("active", "destroyed"):
        return  # the ring's own refusals (unknown, the active key, destroyed) say why
    signed = signatures_in_log(services.engine, kid)
    if not signed:
        return
    services.audit.append_sync(AuditRecord(
        event_type="admin_change", outcome="failure", actor_user=os_actor(),
        reason="key_destroy_refused", source_ip="cli",
        extra={"via": "cli", "change": "key_destroyed", "kid": kid, "use": KEY_USE,
               "signed": signed}))
    raise KeyStateError(Text(
        "keys.audit_key_kept",
        "key {kid} signed {n} checkpoints or purge seals still in the audit log (never "
        "purged; archives carry them too): destroyed, they could no longer be verified. "
        "Keep it: retired, it "
        "signs nothing new. If it was exposed, run `govgate keys rotate --use audit --now`, "
        "take a new trust file (`govgate audit keys --to FILE`) and keep the old one for "
        "the archives it signed", kid=kid, n=signed))
