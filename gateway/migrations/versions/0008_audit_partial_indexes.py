"""audit: the user, client, system and resource indexes cover only the records
that have a value there (see audit/tables.py PARTIAL_INDEXED)

Revision ID: 0008_audit_partial_indexes
Revises: 0003_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_audit_partial_indexes"
down_revision = "0003_audit"
branch_labels = None
depends_on = None

COLUMNS = ("actor_user", "actor_client", "system", "resource")


def upgrade() -> None:
    for column in COLUMNS:
        name = f"ix_audit_records_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="audit_records")
        op.create_index(name, "audit_records", [column, "ts", "id"],
                        sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for column in COLUMNS:
        name = f"ix_audit_records_{column}"
        op.drop_index(name, table_name="audit_records")
        op.create_index(name, "audit_records", [column, "ts", "id"])
