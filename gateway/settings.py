"""Settings: one frozen object built once at start-up.

Sources, later ones winning: defaults, ``$GOVGATE_HOME/govgate.toml``, the
environment (``GOVGATE_*``), then explicit overrides (CLI flags). Nothing reads
the environment at import time; callers pass the mapping in.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audit.syslog_message import FACILITIES
from audit.syslog_ship import parse_address
from gateway.errors import SettingsError
from keys import PROFILES
from texts import Text

CRYPTO_PROFILES = ("standard", "gm")
MASTER_KEY_PROVIDERS = ("file", "env", "pkcs11")
LANGS = ("zh", "en")
AUDIT_PATHS = ("database", "journal")
#: client_assertion_audience: the strict rule, and the rule before it
ASSERTION_AUDIENCES = ("issuer", "issuer_or_token_endpoint")
AUDIT_INDEXERS = ("thread", "process")
DPOP_NONCES = ("off", "token", "all")  # gateway.idp.dpop.NONCE_MODES


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    home: Path = Path(".govgate")
    database_url: str = ""
    issuer: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    # serve HTTPS itself (PEM files), for a site with no terminator in front
    tls_cert: str = ""
    tls_key: str = ""
    lang: str = "zh"
    crypto_profile: str = "standard"
    # master key
    master_key_provider: str = "file"
    master_key_file: str = ""
    master_key_env: str = "GOVGATE_MASTER_KEY"
    pkcs11_module: str = ""
    pkcs11_token_label: str = "govgate"  # noqa: S105 - a label, not a secret
    pkcs11_pin: Secret | None = None
    pkcs11_key_label: str = "govgate-master"
    # key ring; empty: the profile's default (ES256 under standard, SM2SM3 under gm),
    # filled in on construction
    signing_alg: str = ""
    key_prepublish_seconds: int = 3600
    key_rotate_days: int = 90
    clock_skew_seconds: int = 60
    # DPoP server nonces (RFC 9449 sections 8, 9; gateway.idp.dpop): "off", "token" (the
    # token endpoint asks proofs for one) or "all" (the proxy, forward-auth, userinfo and
    # the API too)
    dpop_nonce: str = "off"
    # tokens and sessions
    access_token_lifetime: int = 600
    id_token_lifetime: int = 600
    refresh_token_lifetime: int = 8 * 3600
    assertion_lifetime: int = 60
    # what a client assertion (private_key_jwt) may name as its audience: "issuer", the
    # issuer alone (draft-ietf-oauth-rfc7523bis, after the OpenID Foundation's advisory
    # of January 2025), or
    # "issuer_or_token_endpoint", the rule before it (any value naming the issuer or the
    # token endpoint), for clients not yet changed; govgate compliance reports it
    client_assertion_audience: str = "issuer"
    # CAS service tickets: single use, and unused ones lapse after this (1-300 s)
    cas_ticket_lifetime: int = 10
    # the longest break-glass (紧急授权) a person may request (gateway.break_glass), 1-24
    break_glass_max_hours: int = 4
    session_idle_timeout: int = 1800
    session_absolute_timeout: int = 12 * 3600
    lockout_threshold: int = 5
    lockout_window_seconds: int = 900
    # wrong TOTP or recovery codes in a row (whatever the lock's window did meanwhile)
    # that lock the codes until an administrator unlocks (gateway.factor_failures);
    # NIST SP 800-63B 5.2.2 asks for at most 100
    mfa_failure_limit: int = 100
    # mail each person their security events (a factor added, removed or reset, ...;
    # gateway.referrals.security_mail) at their users.email, through smtp_host
    security_notice_mail: bool = False
    # sign-in delay per source address after failures: base * 2**(k-1) s, at most max
    # (gateway.login_throttle); base 0 turns it off
    login_delay_base_seconds: float = 1.0
    login_delay_max_seconds: float = 60.0
    login_unknown_names_max: int = 100_000  # name rows kept for names with no account
    # audit
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 5.0
    audit_retention_days: int = 180
    # a JSON-lines file every committed record is appended to (audit.ship) for a log
    # collector to tail; relative to home; empty: no shipping
    audit_ship_file: str = ""
    # an RFC 5424 syslog receiver (a SIEM) the records go to as well (audit.syslog_ship,
    # docs/audit-shipping.md): host:port, TLS (RFC 5425) unless turned off; the CA of its
    # certificate (empty: the system's), a client certificate when it asks for one
    audit_syslog_target: str = ""
    audit_syslog_tls: bool = True
    audit_syslog_ca_file: str = ""
    audit_syslog_cert_file: str = ""
    audit_syslog_key_file: str = ""
    audit_syslog_facility: str = "local0"
    audit_syslog_enterprise: int = 32473  # the SD-ID's number: RFC 5612's example
    # where a record is durable before its response leaves (docs/audit-journal.md):
    # "database" (a row in audit_records) or "journal" (a frame in a local segment file,
    # loaded into the tables every audit_index_seconds); the journal dir is relative to home
    audit_path: str = ""  # empty: "journal" on SQLite, "database" on PostgreSQL
    audit_journal_dir: str = "audit-journal"
    audit_index_seconds: float = 0.5
    # journal mode: the indexer a thread of the gateway process, or a process of its own
    # (gateway/indexer_process.py; docs/audit-journal.md, "The indexer")
    audit_indexer: str = "thread"
    # the running gateway's periodic jobs (key rotation and promotion, IdP purge)
    maintenance_interval_seconds: float = 60.0
    # proxy
    max_body_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # every route, enforced by the server protocol (gateway/web/http_server.py): a request
    # head not complete this long after the connection could send it is cut off
    header_timeout_seconds: float = 10.0
    # the proxy: the longest wait for the next piece of a request body (then 408)
    body_timeout_seconds: float = 30.0
    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 30.0
    upstream_max_connections: int = 256  # requests in flight per upstream; more queue
    proxy_rate: float = 100.0  # requests per second per client (token bucket)
    proxy_burst: float = 200.0
    # more client request headers to drop before the upstream (identity headers of
    # the operator's own systems); TOML array, or comma-separated in the environment
    proxy_strip_headers: tuple[str, ...] = ()
    # load balancers in front of the gateway (addresses or CIDR networks): from these
    # peers only, X-Forwarded-For / X-Forwarded-Proto name the real client
    trusted_proxies: tuple[str, ...] = ()
    # the peers that may call /auth/verify (addresses or CIDR networks): its answer
    # (identity headers, the assertion, the request's cookies) is for the front proxy
    # only. Empty: loopback and the trusted_proxies; set: exactly these
    forward_auth_from: tuple[str, ...] = ()
    # data stewards (docs/catalogue.md, "Time limits and referrals"): the working days an
    # application may wait, and where the referral of an overdue one to the department
    # head is announced: a webhook (POST, JSON, signed) and e-mail to the head
    catalogue_due_working_days: int = 10
    # clients still opening encrypted items with the govgate_upstream of before
    # 2026-12-05 (seventh session): their values go unsigned (a bare JWE, cty json) until
    # they move to the helper that verifies the gateway's signature; everyone else gets
    # values signed and bound to their place (docs/proxy.md "Encrypted items")
    catalogue_unsigned_item_clients: tuple[str, ...] = ()
    # the longest a delegation (委托, gateway.delegations) may run, in days
    delegation_max_days: int = 30
    referral_webhook_url: str = ""
    smtp_host: str = ""  # empty: no e-mail
    smtp_port: int = 587
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_ca_file: str = ""  # a private CA for STARTTLS; empty: the system's
    smtp_user: str = ""
    smtp_password: Secret | None = None  # environment only (GOVGATE_SMTP_PASSWORD)
    # LDAP / Active Directory (docs/directory.md): empty url, no directory
    directory_url: str = ""  # ldap://host:389 or ldaps://host:636
    directory_start_tls: bool = False
    directory_ca_file: str = ""  # the directory's CA (PEM); empty: the system's
    directory_bind_dn: str = ""
    # the service account's password: environment only, or a file only root reads
    directory_bind_password: Secret | None = None
    directory_bind_password_file: str = ""
    directory_base_dn: str = ""
    directory_user_filter: str = "(objectClass=inetOrgPerson)"
    directory_username_attribute: str = "uid"  # AD: sAMAccountName
    directory_name_attribute: str = "cn"  # AD: displayName
    directory_email_attribute: str = "mail"
    # the attribute of an OU that carries its govgate department code
    directory_department_attribute: str = "businessCategory"
    directory_region: str = ""  # the region of departments the directory creates
    # "group cn=role" entries: members of the group hold the role
    directory_group_roles: tuple[str, ...] = ()
    # accounts this filter matches are disabled (AD: userAccountControl bit 2)
    directory_disabled_filter: str = "(pwdAccountLockedTime=*)"
    directory_page_size: int = 500
    directory_timeout_seconds: float = 5.0
    directory_sync_interval: float = 0.0  # seconds between scheduled syncs; 0: none
    # AD's NetBIOS domain name: "GOV\zhang.san" signs in as the sAMAccountName's person;
    # empty: the one AD names (the domain's crossRef), read once
    directory_netbios_domain: str = ""
    # WebAuthn (docs/webauthn.md): the RP ID (a host name, never an IP address) and the
    # origin browsers report; empty: the issuer's host and origin
    webauthn_rp_id: str = ""
    webauthn_origin: str = ""
    # the three admin roles sign in with a security key or passkey (TOTP no longer
    # does for them); "sign in with a passkey" on the sign-in page
    webauthn_required_for_admins: bool = False
    webauthn_passwordless: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.audit_path:
            object.__setattr__(self, "audit_path", "journal" if self.db_url.startswith("sqlite")
                               else "database")
        if not self.signing_alg and self.crypto_profile in PROFILES:
            object.__setattr__(self, "signing_alg", PROFILES[self.crypto_profile].default_alg)

    @property
    def db_url(self) -> str:
        """The effective database URL: the configured one or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'govgate.db').resolve()}"

    @property
    def master_key_path(self) -> Path:
        return Path(self.master_key_file) if self.master_key_file else self.home / "master.key"

    @property
    def audit_ship_path(self) -> Path | None:
        """Where the audit records are shipped, or None."""
        if not self.audit_ship_file:
            return None
        return self.home / self.audit_ship_file  # an absolute path stays itself

    @property
    def audit_journal_path(self) -> Path | None:
        """The audit journal's directory in journal mode, else None."""
        if self.audit_path != "journal":
            return None
        return self.home / self.audit_journal_dir  # an absolute path stays itself

    def safe_dict(self) -> dict[str, Any]:
        """Settings as printable values, secrets masked."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = repr(value) if isinstance(value, Secret) else value
        out["database_url"] = _mask_url(self.db_url)
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("extra",)}
_ENV_KEYS = {f"GOVGATE_{name.upper()}": name for name in _FIELDS}
_SECRETS = frozenset({"pkcs11_pin", "smtp_password", "directory_bind_password"})
# never in a file that is read by many
_ENV_ONLY = frozenset({"smtp_password", "directory_bind_password"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _mask_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _coerce(name: str, raw: Any) -> Any:
    f = _FIELDS[name]
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if name == "home":
            return Path(str(raw))
        if name in _SECRETS:
            return raw if isinstance(raw, Secret) else Secret(str(raw))
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise ValueError
        if kind == "int":
            # TOML's 5.7, inf and nan are floats: int() would cut the first and raise
            # OverflowError on the second
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value: Any = int(raw)
            if value < 0:
                raise ValueError
            return value
        if kind == "float":
            value = float(raw)
            # "nan" and "inf" read as floats; no duration, rate or delay is either (a NaN
            # compares false with every bound a later check or a sleep would apply)
            if not math.isfinite(value) or value < 0:
                raise ValueError
            return value
        if kind == "tuple[str, ...]":
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or not all(
                    isinstance(i, str) for i in items):
                raise ValueError
            return tuple(i.strip() for i in items if i.strip())
        if kind == "str":
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                raise ValueError
            return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(Text("settings.bad_value",
                                 "setting {name!r}: bad value {value!r} (expected {kind})",
                                 name=name, value=raw, kind=kind)) from None
    return raw


def _validate(values: dict[str, Any]) -> None:
    checks = {
        "crypto_profile": CRYPTO_PROFILES,
        "master_key_provider": MASTER_KEY_PROVIDERS,
        "lang": LANGS,
        "audit_path": AUDIT_PATHS,
        "audit_indexer": AUDIT_INDEXERS,
        "client_assertion_audience": ASSERTION_AUDIENCES,
        "dpop_nonce": DPOP_NONCES,
    }
    for name, allowed in checks.items():
        if name in values and values[name] not in allowed:
            raise SettingsError(Text(
                "settings.not_one_of", "setting {name!r}: bad value {value!r} (one of {allowed})",
                name=name, value=values[name], allowed=", ".join(allowed)))
    offered = PROFILES[values.get("crypto_profile", "standard")].signing_algs
    if values.get("signing_alg") and values["signing_alg"] not in offered:
        # SM2SM3 under the standard profile among them (docs/keys.md, "SM2")
        raise SettingsError(Text(
            "settings.signing_alg",
            "setting 'signing_alg': bad value {value!r} under crypto_profile {profile!r} "
            "(one of {allowed})", value=values["signing_alg"],
            profile=values.get("crypto_profile", "standard"), allowed=", ".join(offered)))
    if not 1 <= values.get("port", 8080) <= 65535:
        raise SettingsError(Text("settings.port",
                                 "setting 'port': {port} is not a TCP port (1-65535)",
                                 port=values["port"]))
    if values.get("audit_retention_days", 180) < 180:
        raise SettingsError(Text("settings.retention",
                                 "setting 'audit_retention_days': must be at least 180"))
    if values.get("assertion_lifetime", 60) > 60:
        raise SettingsError(Text("settings.assertion_lifetime",
                                 "setting 'assertion_lifetime': at most 60 seconds"))
    if not 1 <= values.get("break_glass_max_hours", 4) <= 24:
        raise SettingsError(Text("settings.break_glass_max_hours",
                                 "setting 'break_glass_max_hours': 1 to 24 hours"))
    if not 1 <= values.get("mfa_failure_limit", 100) <= 100:
        raise SettingsError(Text("settings.mfa_failure_limit",
                                 "setting 'mfa_failure_limit': 1 to 100 wrong codes"))
    if not 1 <= values.get("cas_ticket_lifetime", 10) <= 300:
        raise SettingsError(Text("settings.cas_ticket_lifetime",
                                 "setting 'cas_ticket_lifetime': 1 to 300 seconds"))
    interval = values.get("maintenance_interval_seconds", 60.0)
    if not 0 < interval <= 86400:  # 0 would spin; NaN fails both comparisons
        raise SettingsError(Text(
            "settings.maintenance_interval",
            "setting 'maintenance_interval_seconds': must be above 0 and at most 86400"))
    for name in ("audit_index_seconds", "proxy_rate", "proxy_burst", "max_header_bytes",
                 "max_headers", "upstream_max_connections", "header_timeout_seconds",
                 "body_timeout_seconds"):
        if name in values and not values[name] > 0:
            raise SettingsError(Text("settings.positive", "setting {name!r}: must be above 0",
                                     name=name))
    _validate_webauthn(values)
    if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
        raise SettingsError(Text("settings.tls_pair",
                                 "settings 'tls_cert' and 'tls_key': give both or neither"))
    for name in ("tls_cert", "tls_key"):
        if values.get(name) and not Path(str(values[name])).is_file():
            raise SettingsError(Text("settings.no_file", "setting {name!r}: no such file {path!r}",
                                     name=name, path=values[name]))
    for name in ("trusted_proxies", "forward_auth_from"):
        for entry in values.get(name, ()):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(Text(
                    "settings.network",
                    "setting {name!r}: {entry!r} is not an IP address or network",
                    name=name, entry=entry)) from None
    _validate_mail(values)
    _validate_directory(values)
    _validate_syslog(values)
    url = values.get("database_url", "")
    if url and not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise SettingsError(Text(
            "settings.database_url",
            "setting 'database_url': only sqlite:/// and postgresql+psycopg:// URLs are supported"))
    if url.startswith("postgresql://"):
        values["database_url"] = "postgresql+psycopg://" + url[len("postgresql://") :]


def _validate_mail(values: dict[str, Any]) -> None:
    """The referral's webhook and SMTP settings (gateway.referrals)."""
    if values.get("catalogue_due_working_days", 10) < 1:
        raise SettingsError(Text("settings.positive", "setting {name!r}: must be above 0",
                                 name="catalogue_due_working_days"))
    hook = values.get("referral_webhook_url", "")
    parts = urlsplit(hook)
    if hook and not (parts.scheme in ("http", "https") and parts.hostname):
        raise SettingsError(Text("settings.url", "setting {name!r}: not an http(s) URL",
                                 name="referral_webhook_url"))
    if not 1 <= values.get("smtp_port", 587) <= 65535:
        raise SettingsError(Text("settings.smtp_port",
                                 "setting 'smtp_port': {port} is not a TCP port (1-65535)",
                                 port=values["smtp_port"]))
    if values.get("smtp_host") and "@" not in values.get("smtp_from", ""):
        raise SettingsError(Text("settings.smtp_from",
                                 "setting 'smtp_from': an e-mail address is needed with "
                                 "'smtp_host'"))
    if values.get("security_notice_mail") and not values.get("smtp_host"):
        raise SettingsError(Text("settings.security_notice_mail",
                                 "setting 'security_notice_mail': needs 'smtp_host'"))
    if bool(values.get("smtp_user")) != bool(values.get("smtp_password")):
        raise SettingsError(Text("settings.smtp_login",
                                 "settings 'smtp_user' and 'smtp_password': give both or "
                                 "neither"))
    ca = values.get("smtp_ca_file")
    if ca and not Path(str(ca)).is_file():
        raise SettingsError(Text("settings.no_file", "setting {name!r}: no such file {path!r}",
                                 name="smtp_ca_file", path=ca))


