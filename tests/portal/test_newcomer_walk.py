"""What the newcomer's walk of ``govgate demo`` (2026-12-05, both languages) found on
the portal's pages, each as a plain request or a pure check (docs/seams.md, "Walk of
2026-12-05")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.web.portal.i18n import Translator

ROOT = Path(__file__).resolve().parents[2]
# where an audit record's event type is written as a literal
EVENT_LITERALS = (
    re.compile(r'event_type\s*=\s*"([a-z_]+)"'),
    re.compile(r'^\s*EVENT\s*=\s*"([a-z_]+)"', re.M),
    re.compile(r'_record\(\s*request,\s*"([a-z_]+)"'),
    re.compile(r'(?:cli_ctx|account)\.record\(\s*"([a-z_]+)"'),
    re.compile(r'event = "([a-z_]+)" if give_up else "([a-z_]+)"'),
    re.compile(r'self\._record\("(application_[a-z_]+)"'),
)


def emitted_event_types() -> set[str]:
    found: set[str] = set()
    for package in ("gateway", "audit", "catalogue", "policies", "keys"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in EVENT_LITERALS:
                for match in pattern.finditer(text):
                    found.update(g for g in match.groups() if g)
    return found


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_event_type_has_a_name_in_the_audit_console(lang: str) -> None:
    """The console's event-type list and its rows showed ``application_referred``,
    ``break_glass`` (and the SAML, security-key, referral-notice ... events) by their
    code on the Chinese and the English page alike."""
    t = Translator(lang)
    events = emitted_event_types()
    assert {"application_referred", "break_glass", "saml_login", "login"} <= events
    unnamed = sorted(e for e in events if not t.knows("aud_ev_" + e))
    assert not unnamed, f"audit events without a {lang} name: {unnamed}"
