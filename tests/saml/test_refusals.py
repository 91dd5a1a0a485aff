"""What the SAML IdP refuses, in-process, with messages a real pysaml2 SP made (and
then spoiled): an unknown SP, an ACS the metadata lacks, a request answered twice, a
broken or missing signature, SHA-1, a stale request, malformed base64, DEFLATE and
XML. Each gets the error page (400) with no redirect and no form, and an audit
record; none a 500. Also: IsPassive and ForceAuthn, a logout request unsigned, an
SP registered for transient NameIDs and the username, and encrypted assertions (an
SP with an encryption key gets no assertion in the clear; one whose key is unusable
gets none at all)."""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.idp.saml.store import SamlStore
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import audit_events, close_services, login, make_services
from tests.saml.conftest import register, seed_signing_key
from tests.saml.sp import TestSp
from tests.wiring import parts

BASE = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def idp(module_settings: Settings) -> Iterator[Services]:
    services = make_services(module_settings)
    seed_signing_key(services)
    yield services
    close_services(services)


@pytest.fixture(scope="module")
def app_client(idp: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(idp)), base_url=BASE) as c:
        yield c


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    """The module's client, as a browser of its own: no cookies of earlier tests."""
    app_client.cookies.clear()
    return app_client


@pytest.fixture(scope="module")
def sps(idp: Services, app_client: TestClient, tmp_path_factory: pytest.TempPathFactory
        ) -> dict[str, TestSp]:
    """``signing``: registered, signs its requests; ``plain``: registered, signs
    nothing; ``stranger``: registered nowhere; ``sealed``: registered, its metadata
    with a key for encryption."""
    metadata = app_client.get("/saml/metadata").text
    where = tmp_path_factory.mktemp("sps")
    out = {"signing": TestSp(where, idp_metadata=metadata, name="signing"),
           "plain": TestSp(where, idp_metadata=metadata, signs=False, name="plain"),
           "stranger": TestSp(where, idp_metadata=metadata, name="stranger"),
           "sealed": TestSp(where, idp_metadata=metadata, name="sealed", encrypts=True)}
    register(idp, out["signing"])
    register(idp, out["plain"], code="archives2")
    register(idp, out["sealed"], code="sealed", attributes=["name", "department"])
    return out


@pytest.fixture
def seen(idp: Services) -> int:
    """How many audit records there were when the test began."""
    return len(audit_events(idp))


def redirect_url(sp: TestSp, **kwargs: Any) -> str:
    _, info = sp.authn_request(**kwargs)
    return str(dict(info["headers"])["Location"])


def refused(response: Any, page_text: str) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert 'id="saml-post"' not in response.text
    assert page_text in response.text, response.text


def reasons(services: Services, since: int, event_type: str = "saml_login") -> list[str]:
    """The failures of ``event_type`` recorded after the first ``since`` records."""
    return [str(e["reason"]) for e in audit_events(services)[since:]
            if e["event_type"] == event_type and e["outcome"] == "failure"]


def with_request(url: str, xml: str) -> str:
    """``url`` with its SAMLRequest replaced by ``xml`` (deflated), the rest as sent."""
    parts = urlsplit(url)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflater.compress(xml.encode()) + deflater.flush()).decode()
    query = "&".join(
        f"SAMLRequest={urlencode({'v': encoded})[2:]}" if part.startswith("SAMLRequest=")
        else part for part in parts.query.split("&"))
    return f"{parts.path}?{query}"


def request_xml(url: str) -> str:
    encoded = parse_qs(urlsplit(url).query)["SAMLRequest"][0]
    return zlib.decompress(base64.b64decode(encoded), -15).decode()


