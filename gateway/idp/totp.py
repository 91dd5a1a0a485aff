"""A user's TOTP (RFC 6238): the secret sealed by the key service, the code check, the
provisioning QR code. Used by the sign-in pages and by the account page and API."""

from __future__ import annotations

import hmac
from datetime import timedelta

import pyotp
import sqlalchemy as sa

from gateway.idp.oauth2.store import Store
from gateway.org import User
from gateway.services import Services
from gateway.tables import users
from keys.errors import InvalidBlob

TOTP_ISSUER = "govgate"


def secret_context(user_id: int) -> str:
    """The sealing context of a user's secret: a blob moved to another row won't open."""
    return f"users.totp_secret:{user_id}"


def load(services: Services, user: User) -> pyotp.TOTP | None:
    """The user's TOTP, or None when none is enrolled."""
    with services.engine.connect() as conn:
        blob = conn.execute(sa.select(users.c.totp_secret).where(users.c.id == user.id)).scalar()
    if blob is None:
        return None
    secret = services.keys.open(bytes(blob), secret_context(user.id)).decode()
    return pyotp.TOTP(secret)


def is_enrolled(services: Services, user: User, secret: str) -> bool:
    """Whether ``secret`` is the user's enrolled one: a set-up carrying it is spent (its
    replay would show the active secret again, or issue new recovery codes). A secret
    that does not open is not this one."""
    try:
        current = load(services, user)
    except InvalidBlob:
        return False
    return current is not None and hmac.compare_digest(current.secret.encode(),
                                                       secret.encode())


def store(services: Services, user: User, secret: str) -> None:
    """Enrol ``secret`` for the user (replacing any earlier one)."""
    sealed = services.keys.seal(secret.encode(), secret_context(user.id))
    with services.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user.id)
                     .values(totp_secret=sealed, updated_at=services.clock()))


def check(services: Services, idp_store: Store, totp: pyotp.TOTP, code: str, username: str) -> bool:
    """Constant-time check within one step either side; each step is accepted once
    (``idp_store.remember_assertion``), so a code seen over a shoulder is spent."""
    code = code.strip()
    # isdigit() also says yes to Arabic-Indic, full-width and superscript digits, on
    # which compare_digest raises TypeError: only ASCII digits are a code
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return False
    now = services.clock()
    step = totp.timecode(now)
    for offset in (0, -1, 1):
        if hmac.compare_digest(totp.generate_otp(step + offset), code):
            return bool(idp_store.remember_assertion(
                f"totp:{username}", str(step + offset), now + timedelta(seconds=120)))
    return False


def provisioning(secret: str, username: str) -> tuple[str, str]:
    """(otpauth URI, inline SVG of its QR code) for an authenticator app."""
    # segno (0.8 MiB resident) when a user enrols, not in every server from start
    import segno

    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)
    return uri, segno.make(uri, error="m").svg_inline(scale=4, omitsize=True)
