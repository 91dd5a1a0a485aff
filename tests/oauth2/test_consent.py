"""Consent (Keycloak's "Consent required"): a person of another department than the
client's is asked before the client signs them in, in their language, with the
client's name, department and the scopes in words; the answer is remembered per
person, client and scope set, audited, and withdrawn on the account page;
``prompt=consent`` asks again, ``prompt=none`` answers ``consent_required``; a
client of the person's own department (first-party) signs in as before."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlparse

from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.admin.clients import get_client
from gateway.cli.main import cli
from gateway.services import Services
from tests.oauth2.helpers import audit_events, authorize, code_from, csrf_of, login, pkce
from tests.wiring import apply_state, parts


def _consent_page(r: object) -> tuple[str, str]:
    """(csrf, query) of the consent page ``r``."""
    assert r.status_code == 200, (r.status_code, r.headers.get("location"))  # type: ignore[attr-defined]
    text = r.text  # type: ignore[attr-defined]
    query = re.search(r'name="query" value="([^"]*)"', text)
    assert query, text[:500]
    return csrf_of(text), html.unescape(query.group(1))


def _answer(client: TestClient, r: object, answer: str) -> object:
    csrf, query = _consent_page(r)
    back = client.post("/oauth2/consent", data={"csrf_token": csrf, "query": query,
                                                "answer": answer}, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].startswith(
        "/oauth2/authorize?"), back.text
    return client.get(back.headers["location"], follow_redirects=False)


def _error(r: object) -> str:
    assert r.status_code == 302, r.text  # type: ignore[attr-defined]
    return parse_qs(urlparse(r.headers["location"]).query)["error"][0]  # type: ignore[attr-defined]


def test_a_person_of_another_department_is_asked(client: TestClient, idp: Services) -> None:
    _, challenge = pkce()
    # zhao.min is of czt; office-web is jgswj's: a third party to her
    assert login(client, username="zhao.min").status_code == 303
    r = authorize(client, challenge=challenge, prompt="none")
    assert _error(r) == "consent_required"  # Core 3.1.2.6: never a page under none
    r = authorize(client, challenge=challenge, scope="openid profile",
                  headers={"Accept-Language": "zh-CN"})
    assert "授权确认" in r.text and "办公用房管理系统" in r.text and "赵敏" in r.text
    assert "姓名等基本资料" in r.text  # profile, in words
    assert r.headers["x-frame-options"] == "DENY"  # no page of another site frames a yes
    assert _error(_answer(client, r, "no")) == "access_denied"
    r = authorize(client, challenge=challenge, lang="en")
    assert "asks to sign you" in r.text and "name and profile" in r.text
    code_from(_answer(client, r, "yes"))
    # remembered: the same asking, and less, signs in at once
    code_from(authorize(client, challenge=challenge))
    code_from(authorize(client, challenge=challenge, scope="openid", prompt="none"))
    # more than was consented is asked again; prompt=consent asks whatever was given
    asked = 'id="consent-yes"'
    assert asked in authorize(client, challenge=challenge,
                              scope="openid profile department").text
    r = authorize(client, challenge=challenge, prompt="consent")
    assert asked in r.text
    code_from(_answer(client, r, "yes"))  # and the answer lets it through, once asked

    events = [(e["event_type"], e["outcome"], e["actor_client"])
              for e in audit_events(idp) if e["event_type"].startswith("consent")]
    assert events == [("consent_denied", "deny", "office-web"),
                      ("consent_granted", "success", "office-web"),
                      ("consent_granted", "success", "office-web")]

    # withdrawn on the account page: asked again
    page = client.get("/portal/account")
    assert 'id="consent-table"' in page.text and "办公用房管理系统" in page.text
    done = client.post("/portal/account/consents/revoke", data={
        "csrf_token": csrf_of(page.text), "client_id": "office-web"}, follow_redirects=False)
    assert done.status_code == 303
    assert 'id="consent-table"' not in client.get("/portal/account").text
    assert _error(authorize(client, challenge=challenge, prompt="none")) == "consent_required"
    assert [e["actor_user"] for e in audit_events(idp, "consent_revoked")] == ["zhao.min"]


def test_first_party_and_the_clients_flag(client: TestClient, idp: Services) -> None:
    _, challenge = pkce()
    # zhang.san is of jgswj, office-web's own department: no page
    login(client)
    code_from(authorize(client, challenge=challenge, prompt="none"))
    # consent_required: true asks the client's own department too
    entry = {"client_id": "office-web", "consent_required": True}
    apply_state(idp, {"clients": [_office_entry(idp) | entry]})
    assert _error(authorize(client, challenge=challenge, prompt="none")) == "consent_required"
    # false (govgate client consent): a first-party system for everyone, the other
    # department included
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": "C.UTF-8"}
    done = CliRunner().invoke(cli, ["client", "consent", "office-web", "not-required"],
                              env=env)
    assert done.exit_code == 0 and "office-web" in done.output, done.output
    assert get_client(idp.engine, "office-web")["consent_required"] is False
    parts(idp).provider.server.clients.invalidate()
    client.cookies.clear()
    login(client, username="zhao.min")
    code_from(authorize(client, challenge=challenge, prompt="none"))
    # a forged or stale answer is no answer
    r = authorize(client, challenge=challenge, gg_consent="1.yes.x")
    code_from(r)  # (not asked at all under false)
    apply_state(idp, {"clients": [_office_entry(idp) | {"consent_required": True}]})
    r = authorize(client, challenge=challenge, gg_consent=f"{10**12}.yes.{'0' * 32}")
    assert 'id="consent-yes"' in r.text


def _office_entry(idp: Services) -> dict[str, object]:
    entry = get_client(idp.engine, "office-web")
    entry.pop("consent_required", None)
    return entry
