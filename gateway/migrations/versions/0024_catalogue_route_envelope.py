"""catalogue: a resource's route names the envelope keys kept beside the records
(``catalogue_resources.route_envelope``, mirrors catalogue/tables.py)

Revision ID: 0024_catalogue_route_envelope
Revises: 0023_catalogue_route_query
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_catalogue_route_envelope"
down_revision = "0023_catalogue_route_query"  # the catalogue's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: a route stored before lists no keys, and its envelope then keeps only
    # numbers, booleans and null (catalogue.envelope)
    op.add_column("catalogue_resources", sa.Column("route_envelope", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalogue_resources") as batch:
        batch.drop_column("route_envelope")
