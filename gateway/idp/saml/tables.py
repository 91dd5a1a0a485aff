"""The tables the SAML identity provider owns (mirrored by migration ``0018_saml``).

``saml_signing_keys``: the IdP's signing certificate (public) and its private key
sealed by the key ring (``keys.seal``, context ``saml-idp:{kid}``); one row is
active.

``saml_requests``: every AuthnRequest accepted, keyed by a keyed hash of (SP entity
ID, request ID), so that one request gets one response (``answered_at``), however
often it is presented; ``handle_hash`` names the request while the browser signs in.

``saml_sessions``: what each portal session released to each SP (the NameID and the
``SessionIndex``), so that ending the session can send each SP a LogoutRequest.
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

signing_keys = sa.Table(
    "saml_signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("cert_pem", sa.Text, nullable=False),
    sa.Column("key_sealed", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | retired
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

requests = sa.Table(
    "saml_requests",
    metadata,
    sa.Column("request_hash", sa.String(128), primary_key=True),
    sa.Column("handle_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("sp_entity_id", sa.String(1024), nullable=False),
    sa.Column("system_code", sa.String(64), nullable=False),
    # the request's own ID: the response's InResponseTo
    sa.Column("request_id", sa.String(256), nullable=False),
    # the assertion consumer service the response goes to (checked against the metadata)
    sa.Column("acs_url", sa.String(2048), nullable=False),
    sa.Column("relay_state", sa.String(1024), nullable=True),
    sa.Column("name_id_format", sa.String(256), nullable=True),
    sa.Column("force_authn", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("is_passive", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("binding", sa.String(16), nullable=False),  # redirect | post (as received)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
)

sessions = sa.Table(
    "saml_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sid", sa.String(64), nullable=False, index=True),
    sa.Column("sp_entity_id", sa.String(1024), nullable=False),
    sa.Column("system_code", sa.String(64), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("name_id", sa.String(256), nullable=False),
    sa.Column("name_id_format", sa.String(256), nullable=False),
    sa.Column("session_index", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # the SP itself asked to log out (its own LogoutRequest): no notice goes back to it
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
)
