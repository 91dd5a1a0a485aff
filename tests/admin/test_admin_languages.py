"""The admin pages speak one language each: Chinese by default, English by switch
(``tests/portal/test_languages.check``: no text of the other language but data).
Form values (a textarea's URIs, HTTP method names in a select) are data too."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from gateway.services import Services
from tests.admin.conftest import NAMES, as_session
from tests.admin.test_page_security import PAGES
from tests.portal.test_languages import check

# names of this world that are not the demo's (the checker knows the demo's), and the
# rule's own name, which the English messages quote as the org's do ("(三员分立)")
DATA = ("三员分立", "本级", "移动办公", *sorted(NAMES.values(), key=len, reverse=True), "信息中心",
        "市公务车队", "车队司机")


def _check(html: str, lang: str, where: str) -> None:
    html = re.sub(r"<textarea[^>]*>.*?</textarea>", " ", html, flags=re.S)
    html = re.sub(r">(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)<", "><", html)
    for value in DATA:
        html = html.replace(value, " ")
    check(html, lang, where)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_admin_pages_in_one_language(world: tuple[Services, TestClient], lang: str) -> None:
    services, client = world
    extra = {"secadmin": ["/portal/admin/policies?subject=user:zhao.min&system=vehicles"
                          "&path=/api/vehicles&method=GET"],
             "auditor": ["/portal/admin/activity?outcome=deny"]}
    as_session(services, client, "li.si")
    refused = client.get("/portal/admin/users", params={"lang": lang})
    assert refused.status_code == 403
    _check(refused.text, lang, "a refusal")
    for username in ("sysadmin", "secadmin", "auditor"):
        as_session(services, client, username)
        for path in [p for p in PAGES[username]] + extra.get(username, []):
            r = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
            assert r.status_code == 200, path
            _check(r.text, lang, path)
