"""catalogue: a resource's route names the query parameters a consumer may send
(``catalogue_resources.route_query``, mirrors catalogue/tables.py)

Revision ID: 0023_catalogue_route_query
Revises: 0018_catalogue_steward
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_catalogue_route_query"
down_revision = "0018_catalogue_steward"  # the catalogue's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: a route stored before lists no parameters, and the proxy then refuses
    # only the projection, renaming and wrapping ones (catalogue.query)
    op.add_column("catalogue_resources", sa.Column("route_query", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalogue_resources") as batch:
        batch.drop_column("route_query")
