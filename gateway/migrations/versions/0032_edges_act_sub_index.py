"""audit: an index on the delegate of a record (``extra.act.sub``, audit/act_sub.py), for
the auditors' user filter, which matches the record's user or the delegate acting for
them (委托): without it every record of the window was read and its JSON parsed.

Partial (only records with a delegate: a few in a hundred), on the same expression the
query uses (SQLite's ``json_extract``, PostgreSQL's ``CAST(extra AS jsonb) #>>``), so
``act_sub(extra) = :user`` implies the index's condition and either database reads the
index. On PostgreSQL's partitioned ``audit_records`` (0021_audit_partitions) the index
is made on the parent and so on every month's partition and those made later; the
table without partitions gets it the same way. Building it reads every record once.

Revision ID: 0032_edges_act_sub_index
Revises: 0021_audit_partitions
"""

from alembic import op

revision = "0032_edges_act_sub_index"
down_revision = "0021_audit_partitions"  # the audit table's line
branch_labels = None
depends_on = None

NAME = "ix_audit_records_act_sub"
EXPRESSION = {"sqlite": "json_extract(extra, '$.act.sub')",
              "postgresql": "(CAST(extra AS jsonb) #>> '{act,sub}')"}


def upgrade() -> None:
    expression = EXPRESSION[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX {NAME} ON audit_records ({expression}, ts, id) "
               f"WHERE {expression} IS NOT NULL")


def downgrade() -> None:
    op.execute(f"DROP INDEX {NAME}")
