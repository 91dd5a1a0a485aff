"""Interoperability with pyoidc (``oic``), the OpenID Certified relying-party library:
discovery, code + PKCE sign-in driven over HTTP, ID-token validation, userinfo,
refresh, introspection and revocation against a real gateway on 127.0.0.1."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

oic = pytest.importorskip("oic", reason="pyoidc (oic) not installed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

from oic.extension.client import Client as OAuthExtClient  # noqa: E402
from oic.oic import Client as OIDCClient  # noqa: E402
from oic.oic.message import (  # noqa: E402
    AccessTokenResponse,
    AuthorizationResponse,
    OpenIDSchema,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD  # noqa: E402

from gateway.services import Services  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from tests.oauth2.helpers import DEMO_PASSWORD, OFFICE, OFFICE_CB, audit_events  # noqa: E402
from tests.oauth2.live import live_gateway  # noqa: E402
from tests.wiring import apply_state  # noqa: E402


@pytest.fixture
def gateway(settings: Settings) -> Iterator[tuple[str, Services]]:
    with live_gateway(settings) as g:
        yield g


def _registration() -> RegistrationResponse:
    return RegistrationResponse(client_id=OFFICE[0], client_secret=OFFICE[1],
                                redirect_uris=[OFFICE_CB],
                                token_endpoint_auth_method="client_secret_basic")


def _relying_party(issuer: str) -> OIDCClient:
    rp = OIDCClient(client_authn_method=CLIENT_AUTHN_METHOD, verify_ssl=False)
    rp.provider_config(issuer)  # discovery + JWKS
    assert rp.provider_info["issuer"] == issuer
    rp.store_registration_info(_registration())
    rp.redirect_uris = [OFFICE_CB]
    return rp


def _sign_in(rp: OIDCClient, issuer: str, scope: list[str], **token_args: Any
             ) -> tuple[str, str, Any]:
    """Code + PKCE as zhang.san, the browser part over HTTP; (state, nonce, token response)."""
    import requests

    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    pkce_args, verifier = rp.add_code_challenge()
    assert pkce_args["code_challenge_method"] == "S256"
    auth_req = rp.construct_AuthorizationRequest(request_args={
        "client_id": OFFICE[0], "response_type": "code", "scope": scope,
        "redirect_uri": OFFICE_CB, "state": state, "nonce": nonce, **pkce_args})
    url = auth_req.request(rp.authorization_endpoint)

    # the browser part, over HTTP: authorize -> login form -> back to authorize -> callback
    browser = requests.Session()
    r = browser.get(url, allow_redirects=True)
    assert "/portal/login" in r.url
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    next_url = re.search(r'name="next" value="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    r = browser.post(f"{issuer}/portal/login", data={
        "csrf_token": csrf, "username": "zhang.san", "password": DEMO_PASSWORD,
        "next": next_url}, allow_redirects=False)
    assert r.status_code == 303
    r = browser.get(issuer + r.headers["location"], allow_redirects=False)
    assert r.status_code == 302
    callback = r.headers["location"]
    assert callback.startswith(OFFICE_CB)

    aresp = rp.parse_response(AuthorizationResponse, info=urlparse(callback).query,
                              sformat="urlencoded")
    assert aresp["state"] == state

    tresp = rp.do_access_token_request(
        state=state, request_args={"code": aresp["code"], "code_verifier": verifier,
                                   "redirect_uri": OFFICE_CB},
        authn_method="client_secret_basic", **token_args)
    assert isinstance(tresp, AccessTokenResponse), tresp
    return state, nonce, tresp


def test_pyoidc_relying_party(gateway: tuple[str, Services]) -> None:
    issuer, services = gateway
    rp = _relying_party(issuer)
    state, nonce, tresp = _sign_in(rp, issuer, ["openid", "profile", "department"])
    id_token = tresp["id_token"]  # verified by pyoidc: signature (JWKS), iss, aud, exp
    assert id_token["iss"] == issuer and id_token["sub"] == "zhang.san"
    assert id_token["aud"] == [OFFICE[0]] and id_token["nonce"] == nonce
    assert "email" not in id_token  # not asked for

    info = rp.do_user_info_request(state=state)
    assert isinstance(info, OpenIDSchema)
    assert info["sub"] == "zhang.san" and info["department"] == "jgswj"

    # pyoidc's refresh at its defaults sends no client credential: refused, with what is
    # missing said (authlib's words listed every method, 'none' among them)
    refused = rp.do_access_token_refresh(state=state)
    assert refused["error"] == "invalid_client", refused
    assert refused["error_description"].startswith("no client authentication")
    assert "client_secret_basic: Authorization: Basic" in refused["error_description"]
    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed
    assert refreshed["refresh_token"] != tresp["refresh_token"]
    access_token = refreshed["access_token"]
    # a new ID token with the refresh (Core section 12.2): the same sign-in, no nonce;
    # pyoidc keeps only the newest token response and builds its logout from it, which
    # raised MissingParameter("No valid id token available") without one
    again = refreshed["id_token"]  # verified by pyoidc as the first
    assert again["sub"] == "zhang.san" and again["aud"] == [OFFICE[0]]
    assert again["auth_time"] == id_token["auth_time"] and again["sid"] == id_token["sid"]
    # how the person signed in, kept on the refresh token's row (it had no amr)
    assert "nonce" not in again and again["amr"] == id_token["amr"] == ["pwd"]
    logout = rp.construct_EndSessionRequest(state=state, request_args={
        "post_logout_redirect_uri": "http://127.0.0.1:9102/"}).request(rp.end_session_endpoint)
    assert f"id_token_hint={refreshed['id_token_jwt']}" in logout

    ext = OAuthExtClient(client_authn_method=CLIENT_AUTHN_METHOD, verify_ssl=False)
    ext.provider_config(issuer)
    ext.store_registration_info(_registration())
    intro = ext.do_token_introspection(request_args={"token": access_token},
                                       authn_method="client_secret_basic")
    assert intro["active"] is True and intro["sub"] == "zhang.san"
    assert ext.do_token_revocation(request_args={"token": access_token},
                                   authn_method="client_secret_basic") == 200
    intro = ext.do_token_introspection(request_args={"token": access_token},
                                       authn_method="client_secret_basic")
    assert intro["active"] is False

    kinds = {e["event_type"] for e in audit_events(services)}
    assert {"login", "authorize", "token_issued", "token_refreshed", "token_introspected",
            "token_revoked"} <= kinds


def test_the_scopes_libraries_ask_for_by_default(gateway: tuple[str, Services]) -> None:
    """Grafana, GitLab, Nextcloud and most libraries ask for ``openid profile email``
    (``offline_access`` too, some a scope of their own): granted without registering
    them, an unknown scope dropped rather than refused, and the email claims released."""
    issuer, services = gateway
    apply_state(services, {"users": [{
        "username": "zhang.san", "name": "张三", "department": "jgswj",
        "roles": ["staff", "data_steward"], "email": "zhang.san@jgswj.gov.example",
        "email_verified": True, "phone_number": "+86 771 1234567"}]})
    rp = _relying_party(issuer)
    assert {"openid", "profile", "email", "phone", "address", "offline_access"} <= set(
        rp.provider_info["scopes_supported"])
    assert "email" in rp.provider_info["claims_supported"]
    state, _, tresp = _sign_in(rp, issuer, ["openid", "profile", "email", "offline_access",
                                            "groups"])
    assert tresp["scope"] == ["openid", "profile", "email", "offline_access"]
    assert tresp["id_token"]["email"] == "zhang.san@jgswj.gov.example"
    assert tresp["id_token"]["email_verified"] is True
    info = rp.do_user_info_request(state=state)
    assert info["email"] == "zhang.san@jgswj.gov.example"
    assert "phone_number" not in info  # phone was not asked for
    assert tresp.get("refresh_token")


def test_an_rs256_relying_party(gateway: tuple[str, Services]) -> None:
    """OpenID Connect Core section 15.1: an OP supports RS256 ID tokens. A client
    registered for them (id_token_signed_response_alg, set by ``govgate client
    id-token-alg``) gets them signed by the ring's RS256 key, published in the JWKS and
    named by discovery; pyoidc told to accept RS256 alone verifies them. A client that
    asks nothing keeps ES256."""
    from click.testing import CliRunner
    from oic.oauth2.message import WrongSigningAlgorithm

    from gateway.cli.main import cli
    from tests.wiring import parts

    issuer, services = gateway
    rp = _relying_party(issuer)
    assert rp.provider_info["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    # the RSA key is made when a client first asks for it (an RSA key's cost at start-up)
    jwks = requests_get(f"{issuer}/.well-known/jwks.json")["keys"]
    assert [k["alg"] for k in jwks] == ["ES256"]

    # not asked: ES256, which pyoidc holding out for RS256 refuses
    state, _, tresp = _sign_in(rp, issuer, ["openid"])
    assert tresp["id_token"].jws_header["alg"] == "ES256"
    with pytest.raises(WrongSigningAlgorithm):
        AccessTokenResponse(id_token=tresp["id_token_jwt"], token_type="Bearer",
                            access_token=tresp["access_token"]).verify(
            keyjar=rp.keyjar, algs={"sign": "RS256"})

    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url, "LANG": "C.UTF-8"}
    done = CliRunner().invoke(cli, ["client", "id-token-alg", "office-web", "SM3"], env=env)
    assert done.exit_code == 2 and "SM3" in done.output  # not an algorithm it offers
    done = CliRunner().invoke(cli, ["client", "id-token-alg", "office-web", "RS256"], env=env)
    assert done.exit_code == 0 and "RS256" in done.output, done.output
    parts(services).provider.server.clients.invalidate()
    services.keys.ring.invalidate()  # (the gateway's one-second cache of the ring)
    # made by that registration, published before the client's first sign-in
    jwks = {k["kid"]: k for k in requests_get(f"{issuer}/.well-known/jwks.json")["keys"]}
    rsa = [k for k in jwks.values() if k["alg"] == "RS256"]
    assert len(rsa) == 1 and rsa[0]["kty"] == "RSA" and rsa[0]["kid"].startswith("token_rs256-")

    rp = _relying_party(issuer)
    rp.store_registration_info(RegistrationResponse(
        **_registration().to_dict(), id_token_signed_response_alg="RS256"))
    algs = rp.sign_enc_algs("id_token")
    assert algs == {"sign": "RS256"}
    state, nonce, tresp = _sign_in(rp, issuer, ["openid", "profile"], algs=algs)
    id_token = tresp["id_token"]  # verified by pyoidc: RS256 only, the JWKS's RSA key
    assert id_token.jws_header["alg"] == "RS256"
    assert id_token.jws_header["kid"] == rsa[0]["kid"]
    assert id_token["sub"] == "zhang.san" and id_token["nonce"] == nonce
    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic",
                                           algs=algs)
    assert isinstance(refreshed, AccessTokenResponse), refreshed
    assert refreshed["id_token"].jws_header["alg"] == "RS256"
    # the RS256 ID token is this provider's as a logout hint (RP-Initiated Logout
    # section 2): naming another client is refused, and without a cookie it ends the
    # sign-in it names, so the refresh token stops
    import requests

    hint = refreshed["id_token_jwt"]
    r = requests.get(f"{issuer}/oauth2/logout", timeout=10,
                     params={"id_token_hint": hint, "client_id": "vehicles-sync"})
    assert r.status_code == 400, r.status_code
    assert requests.get(f"{issuer}/oauth2/logout", timeout=10,
                        params={"id_token_hint": hint}).status_code == 200
    ended = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert ended["error"] == "invalid_grant", ended
    # an access token is still ES256 by the token key: the RS256 key signs ID tokens only
    claims = services.keys.verify_jwt("token", refreshed["access_token"])
    assert claims["client_id"] == OFFICE[0]


def requests_get(url: str) -> Any:
    import requests

    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()
