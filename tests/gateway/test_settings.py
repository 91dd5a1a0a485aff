from pathlib import Path

import pytest

from gateway.errors import SettingsError
from gateway.settings import Secret, load_settings


def test_defaults_use_home_and_embedded_sqlite(tmp_path: Path) -> None:
    s = load_settings({"GOVGATE_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.db_url == f"sqlite:///{(tmp_path / 'govgate.db').resolve()}"
    assert s.crypto_profile == "standard"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "journal"),  # the embedded SQLite: its file and the journal share the disk
    ({"GOVGATE_DATABASE_URL": "sqlite:////srv/govgate/gg.db"}, "journal"),
    ({"GOVGATE_DATABASE_URL": "postgresql+psycopg://gg@db.internal/gg"}, "database"),
    ({"GOVGATE_DATABASE_URL": "postgresql+psycopg://gg@db.internal/gg",
      "GOVGATE_AUDIT_PATH": "journal"}, "journal"),
    ({"GOVGATE_AUDIT_PATH": "database"}, "database"),
])
def test_the_audit_path_follows_the_database_unless_set(
        tmp_path: Path, env: dict[str, str], expected: str) -> None:
    s = load_settings({"GOVGATE_HOME": str(tmp_path), **env})
    assert s.audit_path == expected
    assert (s.audit_journal_path is not None) == (expected == "journal")


def test_toml_then_env_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "govgate.toml").write_text('issuer = "https://from-file"\nport = 9000\n')
    s = load_settings({"GOVGATE_HOME": str(tmp_path), "GOVGATE_PORT": "9100"})
    assert (s.issuer, s.port) == ("https://from-file", 9100)
    s = load_settings({"GOVGATE_HOME": str(tmp_path)}, {"port": 9200})
    assert s.port == 9200


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "govgate.toml").write_text("isuer = 'typo'\n")
    with pytest.raises(SettingsError, match="'isuer'"):
        load_settings({"GOVGATE_HOME": str(tmp_path)})


def test_unknown_env_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="GOVGATE_ISUER"):
        load_settings({"GOVGATE_HOME": str(tmp_path), "GOVGATE_ISUER": "x"})


@pytest.mark.parametrize(
    ("key", "value", "name"),
    [
        ("GOVGATE_PORT", "eighty", "port"),
        ("GOVGATE_CRYPTO_PROFILE", "aes", "crypto_profile"),
        ("GOVGATE_AUDIT_RETENTION_DAYS", "30", "audit_retention_days"),
        ("GOVGATE_DATABASE_URL", "mysql://x", "database_url"),
        ("GOVGATE_ACCESS_TOKEN_LIFETIME", "-5", "access_token_lifetime"),
        ("GOVGATE_AUDIT_PATH", "disk", "audit_path"),
        ("GOVGATE_AUDIT_INDEX_SECONDS", "0", "audit_index_seconds"),
        ("GOVGATE_DPOP_NONCE", "sometimes", "dpop_nonce"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, key: str, value: str, name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"GOVGATE_HOME": str(tmp_path), key: value})


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "govgate.toml").write_text("port = [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({"GOVGATE_HOME": str(tmp_path)})


def test_secrets_never_print(tmp_path: Path) -> None:
    s = load_settings({"GOVGATE_HOME": str(tmp_path), "GOVGATE_PKCS11_PIN": "1234-secret"})
    assert isinstance(s.pkcs11_pin, Secret)
    assert "1234-secret" not in repr(s)
    assert "1234-secret" not in str(s.safe_dict())
    s = load_settings(
        {"GOVGATE_HOME": str(tmp_path), "GOVGATE_DATABASE_URL": "postgresql://u:hunter2@db/x"}
    )
    assert s.database_url.startswith("postgresql+psycopg://")
    assert "hunter2" not in str(s.safe_dict())


def test_proxy_settings_from_toml_and_environment(tmp_path: Path) -> None:
    (tmp_path / "govgate.toml").write_text(
        'trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]\n'
        'proxy_strip_headers = ["X-Corp-User"]\nproxy_rate = 5.5\nmax_headers = 50\n')
    s = load_settings({"GOVGATE_HOME": str(tmp_path)})
    assert s.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")
    assert s.proxy_strip_headers == ("X-Corp-User",)
    assert (s.proxy_rate, s.max_headers) == (5.5, 50)
    s = load_settings({"GOVGATE_HOME": str(tmp_path),
                       "GOVGATE_TRUSTED_PROXIES": "127.0.0.1, ::1",
                       "GOVGATE_PROXY_BURST": "7"})
    assert s.trusted_proxies == ("127.0.0.1", "::1") and s.proxy_burst == 7.0
    (tmp_path / "govgate.toml").write_text('forward_auth_from = ["10.1.2.3", "fd00::/64"]\n')
    assert load_settings({"GOVGATE_HOME": str(tmp_path)}).forward_auth_from == (
        "10.1.2.3", "fd00::/64")
    assert load_settings({"GOVGATE_HOME": str(tmp_path), "GOVGATE_FORWARD_AUTH_FROM":
                          "192.0.2.8"}).forward_auth_from == ("192.0.2.8",)


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("GOVGATE_TRUSTED_PROXIES", "10.0.0.0/8, *", "'trusted_proxies'"),
    ("GOVGATE_TRUSTED_PROXIES", "proxy.example", "'trusted_proxies'"),
    ("GOVGATE_FORWARD_AUTH_FROM", "10.0.0.0/33", "'forward_auth_from'"),
    ("GOVGATE_FORWARD_AUTH_FROM", "nginx.local", "'forward_auth_from'"),
    ("GOVGATE_PROXY_RATE", "0", "'proxy_rate'"),
    ("GOVGATE_MAX_HEADERS", "0", "'max_headers'"),
    ("GOVGATE_MAX_HEADER_BYTES", "-1", "'max_header_bytes'"),
    ("GOVGATE_HEADER_TIMEOUT_SECONDS", "0", "'header_timeout_seconds'"),
    ("GOVGATE_HEADER_TIMEOUT_SECONDS", "nan", "'header_timeout_seconds'"),
    ("GOVGATE_PORT", "99999", "'port'"),
    ("GOVGATE_PORT", "0", "'port'"),
])
def test_bad_proxy_settings_name_the_key(tmp_path: Path, key: str, value: str,
                                         needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        load_settings({"GOVGATE_HOME": str(tmp_path), key: value})


def test_a_list_setting_must_be_a_list_of_strings(tmp_path: Path) -> None:
    (tmp_path / "govgate.toml").write_text("trusted_proxies = [1, 2]\n")
    with pytest.raises(SettingsError, match="'trusted_proxies'"):
        load_settings({"GOVGATE_HOME": str(tmp_path)})
