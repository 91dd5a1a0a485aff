"""Account: the second factor's own failure limit (wrong TOTP and recovery codes in a
row, gateway.factor_failures) and the security events mailed to their person
(gateway.referrals.security_mail); mirrors gateway/tables.py

Revision ID: 0026_user_factor_failures
Revises: 0021_webauthn
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_user_factor_failures"
down_revision = "0021_webauthn"  # the users table's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_factor_failures",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_factor_failures"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_user_factor_failures_user_id_users"),
    )
    op.create_table(
        "security_mail_sent",
        sa.Column("record_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_security_mail_sent"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_security_mail_sent_user_id_users"),
    )
    op.create_index("ix_security_mail_sent_user_id", "security_mail_sent", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_security_mail_sent_user_id", table_name="security_mail_sent")
    op.drop_table("security_mail_sent")
    op.drop_table("user_factor_failures")
