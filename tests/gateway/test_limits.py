"""The organisation's free text (gateway.limits, documented in docs/state-file.md):
at the maximum it is taken, one character more is refused, through the state file
and through the CLI alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.errors import StateFileError
from gateway.limits import MAX_LENGTH
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.setup import initialise
from tests.wiring import apply_state, parts

BASE: dict[str, list[dict[str, Any]]] = {
    "regions": [{"code": "gx", "name": "某省"}],
    "departments": [{"code": "czt", "name": "财政厅", "region": "gx"}],
    "users": [{"username": "li.si", "name": "李四", "department": "czt"}],
    "systems": [{"code": "assets", "name": "资产系统", "department": "czt",
                 "upstream": "http://127.0.0.1:9103", "portal_path": "/"}],
    "clients": [{"client_id": "czt-web", "name": "财政平台", "department": "czt",
                 "grant_types": ["authorization_code"], "secret": "s" * 32,
                 "redirect_uris": ["https://czt.example/cb"],
                 "post_logout_redirect_uris": ["https://czt.example/"],
                 "backchannel_logout_uri": "https://czt.example/bcl", "scope": "openid"}],
}


@pytest.fixture
def services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    from argon2 import PasswordHasher

    from gateway import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                             parallelism=1))
    initialise(settings, password_factory=lambda: "Admin-Passw0rd-2026!")
    svc = open_services(settings)
    yield svc
    svc.close()


def _doc(section: str, field: str, value: Any) -> dict[str, Any]:
    doc = {k: [dict(e) for e in v] for k, v in BASE.items()}
    entry = doc[section][0]
    if field in ("redirect_uri", "post_logout_redirect_uri"):
        entry[field + "s"] = [value]
    else:
        entry[field] = value
    return doc


def _url(n: int, base: str = "https://czt.example/") -> str:
    return base + "a" * (n - len(base))


CASES = [
    *[(s, "name", lambda n: "名" * n) for s in BASE],
    ("clients", "scope", lambda n: ("openid " * n)[:n - 1] + "x"),
    ("clients", "redirect_uri", _url),
    ("clients", "post_logout_redirect_uri", _url),
    ("clients", "backchannel_logout_uri", _url),
    ("systems", "upstream", lambda n: _url(n, "http://127.0.0.1:9103/")),
    ("systems", "portal_path", lambda n: "/" + "p" * (n - 1)),
]


@pytest.mark.parametrize("section,field,make", CASES)
def test_state_file_text_at_and_past_its_maximum(services: Services, section: str,
                                                 field: str, make: Any) -> None:
    n = MAX_LENGTH[field]
    applier = parts(services).state_applier()
    with pytest.raises(StateFileError) as caught:
        applier.apply(_doc(section, field, make(n + 1)))
    expected = f"{field} longer than {n} characters"
    assert any(p.endswith(expected) for p in caught.value.problems), caught.value.problems
    assert len(make(n)) == n
    applier.apply(_doc(section, field, make(n)))


def _cli(services: Services, *args: str) -> tuple[int, str]:
    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url, "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_names_at_and_past_their_maximum(services: Services) -> None:
    apply_state(services, {k: BASE[k] for k in ("regions", "departments")})
    n = MAX_LENGTH["name"]
    commands = [
        lambda name, i: ("dept", "add", f"d{i}", "--name", name, "--region", "gx"),
        lambda name, i: ("user", "add", f"u{i}.x", "--name", name, "-d", "czt"),
        lambda name, i: ("client", "add", f"c{i}", "--name", name, "--department", "czt",
                         "--grant-type", "client_credentials"),
    ]
    for i, command in enumerate(commands):
        code, out = _cli(services, *command("名" * (n + 1), i))
        assert code == 1 and f"name longer than {n} characters" in out, out
        code, out = _cli(services, *command("名" * n, i))
        assert code == 0, out
