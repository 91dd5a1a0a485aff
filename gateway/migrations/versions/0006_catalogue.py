"""catalogue: resources, data items, applications, grants, version counter
(mirrors catalogue/tables.py)

Revision ID: 0006_catalogue
Revises: 0001_organisation
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_catalogue"
down_revision = "0001_organisation"
branch_labels = ("catalogue",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_resources",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("share_type", sa.String(16), nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("share_method", sa.String(16), nullable=False),
        sa.Column("update_cycle", sa.String(64), nullable=False),
        sa.Column("open_attr", sa.String(200), nullable=False),
        sa.Column("route_method", sa.String(8), nullable=False),
        sa.Column("route_path", sa.String(500), nullable=False),
        sa.Column("route_records", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_resources"),
        sa.UniqueConstraint("code", name="uq_catalogue_resources_code"),
    )
    op.create_index("ix_catalogue_resources_provider", "catalogue_resources", ["provider"])
    op.create_table(
        "catalogue_items",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("mask", sa.String(32), nullable=True),
        sa.Column("encrypt", sa.Boolean, nullable=False),
        sa.Column("authoritative", sa.Boolean, nullable=False),
        sa.Column("shareable", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_items"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["catalogue_resources.id"], ondelete="CASCADE",
            name="fk_catalogue_items_resource_id_catalogue_resources",
        ),
        sa.UniqueConstraint("resource_id", "name", name="uq_catalogue_items_resource_id_name"),
    )
    op.create_table(
        "catalogue_applications",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("applicant", sa.String(128), nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=True),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("grant_id", sa.Integer, nullable=True),
        sa.Column("history", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_applications"),
    )
    op.create_index("ix_catalogue_applications_resource", "catalogue_applications", ["resource"])
    op.create_index("ix_catalogue_applications_consumer", "catalogue_applications", ["consumer"])
    op.create_table(
        "catalogue_grants",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=True),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("application_id", sa.Integer, nullable=True),
        sa.Column("approved_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_grants"),
    )
    op.create_index("ix_catalogue_grants_resource", "catalogue_grants", ["resource"])
    op.create_index("ix_catalogue_grants_consumer", "catalogue_grants", ["consumer"])
    op.create_table(
        "catalogue_version",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_version"),
    )


def downgrade() -> None:
    op.drop_table("catalogue_version")
    op.drop_index("ix_catalogue_grants_consumer", "catalogue_grants")
    op.drop_index("ix_catalogue_grants_resource", "catalogue_grants")
    op.drop_table("catalogue_grants")
    op.drop_index("ix_catalogue_applications_consumer", "catalogue_applications")
    op.drop_index("ix_catalogue_applications_resource", "catalogue_applications")
    op.drop_table("catalogue_applications")
    op.drop_table("catalogue_items")
    op.drop_index("ix_catalogue_resources_provider", "catalogue_resources")
    op.drop_table("catalogue_resources")
