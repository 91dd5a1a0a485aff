"""Tables the gateway owns: the organisation (regions, departments, users, roles),
the systems behind the proxy and the OAuth clients."""

from __future__ import annotations

import re

import sqlalchemy as sa

# a system's code: the first segment of /s/{code}/, a scope's proxy:{code}
SYSTEM_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

regions = sa.Table(
    "regions",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("parent_code", sa.String(64), sa.ForeignKey("regions.code"), nullable=True),
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region_code", sa.String(64), sa.ForeignKey("regions.code"), nullable=False),
    sa.Column("parent_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=True),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="active"),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("must_change", sa.Boolean, nullable=False, default=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("totp_secret", sa.LargeBinary, nullable=True),
    # OpenID Connect's email and phone claims (released only under those scopes)
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("email_verified", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("phone_number", sa.String(32), nullable=True),
    sa.Column("phone_number_verified", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # local: the gateway holds the password; directory: LDAP signs in (gateway.directory)
    sa.Column("source", sa.String(16), nullable=False, default="local",
              server_default="local"),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role_code", sa.String(64), sa.ForeignKey("roles.code"), primary_key=True),
)

# Sign-in throttling (gateway.login_throttle): one row per source address
# ("addr:...") and per sign-in name that has no account ("name:..."); rows past
# their window are purged, and the name rows are capped.
login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
    # addr: no attempt before this; name: locked until this
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    # addr: an admitted attempt is being checked (until answered, or this time)
    sa.Column("held_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

password_history = sa.Table(
    "password_history",
    metadata,
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

systems = sa.Table(
    "systems",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False),
    sa.Column("upstream", sa.String(500), nullable=False),
    sa.Column("portal_path", sa.String(500), nullable=False, default="/"),
    # the only client headers forwarded to the system (lower case), or NULL: every
    # header but those the gateway always drops (gateway.proxy.headers)
    sa.Column("forward_headers", sa.JSON, nullable=True),
    # the system's server tells path letters apart: catalogue routes then match exactly
    # (default: without case, gateway.proxy.catalogue)
    sa.Column("case_sensitive_paths", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # how the system learns who calls: the signed assertion, plain headers, or both
    # (gateway.proxy.identity_headers); remote_user adds Remote-User
    sa.Column("identity_headers", sa.String(16), nullable=False, default="assertion",
              server_default="assertion"),
    sa.Column("remote_user", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # TLS to the system: CA and client certificate (PEM), the key sealed by the key
    # ring, the version floor (gateway.proxy.upstream_tls); NULL: the platform's trust store
    sa.Column("tls", sa.JSON, nullable=True),
    # identity (the assertion, plain identity headers) goes to the system only over
    # https with the certificate verified, else the proxy refuses the request
    # (gateway.proxy.endpoint, InsecureUpstream); state file identity_over_tls_only
    sa.Column("identity_tls_only", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # per_request (default): a new signed assertion for every request; per_caller: one
    # reused for the same caller and system up to 30 s (gateway.proxy.caller_assertion)
    sa.Column("assertion", sa.String(16), nullable=False, default="per_request",
              server_default="per_request"),
    # the CAS service URLs the system may receive tickets for: exact URLs, or prefixes
    # ending in "/*" (gateway.idp.cas.services); NULL: the system speaks no CAS
    sa.Column("cas_services", sa.JSON, nullable=True),
    # the attributes its CAS services receive (gateway.idp.attribute_release): a list
    # of name/department/region/roles; NULL or []: the username only
    sa.Column("cas_attributes", sa.JSON, nullable=True),
    # the system's SAML 2.0 service provider: its metadata (entity ID, assertion
    # consumer services, logout endpoints, certificates) and release settings
    # (gateway.idp.saml.sps); NULL: the system speaks no SAML
    sa.Column("saml_sp", sa.JSON, nullable=True),
    # where the portal's launcher opens the system when it is reached at an address of
    # its own (the agency's nginx with forward-auth): https, or http on a loopback host
    # (gateway.idp.cas.services.url_problem); NULL: the launcher's own rule
    # (gateway.web.portal.launcher); migration 0031_console7_launch_forward
    sa.Column("launch_url", sa.String(2048), nullable=True),
    # what forward-auth's 200 releases besides the identity it always carries
    # (gateway.proxy.forward_auth, FORWARD_AUTH_ATTRIBUTES): name, region; NULL or []:
    # neither
    sa.Column("forward_auth_attributes", sa.JSON, nullable=True),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False),
    sa.Column("grant_types", sa.JSON, nullable=False),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    # RP-Initiated Logout 1.0: where a logout may send the browser back (exact match)
    sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False, default=list,
              server_default=sa.text("'[]'")),
    sa.Column("scope", sa.String(500), nullable=False, default="openid profile"),
    sa.Column("token_endpoint_auth_method", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(255), nullable=True),
    sa.Column("jwks", sa.JSON, nullable=True),
    sa.Column("backchannel_logout_uri", sa.String(500), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="active"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # the system the client signs users in to: a delegation (委托) naming it turns the
    # sign-in into "A, acted for by B" (gateway.idp.oauth2.acting; migration 0022)
    sa.Column("system", sa.String(64), nullable=True),
    # PKCE (RFC 7636, S256) required of this client's authorization requests as of a
    # public client's (RFC 9700 section 2.1.1; migration 0028): true for a client the
    # CLI, the admin API or the console registers, a state file says so explicitly
    sa.Column("require_pkce", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # RFC 9449: its token requests must carry a DPoP proof (gateway.idp.dpop; migration
    # 0029_dpop)
    sa.Column("dpop_bound", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # its client assertions may still name the token endpoint or several audiences, the
    # rule before draft-ietf-oauth-rfc7523bis (gateway.idp.oauth2.rfc7523; migration
    # 0031_idp7_lenient_audience): one client not yet changed, where the
    # client_assertion_audience setting lets off every client
    sa.Column("lenient_assertion_audience", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # a fixed credential an old system sends to /s/ on every call instead of a token
    # (gateway.proxy.static_credentials; migration 0032_legacy_static_credential):
    # "off", "basic" (its client id and secret) or "api_key" (X-Api-Key, its own key,
    # kept as the keyed hash ``api_key_hash``); client_credentials clients only
    sa.Column("static_credential", sa.String(16), nullable=False, default="off",
              server_default="off"),
    sa.Column("api_key_hash", sa.String(255), nullable=True),
    # the algorithm its ID tokens are signed with (OpenID Connect Dynamic Client
    # Registration section 2): NULL the ``token`` key's, RS256 the ``token_rs256`` key's
    # (gateway.idp.oauth2.oidc.id_token_key; migration 0032_oidc8_rs256_consent)
    sa.Column("id_token_signed_response_alg", sa.String(16), nullable=True),
    # Keycloak's "Consent required": true asks every person, false none (a first-party
    # system), NULL the rule: a person of another department than the client's is
    # asked (gateway.idp.oauth2.consent; migration 0032_oidc8_rs256_consent)
    sa.Column("consent_required", sa.Boolean, nullable=True),
)

# -- account: recovery codes ------------------------------------------------------------
# One-time codes a user signs in with instead of a TOTP code (lost device): keyed hashes
# (``keys.mac``), never the codes; a used code keeps its row (used_at) until the set is
# regenerated or the TOTP is reset (gateway.idp.recovery_codes).
user_recovery_codes = sa.Table(
    "user_recovery_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("code_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
)

# -- account: the second factor's failure limit, the security notices mailed -------------
# Wrong TOTP and recovery codes in a row, per account, whatever the account lock's window
# did meanwhile; at ``mfa_failure_limit`` the codes are locked until an administrator
# unlocks the account or resets its authenticator (gateway.factor_failures).
user_factor_failures = sa.Table(
    "user_factor_failures",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
)
# The security events already mailed to their person (``security_notice_mail``;
# gateway.referrals.security_mail), by audit record: each is mailed once.
security_mail_sent = sa.Table(
    "security_mail_sent",
    metadata,
    sa.Column("record_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)

# -- SCIM: what SCIM clients keep about an account ---------------------------------------
# ``external_id``: the provisioning client's own identifier (RFC 7643 section 3.1).
# ``deleted_at``/``deleted_by``: govgate never deletes a person: SCIM's DELETE disables
# the account and records it here, and SCIM then answers 404 for it (RFC 7644 section
# 3.6) while the account, its history and its audit trail stay (gateway.admin.scim).
# Re-enabling it (the operator's ``govgate user enable``) brings it back to SCIM.
scim_users = sa.Table(
    "scim_users",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("external_id", sa.String(255), nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted_by", sa.String(128), nullable=True),
)
