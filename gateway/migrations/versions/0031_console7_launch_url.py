"""systems: where the portal's launcher opens a system (``systems.launch_url``), for a
system reached at an address of its own (the agency's nginx with forward-auth) rather
than through ``/s/{code}``; mirrors gateway/tables.py. NULL: the launcher's rule as
before (CAS login, the SAML SP's ``launch_url``, ``/s/{code}{portal_path}``).

Revision ID: 0031_console7_launch_url
Revises: 0027_cas_attribute_release
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_console7_launch_url"
down_revision = "0027_cas_attribute_release"  # the CAS and SAML columns' branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("launch_url", sa.String(2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("launch_url")
