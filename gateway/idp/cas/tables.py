"""The table CAS owns (mirrored by migration ``0017_cas_tickets``).

A service ticket is kept as a keyed hash (``keys.mac``): a database dump hands an
attacker no usable ticket. ``sid`` names the portal session the ticket was issued
in, so that ending the session can tell each service that received one (single
logout); the ticket's own value is then sent as the ``SessionIndex``, which the
hash cannot give back, so once the ticket is used up ``slo_ticket`` keeps it sealed
by the key ring.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tickets = sa.Table(
    "cas_tickets",
    metadata,
    sa.Column("ticket_hash", sa.String(128), primary_key=True),
    # the exact service URL the ticket was issued for (validation compares it whole)
    sa.Column("service", sa.String(2048), nullable=False),
    # the system whose registered cas_services matched it
    sa.Column("system_code", sa.String(64), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("sid", sa.String(64), nullable=False, index=True),
    # issued right after the user presented credentials (CAS 3.0 section 2.5.1, renew)
    sa.Column("primary_auth", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    # once validated (and so of no use to anyone), the ticket sealed by the key ring:
    # the SessionIndex of the single-logout request
    sa.Column("slo_ticket", sa.LargeBinary, nullable=True),
)
