"""organisation: regions, departments, roles, users, systems, clients

Revision ID: 0001_organisation
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_organisation"
down_revision = None
branch_labels = None
depends_on = None

BUILTIN_ROLES = [
    ("staff", "工作人员", False),
    ("data_steward", "数据管理员", False),
    ("sysadmin", "系统管理员", True),
    ("secadmin", "安全管理员", True),
    ("auditor", "审计管理员", True),
]


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_code", sa.String(64), sa.ForeignKey("regions.code"), nullable=True),
    )
    op.create_table(
        "departments",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("region_code", sa.String(64), sa.ForeignKey("regions.code"), nullable=False),
        sa.Column("parent_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=True),
    )
    roles = op.create_table(
        "roles",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
    )
    op.bulk_insert(roles, [{"code": c, "name": n, "is_admin": a} for c, n, a in BUILTIN_ROLES])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("must_change", sa.Boolean, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "user_roles",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role_code", sa.String(64), sa.ForeignKey("roles.code"), primary_key=True),
    )
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "systems",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False
        ),
        sa.Column("upstream", sa.String(500), nullable=False),
        sa.Column("portal_path", sa.String(500), nullable=False),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False
        ),
        sa.Column("grant_types", sa.JSON, nullable=False),
        sa.Column("redirect_uris", sa.JSON, nullable=False),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=True),
        sa.Column("jwks", sa.JSON, nullable=True),
        sa.Column("backchannel_logout_uri", sa.String(500), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "clients",
        "systems",
        "password_history",
        "user_roles",
        "users",
        "roles",
        "departments",
        "regions",
    ):
        op.drop_table(name)
