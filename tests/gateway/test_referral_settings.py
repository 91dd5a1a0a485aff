"""The referral settings (docs/catalogue.md): the SMTP password from the environment
only, booleans as people write them, a webhook that is an http(s) URL, the pairs
that go together; each refusal names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import SettingsError
from gateway.settings import load_settings


def test_mail_settings_from_the_environment(env: dict[str, str]) -> None:
    s = load_settings({**env, "GOVGATE_SMTP_HOST": "mail.example.gov.cn",
                       "GOVGATE_SMTP_FROM": "govgate@example.gov.cn",
                       "GOVGATE_SMTP_STARTTLS": "no", "GOVGATE_SMTP_USER": "govgate",
                       "GOVGATE_SMTP_PASSWORD": "s3cret-Mail",
                       "GOVGATE_CATALOGUE_DUE_WORKING_DAYS": "15"})
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls) == ("mail.example.gov.cn", 587, False)
    assert s.smtp_password is not None and s.smtp_password.get() == "s3cret-Mail"
    assert "s3cret-Mail" not in repr(s) and "s3cret-Mail" not in str(s.safe_dict())
    assert s.catalogue_due_working_days == 15
    assert load_settings(env, {"smtp_starttls": "on"}).smtp_starttls is True


@pytest.mark.parametrize("overrides,named", [
    ({"smtp_starttls": "maybe"}, "smtp_starttls"),
    ({"referral_webhook_url": "ftp://hooks.example"}, "referral_webhook_url"),
    ({"referral_webhook_url": "https://"}, "referral_webhook_url"),
    ({"smtp_port": 70000}, "smtp_port"),
    ({"smtp_host": "mail"}, "smtp_from"),
    ({"smtp_user": "govgate"}, "smtp_password"),
    ({"smtp_ca_file": "/nowhere/ca.pem"}, "smtp_ca_file"),
    ({"catalogue_due_working_days": 0}, "catalogue_due_working_days"),
])
def test_a_bad_value_names_its_setting(env: dict[str, str], overrides: dict[str, object],
                                       named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env, overrides)


def test_the_smtp_password_is_refused_in_the_file(env: dict[str, str], home: Path) -> None:
    (home / "govgate.toml").write_text('smtp_password = "in-a-file"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="GOVGATE_SMTP_PASSWORD") as caught:
        load_settings(env)
    assert "in-a-file" not in str(caught.value)
