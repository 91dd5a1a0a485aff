"""How recent a sign-in must be to add a second factor to the account, or to remove a
key with the password alone (Keycloak's default maximum authentication age for a new
credential): a session cookie taken from an unattended browser adds no security key,
passkey or authenticator that would outlive the session, and the password without the
second factor takes no key away. The account page's other changes ask for the
password or a code (``gateway.idp.account.Account.prove``)."""

from __future__ import annotations

from datetime import datetime

MAX_AUTH_AGE = 300


def stale_for(authenticated_at: datetime, now: datetime) -> int | None:
    """The sign-in's age in whole seconds when it is too old to add a factor; None
    when it is recent enough."""
    age = (now - authenticated_at).total_seconds()
    return int(age) if age > MAX_AUTH_AGE else None


def stale_reason(age: int) -> str:
    """The audit record's reason for the refusal (English, no secret)."""
    return (f"sign-in {age} s old: a second factor is added or removed only within "
            f"{MAX_AUTH_AGE} s of signing in")
