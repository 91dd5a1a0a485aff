"""CAS: the service tickets (keyed hashes, single use, bound to one service URL) and
each system's registered CAS service URLs (gateway.idp.cas)

Revision ID: 0017_cas_tickets
Revises: 0011_login_throttle
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_cas_tickets"
down_revision = "0011_login_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cas_tickets",
        sa.Column("ticket_hash", sa.String(128), nullable=False),
        sa.Column("service", sa.String(2048), nullable=False),
        sa.Column("system_code", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("primary_auth", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slo_ticket", sa.LargeBinary, nullable=True),
        sa.PrimaryKeyConstraint("ticket_hash", name="pk_cas_tickets"),
    )
    op.create_index("ix_cas_tickets_sid", "cas_tickets", ["sid"])
    op.add_column("systems", sa.Column("cas_services", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("cas_services")
    op.drop_index("ix_cas_tickets_sid", table_name="cas_tickets")
    op.drop_table("cas_tickets")
