"""idp: ``idp_authorization_codes.dpop_jkt``, the DPoP key an authorization request
bound its code to (RFC 9449 section 10; gateway.idp.oauth2.rfc6749): the token
request's proof must be by that key.

Revision ID: 0031_dpop2_code_jkt
Revises: 0029_dpop
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_dpop2_code_jkt"
down_revision = "0029_dpop"  # the identity provider's line
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idp_authorization_codes",
                  sa.Column("dpop_jkt", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idp_authorization_codes") as batch:
        batch.drop_column("dpop_jkt")