def _validate_syslog(values: dict[str, Any]) -> None:
    """The syslog receiver the audit records are shipped to (audit.syslog_ship)."""
    target = values.get("audit_syslog_target", "")
    if target:
        try:
            parse_address(target)
        except ValueError:
            raise SettingsError(Text(
                "settings.syslog_target",
                "setting 'audit_syslog_target': {value!r} is not host:port",
                value=target)) from None
    facility = values.get("audit_syslog_facility", "local0")
    if facility not in FACILITIES:
        raise SettingsError(Text(
            "settings.not_one_of", "setting {name!r}: bad value {value!r} (one of {allowed})",
            name="audit_syslog_facility", value=facility, allowed=", ".join(FACILITIES)))
    if values.get("audit_syslog_key_file") and not values.get("audit_syslog_cert_file"):
        raise SettingsError(Text(
            "settings.syslog_key",
            "setting 'audit_syslog_key_file': give audit_syslog_cert_file as well"))
    for name in ("audit_syslog_ca_file", "audit_syslog_cert_file", "audit_syslog_key_file"):
        if values.get(name) and not Path(str(values[name])).is_file():
            raise SettingsError(Text("settings.no_file", "setting {name!r}: no such file {path!r}",
                                     name=name, path=values[name]))


def _validate_directory(values: dict[str, Any]) -> None:
    """The directory's settings (gateway.directory)."""
    url = values.get("directory_url", "")
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise SettingsError(Text("settings.directory_url",
                                 "setting 'directory_url': not an ldap:// or ldaps:// URL"))
    if not values.get("directory_base_dn"):
        raise SettingsError(Text("settings.directory_needs",
                                 "setting {name!r} is needed with 'directory_url'",
                                 name="directory_base_dn"))
    if not values.get("directory_region"):
        raise SettingsError(Text("settings.directory_needs",
                                 "setting {name!r} is needed with 'directory_url'",
                                 name="directory_region"))
    for name in ("directory_ca_file", "directory_bind_password_file"):
        if values.get(name) and not Path(str(values[name])).is_file():
            raise SettingsError(Text("settings.no_file",
                                     "setting {name!r}: no such file {path!r}",
                                     name=name, path=values[name]))
    for entry in values.get("directory_group_roles", ()):
        if "=" not in entry.strip("="):
            raise SettingsError(Text(
                "settings.directory_group_roles",
                "setting 'directory_group_roles': {entry!r} is not 'group cn=role'",
                entry=entry))
    if not values.get("directory_page_size", 500) > 0:
        raise SettingsError(Text("settings.positive", "setting {name!r}: must be above 0",
                                 name="directory_page_size"))


