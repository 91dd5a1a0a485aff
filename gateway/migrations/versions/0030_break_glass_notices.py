"""break_glass.activation_noticed_at, end_noticed_at, break_glass_notices: the audit
administrators' notices of a break-glass claimed once and written until they are
(gateway.break_glass.notice)

Revision ID: 0030_break_glass_notices
Revises: 0021_break_glass
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0030_break_glass_notices"
down_revision = "0021_break_glass"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("break_glass") as batch:
        batch.add_column(sa.Column("activation_noticed_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("end_noticed_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_table(
        "break_glass_notices",
        sa.Column("break_glass_id", sa.String(32), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("auditor", sa.String(128), nullable=False),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("by", sa.String(128), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("break_glass_id", "step", "auditor",
                                name="pk_break_glass_notices"),
        sa.ForeignKeyConstraint(["break_glass_id"], ["break_glass.id"], ondelete="CASCADE",
                                name="fk_break_glass_notices_break_glass_id_break_glass"),
    )
    op.create_index("ix_break_glass_notices_written_at", "break_glass_notices",
                    ["written_at"])
    # what happened before this migration was told then (activation, early end) or is
    # in the review queue: not announced again. One still active is told of its end.
    when = sa.DateTime(timezone=True)
    bg = sa.table("break_glass", sa.column("id", sa.String),
                  sa.column("activated_at", when), sa.column("ends_at", when),
                  sa.column("ended_at", when), sa.column("activation_noticed_at", when),
                  sa.column("end_noticed_at", when))
    conn = op.get_bind()
    now = datetime.now(UTC)
    for row in conn.execute(sa.select(bg.c.id, bg.c.ends_at, bg.c.ended_at)
                            .where(bg.c.activated_at.is_not(None))).all():
        ends = row.ends_at if row.ends_at is None or row.ends_at.tzinfo else \
            row.ends_at.replace(tzinfo=UTC)
        over = row.ended_at is not None or (ends is not None and ends <= now)
        conn.execute(bg.update().where(bg.c.id == row.id).values(
            activation_noticed_at=now, end_noticed_at=now if over else None))


def downgrade() -> None:
    op.drop_index("ix_break_glass_notices_written_at", "break_glass_notices")
    op.drop_table("break_glass_notices")
    with op.batch_alter_table("break_glass") as batch:
        batch.drop_column("end_noticed_at")
        batch.drop_column("activation_noticed_at")
