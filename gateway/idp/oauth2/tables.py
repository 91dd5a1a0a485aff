"""Tables the identity provider owns (mirrored by migrations ``0004_idp`` and
``0007_idp_session_auth_time``).

Nothing secret is stored in the clear: authorization codes, refresh tokens and
session cookies are kept as keyed hashes (``keys.mac``); a database dump hands
an attacker no usable credential.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: portal sessions; ``sid`` is public (ID token ``sid`` claim, back-channel logout),
#: ``token_hash`` is the keyed hash of the cookie value
sessions = sa.Table(
    "idp_sessions",
    metadata,
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    # "change" (must change password), "mfa" (TOTP due), "enrol" (TOTP enrolment due), "webauthn"
    # (a key due), "passkey_enrol" (a key to register), "active"
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("amr", sa.String(64), nullable=False, default="pwd"),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(300), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    # the last sign-in step the user passed (password, change, TOTP): OIDC auth_time;
    # NULL in rows older than migration 0007, which read created_at instead
    sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True),
)

authorization_codes = sa.Table(
    "idp_authorization_codes",
    metadata,
    sa.Column("code_hash", sa.String(128), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("sid", sa.String(64), nullable=False, index=True),
    sa.Column("redirect_uri", sa.String(500), nullable=False),
    sa.Column("scope", sa.String(500), nullable=False),
    sa.Column("nonce", sa.String(255), nullable=True),
    sa.Column("code_challenge", sa.String(128), nullable=True),
    sa.Column("code_challenge_method", sa.String(16), nullable=True),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("amr", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    # the refresh-token family issued from this code: revoked if the code is replayed
    sa.Column("family_id", sa.String(64), nullable=True),
    # RFC 9449 section 10: the authorization request's dpop_jkt, the key the token
    # request's proof must be by (migration 0031_dpop2_code_jkt)
    sa.Column("dpop_jkt", sa.String(64), nullable=True),
)

refresh_tokens = sa.Table(
    "idp_refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("family_id", sa.String(64), nullable=False, index=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("sid", sa.String(64), nullable=True, index=True),
    sa.Column("scope", sa.String(500), nullable=False),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("access_jti", sa.String(64), nullable=True),  # the access token issued with it
    sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    # how the person signed in (the code's amr), for a refreshed ID token; NULL in rows
    # older than migration 0032_oidc8_rs256_consent, whose refreshes say no amr
    sa.Column("amr", sa.String(64), nullable=True),
)

#: what a person consented to a client's asking (gateway.idp.oauth2.consent): the
#: scopes, space-separated and sorted; a request within them is not asked again
consents = sa.Table(
    "idp_consents",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("scope", sa.String(500), nullable=False),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
)

#: the deny list every process mirrors in memory: ``kind`` is "jti" (one access
#: token), "sid" (every token of a portal session) or "client" (every access token
#: of a disabled client issued up to ``created_at``); ``id`` is the high-water mark
revocations = sa.Table(
    "idp_revocations",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

#: jti of private_key_jwt client assertions already seen (RFC 7523 section 3, replay)
assertion_jtis = sa.Table(
    "idp_assertion_jtis",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

#: the delegation (委托) a grant was issued under: ``grant_key`` is ``code:<code hash>``,
#: ``family:<refresh family>`` or ``cas:<ticket hash>``; kept until the delegation's end
#: (gateway.idp.oauth2.acting; migration 0022_idp_acting)
acting = sa.Table(
    "idp_acting",
    metadata,
    sa.Column("grant_key", sa.String(160), primary_key=True),
    sa.Column("delegation", sa.BigInteger, nullable=False),
    sa.Column("delegate", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

#: DPoP proofs already seen (RFC 9449 section 11.1, replay): a key's ``jti``, kept while
#: a proof of that ``iat`` could still be accepted (gateway.idp.dpop; migration 0029_dpop)
dpop_jtis = sa.Table(
    "idp_dpop_jtis",
    metadata,
    sa.Column("jkt", sa.String(64), primary_key=True),
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

#: a public client's refresh token bound to the DPoP key of the request that got it
#: (RFC 9449 section 5): ``token_hash`` is the refresh table's own keyed hash
dpop_refresh = sa.Table(
    "idp_dpop_refresh",
    metadata,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("jkt", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
