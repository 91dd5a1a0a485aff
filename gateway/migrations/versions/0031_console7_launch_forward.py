"""systems: where the portal's launcher opens a system (``systems.launch_url``), for a
system reached at an address of its own (the agency's nginx with forward-auth) rather
than through ``/s/{code}``; and what forward-auth's answer releases of the user besides
the identity it always carries (``systems.forward_auth_attributes``: ``name`` as
``X-Govgate-Name``, ``region`` as ``X-Govgate-Region``); mirrors gateway/tables.py.
NULL: the launcher's rule as before (CAS login, the SAML SP's ``launch_url``,
``/s/{code}{portal_path}``), and no name or region in forward-auth's answer (as before).

Revision ID: 0031_console7_launch_forward
Revises: 0027_cas_attribute_release
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_console7_launch_forward"
down_revision = "0027_cas_attribute_release"  # the CAS and SAML columns' branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("launch_url", sa.String(2048), nullable=True))
    op.add_column("systems", sa.Column("forward_auth_attributes", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("forward_auth_attributes")
        batch.drop_column("launch_url")
