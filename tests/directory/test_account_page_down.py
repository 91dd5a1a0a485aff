"""The account page's forms when the directory cannot check a directory user's
password (review of 2026-12-05, fourth session): the directory's deadlines now end a
slow bind with ``directory_unavailable``, and the account page's proof (a new
authenticator here; new recovery codes and a key removed take the same path)
answered it as the API's problem JSON, in English, naming the directory's address,
to a browser. The sign-in page already said it in the page's language."""

from __future__ import annotations

from starlette.testclient import TestClient

from gateway.services import Services
from tests.directory.slapd import USER_PASSWORD, Slapd
from tests.directory.test_sign_in import denv as denv  # the fixture
from tests.directory.test_sign_in import portal as portal  # the fixture
from tests.oauth2.helpers import csrf_of, login

OWN = {"Origin": "http://127.0.0.1:8080"}


def test_the_account_page_says_the_directory_is_down_in_its_language(
        portal: TestClient, services: Services, slapd: Slapd) -> None:
    assert login(portal, "user0006", USER_PASSWORD).status_code == 303
    csrf = csrf_of(portal.get("/portal/account").text)
    slapd.stop()
    try:
        answers = [(lang, portal.post(f"/portal/account/totp?lang={lang}", headers=OWN, data={
            "csrf_token": csrf, "password": USER_PASSWORD})) for lang in ("zh", "en")]
    finally:
        slapd.start()
    for lang, r in answers:
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert ("目录服务暂不可用" if lang == "zh" else "The directory is unavailable") in r.text
        assert "ldap://" not in r.text  # the directory's address is the operator's
    assert services.org.get_user("user0006").failed_logins == 0  # not counted
    # the directory back: the same form goes on
    r = portal.post("/portal/account/totp", headers=OWN, data={
        "csrf_token": csrf, "password": USER_PASSWORD})
    assert r.status_code == 200 and "directory" not in r.text.lower()
