"""CAS: the attributes each system's CAS services receive (``systems.cas_attributes``,
gateway.idp.attribute_release); mirrors gateway/tables.py. Existing systems get none
(the username only) until their state file lists them.

Revision ID: 0027_cas_attribute_release
Revises: 0018_saml
"""

import sqlalchemy as sa
from alembic import op

revision = "0027_cas_attribute_release"
down_revision = "0018_saml"  # the CAS and SAML columns' branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("cas_attributes", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("cas_attributes")
