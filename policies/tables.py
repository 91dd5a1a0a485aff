"""Tables the policies package owns: the policy lines and a version counter.

Every change to ``policy_lines`` bumps ``policy_version.version`` in the same
transaction; each gateway process polls that one row to know when to reload.
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

policy_lines = sa.Table(
    "policy_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("object", sa.String(500), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("effect", sa.String(8), nullable=False),
    sa.Column("source", sa.String(32), nullable=False, default="cli"),
    # set: the line may open a system with catalogue resources to another department
    # without the catalogue; the text says why (policies.engine.PolicyLine.ungoverned)
    sa.Column("ungoverned_reason", sa.String(500), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("subject", "department", "object", "action", "effect"),
)

# one row (id = 1): bumped by every change to policy_lines
policy_version = sa.Table(
    "policy_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