def answer(client: TestClient, url: str) -> Any:
    """Present a request and follow it to the page that posts the response."""
    r = client.get(url, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client.get(r.headers["location"], follow_redirects=False)


def test_unknown_sp_and_unlisted_acs(client: TestClient, idp: Services,
                                     sps: dict[str, TestSp], seen: int) -> None:
    login(client)
    refused(client.get(redirect_url(sps["stranger"]), follow_redirects=False),
            "未在任何系统登记")
    evil = redirect_url(sps["signing"], assertion_consumer_service_url="https://evil.example/acs")
    refused(client.get(evil, follow_redirects=False), "不在该服务提供者登记的元数据中")
    index = redirect_url(sps["signing"], assertion_consumer_service_index="7")
    refused(client.get(index, follow_redirects=False), "不在该服务提供者登记的元数据中")
    found = reasons(idp, seen)
    assert any(r.startswith("UnknownSp") for r in found)
    assert sum(r.startswith("BadAcs") for r in found) == 2
    assert any("https://evil.example/acs" in r for r in found)


def test_a_request_is_answered_once(client: TestClient, idp: Services,
                                    sps: dict[str, TestSp], seen: int) -> None:
    login(client)
    sp = sps["signing"]
    url = redirect_url(sp)
    r = client.get(url, follow_redirects=False)
    resume = r.headers["location"]
    page = client.get(resume, follow_redirects=False)
    assert page.status_code == 200 and 'id="saml-post"' in page.text
    response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
    assert sp.client.parse_authn_request_response(
        response, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", sp.outstanding) is not None
    # the same request again, and the handle it was answered under
    refused(client.get(url, follow_redirects=False), "该请求已经处理过")
    refused(client.get(resume, follow_redirects=False), "登录请求已失效")
    # the SP itself refuses the response a second time (InResponseTo no longer outstanding)
    sp.outstanding.clear()
    with pytest.raises(Exception, match="Unsolicited response"):
        sp.client.parse_authn_request_response(
            response, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", sp.outstanding)
    assert any("answered already" in r for r in reasons(idp, seen))


def test_signatures(client: TestClient, idp: Services, sps: dict[str, TestSp], seen: int) -> None:
    login(client)
    signing, plain = sps["signing"], sps["plain"]
    url = redirect_url(signing)
    # tampered: another ACS index written into the signed request
    xml = request_xml(url).replace("<ns0:AuthnRequest ", '<ns0:AuthnRequest ForceAuthn="true" ')
    refused(client.get(with_request(url, xml), follow_redirects=False), "签名缺失或无法验证")
    # the signature stripped from a request of an SP that signs
    unsigned = url.split("&SigAlg=")[0]
    refused(client.get(unsigned, follow_redirects=False), "签名缺失或无法验证")
    # RSA-SHA1
    sha1 = redirect_url(signing, sigalg="http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    refused(client.get(sha1, follow_redirects=False), "签名缺失或无法验证")
    # an SP that does not sign, with a signature that does not verify: refused as well
    forged = redirect_url(plain) + "&SigAlg=" + urlencode(
        {"a": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"})[2:] + "&Signature=AAAA"
    refused(client.get(forged, follow_redirects=False), "签名缺失或无法验证")
    # HTTP-POST binding: an enveloped signature over a request changed after signing
    _, info = signing.authn_request("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', info["data"]))
    posted = base64.b64decode(fields["SAMLRequest"]).decode()
    assert "<ds:Signature" in posted or ":Signature" in posted
    spoiled = posted.replace('Version="2.0"', 'Version="2.0" ForceAuthn="true"', 1)
    r = client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(spoiled.encode()).decode()},
                    follow_redirects=False)
    refused(r, "签名缺失或无法验证")
    # HTTP-POST binding: an unsigned request from an SP whose metadata says it signs
    _, info = signing.authn_request("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                                    sign=False)
    bare = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', info["data"]))["SAMLRequest"]
    assert "Signature" not in base64.b64decode(bare).decode()
    refused(client.post("/saml/sso", data={"SAMLRequest": bare}, follow_redirects=False),
            "签名缺失或无法验证")
    r = client.post("/saml/sso", data={"SAMLRequest": fields["SAMLRequest"]},
                    follow_redirects=False)
    assert r.status_code == 303  # the same request unspoiled is accepted
    found = reasons(idp, seen)
    assert sum(r.startswith("BadSignature") for r in found) == 6
    assert any("rsa-sha1" in r for r in found)


def test_malformed_input_is_a_400_page(client: TestClient, idp: Services,
                                       sps: dict[str, TestSp], seen: int) -> None:
    plain = sps["plain"]
    good = redirect_url(plain)
    xml = request_xml(good)
    stale_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = re.sub(r'IssueInstant="[^"]+"', f'IssueInstant="{stale_at}"', xml)
    cases = {
        "/saml/sso": "不是有效的 SAML 消息",
        "/saml/sso?SAMLRequest=%21%21not-base64": "不是有效的 SAML 消息",
        "/saml/sso?" + urlencode({"SAMLRequest": base64.b64encode(b"plain").decode()}):
            "不是有效的 SAML 消息",
        with_request(good, "<hello>no SAML</hello>"): "不是有效的 SAML 消息",
        with_request(good, "<unclosed"): "不是有效的 SAML 消息",
        with_request(good, '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'): "不是有效的 SAML 消息",
        with_request(good, stale): "请求已过期或时间不正确",
        with_request(good, xml.replace(f"{BASE}/saml/sso", "https://other.example/sso")):
            "不是有效的 SAML 消息",
    }
    for url, text in cases.items():
        refused(client.get(url, follow_redirects=False), text)
    for body, kind in ((b'{"SAMLRequest": "x"}', "application/json"),
                       (b"SAMLRequest=%%%", "application/x-www-form-urlencoded"),
                       (b"RelayState=" + b"r" * 2000 + b"&SAMLRequest=x",
                        "application/x-www-form-urlencoded"),
                       (b"SAMLRequest=" + b"A" * 300_000, "application/x-www-form-urlencoded")):
        refused(client.post("/saml/sso", content=body, headers={"content-type": kind},
                            follow_redirects=False), "不是有效的 SAML 消息")
    refused(client.get("/saml/sso/continue?request=nothing", follow_redirects=False),
            "登录请求已失效")
    refused(client.get("/saml/slo", follow_redirects=False), "不是有效的 SAML 消息")
    assert len(reasons(idp, seen)) == len(cases) + 5
    assert any(r.startswith("Stale") for r in reasons(idp, seen))


def test_passive_and_forced_authentication(client: TestClient, idp: Services,
                                           sps: dict[str, TestSp], seen: int) -> None:
    sp = sps["signing"]
    # IsPassive without a session: a signed NoPassive response, to the verified ACS
    page = answer(client, redirect_url(sp, is_passive="true"))
    assert page.status_code == 200 and 'id="saml-post"' in page.text
    response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
    assert "NoPassive" in base64.b64decode(response).decode()
    # ForceAuthn with a session: the sign-in form first
    login(client)
    r = answer(client, redirect_url(sp, force_authn="true"))
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?next=")
    # the same without ForceAuthn: the response at once
    assert 'id="saml-post"' in answer(client, redirect_url(sp)).text


def test_logout_requests_must_be_signed(client: TestClient, idp: Services,
                                        sps: dict[str, TestSp], seen: int) -> None:
    url = sps["signing"].logout_request("some-name-id")
    unsigned = url.split("&SigAlg=")[0]
    refused(client.get(unsigned, follow_redirects=False), "签名缺失或无法验证")
    stranger = sps["stranger"].logout_request("some-name-id")
    refused(client.get(stranger, follow_redirects=False), "未在任何系统登记")
    r = client.get(url, follow_redirects=False)  # signed, no session holds the NameID
    assert r.status_code == 303 and "SAMLResponse=" in r.headers["location"]
    kinds = [(e["outcome"], e["reason"]) for e in audit_events(idp)[seen:]
             if e["event_type"] == "saml_logout"]
    assert [k[0] for k in kinds] == ["failure", "failure", "success"]
    assert kinds[2][1] == "SP-initiated logout: no live session"


def test_transient_name_ids_and_the_username_released(client: TestClient, idp: Services,
                                                      sps: dict[str, TestSp]) -> None:
    plain = sps["plain"]
    register(idp, plain, code="archives2", name_id="transient", release_username=True,
             attributes=["name"])
    try:
        login(client)
        seen = []
        for _ in range(2):
            page = answer(client, redirect_url(plain))
            response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
            parsed = plain.client.parse_authn_request_response(
                response, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", plain.outstanding)
            assert parsed.name_id.format.endswith(":transient")
            assert parsed.ava["uid"] == ["zhang.san"] and parsed.ava["name"] == ["张三"]
            seen.append(parsed.name_id.text)
        assert seen[0] != seen[1]  # a new NameID in every assertion
    finally:
        register(idp, plain, code="archives2")


def test_without_xmlsec1_the_idp_answers_503(client: TestClient, idp: Services,
                                             sps: dict[str, TestSp], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A host missing Debian's xmlsec1: a problem saying so, not a 500."""
    import saml2.sigver

    def missing(paths: Any = None) -> str:
        raise saml2.sigver.SigverError("Cannot find ['xmlsec1']")

    extra = TestSp(tmp_path, idp_metadata=client.get("/saml/metadata").text, name="extra")
    monkeypatch.setattr(saml2.sigver, "get_xmlsec_binary", missing)
    register(idp, extra, code="archives3")  # another SP: the engine is rebuilt
    r = client.get("/saml/metadata")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:govgate:error:saml_unavailable"
    assert "xmlsec1" in r.json()["detail"]
    monkeypatch.undo()
    assert client.get("/saml/metadata").status_code == 200


def _assertion(sp: TestSp, page: Any) -> Any:
    response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
    return sp.client.parse_authn_request_response(
        response, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", sp.outstanding)


def test_a_logout_request_ends_sessions_once(client: TestClient, idp: Services,
                                             sps: dict[str, TestSp], seen: int) -> None:
    """A LogoutRequest travels through the browser (history, proxies' logs): presented
    again within its lifetime it must not end the session the user signed in to since."""
    sp = sps["signing"]
    login(client)
    name_id = _assertion(sp, answer(client, redirect_url(sp))).name_id.text
    logout = sp.logout_request(name_id)  # no SessionIndex: every session of the NameID
    assert client.get(logout, follow_redirects=False).status_code == 303
    assert client.get("/portal", follow_redirects=False).headers["location"].startswith(
        "/portal/login")
    login(client)
    assert _assertion(sp, answer(client, redirect_url(sp))).name_id.text == name_id
    refused(client.get(logout, follow_redirects=False), "该请求已经处理过")
    assert client.get("/portal", follow_redirects=False).status_code == 200  # still in
    found = reasons(idp, seen, "saml_logout")
    assert len(found) == 1 and found[0].startswith("Replayed")


def test_a_transient_sp_gets_no_persistent_name_id(client: TestClient, idp: Services,
                                                    sps: dict[str, TestSp], seen: int) -> None:
    """An SP registered for transient NameIDs may not ask its way to a stable one."""
    plain = sps["plain"]
    register(idp, plain, code="archives2", name_id="transient")
    try:
        login(client)
        page = answer(client, redirect_url(
            plain, nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"))
        response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
        xml = base64.b64decode(response).decode()
        assert "InvalidNameIDPolicy" in xml and not re.search(r"<\w+:Assertion[\s>]", xml)
        assert any("InvalidNameIDPolicy" in r for r in reasons(idp, seen))
    finally:
        register(idp, plain, code="archives2")


def _status_of(page: Any) -> tuple[list[str], bool]:
    """The status codes of the Response the page posts, and whether it has an assertion."""
    assert page.status_code == 200 and 'id="saml-post"' in page.text, page.text[:300]
    response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
    xml = base64.b64decode(response).decode()
    return (re.findall(r'StatusCode Value="([^"]+)"', xml),
            bool(re.search(r"<\w+:Assertion[\s>]", xml)))


def test_what_a_request_asks_and_cannot_have_gets_no_assertion(
        client: TestClient, idp: Services, sps: dict[str, TestSp], seen: int) -> None:
    """SAML Core 3.4.1: an authentication context the IdP does not give (a second factor
    asked for, ``exact``) is NoAuthnContext, a ``Subject`` naming whom to sign in is
    RequestUnsupported: an assertion of a password sign-in, or of whoever the
    browser's session is, would answer a question the SP did not ask."""
    from saml2.saml import AuthnContextClassRef, NameID, Subject
    from saml2.samlp import RequestedAuthnContext

    sp = sps["plain"]
    login(client)
    ac = "urn:oasis:names:tc:SAML:2.0:ac:classes:"

    def asking(comparison: str, *classes: str) -> Any:
        return RequestedAuthnContext(comparison=comparison, authn_context_class_ref=[
            AuthnContextClassRef(text=ac + c) for c in classes])

    no_context = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
    for wanted in (asking("exact", "MobileTwoFactorContract", "X509"),
                   asking("better", "PasswordProtectedTransport")):
        codes, assertion = _status_of(client.get(redirect_url(  # at once, no sign-in
            sp, requested_authn_context=wanted), follow_redirects=False))
        assert no_context in codes and not assertion
    codes, assertion = _status_of(answer(client, redirect_url(
        sp, requested_authn_context=asking("minimum", "Password"))))
    assert codes == ["urn:oasis:names:tc:SAML:2.0:status:Success"] and assertion
    someone = Subject(name_id=NameID(
        format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", text="someone-else"))
    codes, assertion = _status_of(client.get(redirect_url(sp, subject=someone),
                                             follow_redirects=False))
    assert "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported" in codes and not assertion
    found = reasons(idp, seen)
    assert sum(no_context in r for r in found) == 2
    assert any("Subject" in r for r in found)


def test_a_disabled_users_old_session_gets_no_assertion(client: TestClient, idp: Services,
                                                        sps: dict[str, TestSp], seen: int
                                                        ) -> None:
    sp = sps["signing"]
    login(client, username="wang.wu")
    assert _status_of(answer(client, redirect_url(sp)))[1]
    idp.org.disable_user("wang.wu")
    try:
        r = answer(client, redirect_url(sp))
        assert r.status_code == 403 and 'id="saml-post"' not in r.text
        assert any(r == "account not active" for r in reasons(idp, seen))
    finally:
        idp.org.enable_user("wang.wu")


def test_an_acs_dropped_while_the_user_signs_in_gets_nothing(
        client: TestClient, idp: Services, sps: dict[str, TestSp], seen: int) -> None:
    """The request was checked against the metadata when it arrived; the metadata
    registered when the response leaves is what counts (an ACS taken out of it, as
    one does with an endpoint gone bad, gets no assertion in the 15 minutes after)."""
    from tests.wiring import apply_state

    plain = sps["plain"]
    r = client.get(redirect_url(plain), follow_redirects=False)  # no session yet
    assert r.status_code == 303
    moved = plain.metadata().replace(f"{plain.base}/acs", f"{plain.base}/acs-new")
    apply_state(idp, {"systems": [{
        "code": "archives2", "name": "档案管理系统", "department": "jgswj",
        "upstream": plain.base, "saml_sp": {"metadata": moved}}]})
    try:
        login(client)
        refused(client.get(r.headers["location"], follow_redirects=False),
                "不在该服务提供者登记的元数据中")
        assert any(r.startswith("BadAcs") for r in reasons(idp, seen))
    finally:
        register(idp, plain, code="archives2")


XMLENC = "http://www.w3.org/2001/04/xmlenc#"
XMLENC11 = "http://www.w3.org/2009/xmlenc11#"


def _posted_xml(page: Any) -> str:
    assert page.status_code == 200 and 'id="saml-post"' in page.text, page.text[:300]
    response = re.search(r'name="SAMLResponse" value="([^"]+)"', page.text).group(1)
    return base64.b64decode(response).decode()


def _listing(metadata: str, *algorithms: str) -> str:
    """``metadata`` with ``EncryptionMethod`` elements in its encryption KeyDescriptor."""
    found = re.search(r'<(\w+:)?KeyDescriptor use="encryption">.*?(</(\w+:)?KeyDescriptor>)',
                      metadata, re.S)
    assert found is not None
    prefix = found.group(1) or ""
    methods = "".join(f'<{prefix}EncryptionMethod Algorithm="{a}"/>' for a in algorithms)
    return metadata[:found.start(2)] + methods + metadata[found.start(2):]


def _register_metadata(idp: Services, sp: TestSp, metadata: str, **saml: Any) -> None:
    from tests.wiring import apply_state

    apply_state(idp, {"systems": [{
        "code": "sealed", "name": "档案管理系统", "department": "jgswj", "upstream": sp.base,
        "saml_sp": {"metadata": metadata, "attributes": ["name", "department"], **saml}}]})


def test_an_sp_with_an_encryption_key_gets_its_assertion_encrypted(
        client: TestClient, idp: Services, sps: dict[str, TestSp]) -> None:
    """The pysaml2 SP decrypts with its own key; nothing of the assertion (NameID,
    attributes) is in the clear. AES-256-CBC with RSA-OAEP for an SP that names no
    algorithm, AES-256-GCM for one that lists it; an SP whose metadata has no
    encryption key, or that the system's setting exempts, gets it signed only."""
    sealed = sps["sealed"]
    login(client)
    for listed, algorithm in (((), XMLENC + "aes256-cbc"),
                              ((XMLENC11 + "aes256-gcm", XMLENC + "aes256-cbc"),
                               XMLENC11 + "aes256-gcm")):
        _register_metadata(idp, sealed, _listing(sealed.metadata(), *listed))
        page = answer(client, redirect_url(sealed))
        xml = _posted_xml(page)
        assert "EncryptedAssertion" in xml and not re.search(r"<(\w+:)?Assertion[\s>]", xml)
        assert "jgswj" not in xml and "AttributeStatement" not in xml
        methods = re.findall(r'EncryptionMethod Algorithm="([^"]+)"', xml)
        assert methods == [algorithm, XMLENC + "rsa-oaep-mgf1p"], methods
        parsed = _assertion(sealed, page)
        assert parsed.name_id.text not in xml
        assert parsed.ava == {"name": ["张三"], "department": ["jgswj"]}
        assert parsed.name_id.format.endswith(":persistent")
        assert parsed.assertion.signature is not None  # signed inside the encryption
        # the SessionIndex kept for single logout is the one inside the ciphertext
        index = parsed.session_info()["session_index"]
        assert SamlStore(idp.engine, idp.keys, idp.clock).sessions_of(
            sealed.entity_id, parsed.name_id.text, (index,))
    # exempted by the system's setting (as Keycloak's "Encrypt assertions" off)
    _register_metadata(idp, sealed, sealed.metadata(), encrypt_assertions=False)
    page = answer(client, redirect_url(sealed))
    xml = _posted_xml(page)
    assert "EncryptedAssertion" not in xml and "jgswj" in xml
    assert _assertion(sealed, page).ava["name"] == ["张三"]
    # no encryption key in the metadata: signed, not encrypted
    xml = _posted_xml(answer(client, redirect_url(sps["signing"])))
    assert "EncryptedAssertion" not in xml and re.search(r"<\w+:Assertion[\s>]", xml)
    register(idp, sealed, code="sealed", attributes=["name", "department"])


def test_an_sp_whose_encryption_key_is_unusable_gets_nothing(
        client: TestClient, idp: Services, sps: dict[str, TestSp], seen: int) -> None:
    """Registration refuses such a key (tests/saml/test_state_file.py); one that went
    bad while registered (its certificate expired) is refused when the SP's request
    arrives, and when the response would leave after the user signed in: the error
    page, audited, no assertion in the clear instead and no 500."""

    from gateway.tables import systems
    from tests.saml.test_state_file import encryption_cert

    sealed = sps["sealed"]
    enc = re.search(r'KeyDescriptor use="encryption">.*?X509Certificate>([^<]+)<',
                    sealed.metadata(), re.S)
    assert enc is not None
    expired = sealed.metadata().replace(enc.group(1), encryption_cert("expired"))

    def stored(metadata: str) -> None:  # as it stands after the certificate expired
        with idp.engine.begin() as conn:
            conn.execute(systems.update().where(systems.c.code == "sealed").values(
                saml_sp={"entity_id": sealed.entity_id, "metadata": metadata,
                         "name_id": "persistent", "release_username": False}))

    try:
        login(client)
        stored(expired)
        refused(client.get(redirect_url(sealed), follow_redirects=False), "加密证书不可用")
        client.cookies.clear()
        stored(sealed.metadata())
        r = client.get(redirect_url(sealed), follow_redirects=False)  # accepted, no session
        assert r.status_code == 303
        stored(expired)
        login(client)
        refused(client.get(r.headers["location"], follow_redirects=False), "加密证书不可用")
        found = [r for r in reasons(idp, seen) if r.startswith("BadEncryptionKey")]
        assert len(found) == 2 and all("encryption certificate expired" in r for r in found)
        assert not any(e["event_type"] == "saml_login" and e["outcome"] == "success"
                       for e in audit_events(idp)[seen:])
    finally:
        register(idp, sealed, code="sealed", attributes=["name", "department"])