def load_settings(
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, the TOML file, ``env`` and ``overrides``."""
    env = dict(env or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    home = Path(overrides.get("home") or env.get("GOVGATE_HOME") or ".govgate")
    values: dict[str, Any] = {"home": home}

    toml_path = home / "govgate.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(Text("settings.bad_toml", "{path}: not valid TOML: {detail}",
                                     path=toml_path, detail=str(exc))) from None
        for key, raw in data.items():
            if key not in _FIELDS or key == "home":
                raise SettingsError(Text("settings.unknown_in_file",
                                         "{path}: unknown setting {key!r}",
                                         path=toml_path, key=key))
            if key in _ENV_ONLY:
                raise SettingsError(Text("settings.env_only",
                                         "{path}: setting {key!r} is read from the environment "
                                         "only ({env})", path=toml_path, key=key,
                                         env=f"GOVGATE_{key.upper()}"))
            values[key] = _coerce(key, raw)

    # the variable holding the master key (``master_key_env``) is not a setting either,
    # whatever its name: read by the env provider, never stored in Settings; nor is a
    # ``GOVGATE_MASTER_KEY_*`` one, where a key waits for ``rotate-master --new-env``
    key_env = str(overrides.get("master_key_env") or env.get("GOVGATE_MASTER_KEY_ENV")
                  or values.get("master_key_env") or "GOVGATE_MASTER_KEY")
    for env_key, raw in env.items():
        if not env_key.startswith("GOVGATE_"):
            continue
        name = _ENV_KEYS.get(env_key)
        if name is None:
            # variables the gateway reads elsewhere, not settings
            if env_key in _NON_SETTING_ENV or env_key == key_env or env_key.startswith(
                    "GOVGATE_MASTER_KEY_"):
                continue
            raise SettingsError(Text("settings.unknown_env", "unknown environment setting {key}",
                                     key=env_key))
        if name != "home":
            values[name] = _coerce(name, raw)

    for key, raw in overrides.items():
        if key not in _FIELDS:
            raise SettingsError(Text("settings.unknown", "unknown setting {key!r}", key=key))
        values[key] = _coerce(key, raw)

    _validate(values)
    return Settings(**values)


# Variables in the GOVGATE_ namespace that are not settings: the master key value
# itself (read by the env provider, never stored in Settings) and test plumbing.
_NON_SETTING_ENV = frozenset(
    {"GOVGATE_MASTER_KEY", "GOVGATE_TEST_DATABASE_URL", "GOVGATE_PKCS11_TEST"}
)


def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IP address (bracketed IPv6 too), not a host name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _validate_webauthn(values: dict[str, Any]) -> None:
    rp_id = str(values.get("webauthn_rp_id") or "")
    if is_ip_address(rp_id) or any(c in rp_id for c in "/:@ "):
        raise SettingsError(Text("settings.webauthn_rp_id",
                                 "setting 'webauthn_rp_id': {value!r} is not a host name "
                                 "(WebAuthn allows no IP address)", value=rp_id))
    issuer_host = urlsplit(str(values.get("issuer") or "")).hostname or ""
    if values.get("webauthn_required_for_admins") and not rp_id and is_ip_address(issuer_host):
        # the admins would be sent to enrol a key no browser can make: locked out
        raise SettingsError(Text(
            "settings.webauthn_required_ip",
            "setting 'webauthn_required_for_admins': the issuer's host {host} is an IP "
            "address, on which browsers make no security key; set webauthn_rp_id and "
            "webauthn_origin to a host name the admins reach the gateway by",
            host=issuer_host))
    origin = str(values.get("webauthn_origin") or "")
    parts = urlsplit(origin)
    if origin and (parts.scheme not in ("http", "https") or not parts.hostname
                   or parts.path not in ("", "/") or parts.query):
        raise SettingsError(Text("settings.webauthn_origin",
                                 "setting 'webauthn_origin': {value!r} is not an origin "
                                 "(https://host[:port])", value=origin))
