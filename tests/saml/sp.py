"""A real SAML service provider for the tests: pysaml2's ``Saml2Client`` with a key
and certificate of its own, served on 127.0.0.1 by uvicorn (a thread), as a system
would run it:

    GET  /login?binding=redirect|post   an AuthnRequest to the IdP: a redirect, or a
                                        page whose form posts it (the browser sends it)
    POST /acs                           the IdP's Response: verified by pysaml2 (the
                                        signatures, InResponseTo one of its outstanding
                                        requests, audience, times); the user as JSON
    POST /slo                           back-channel LogoutRequest (SOAP): verified, the
                                        local session ended, a SOAP LogoutResponse
    GET  /slo                           the IdP's LogoutResponse (HTTP-Redirect binding), or
                                        its front-channel LogoutRequest: verified, a
                                        signed LogoutResponse back by redirect (or by a
                                        form to post: ``answers_by_post``)
    GET  /logout?name_id=...            an SP-initiated LogoutRequest (HTTP-Redirect)
    POST /cas/                          a CAS single-logout notice (recorded only)

It records what it received (``logins``, ``soap_logouts``, ``logout_responses``,
``cas_logouts``, ``front_logouts``) for the tests to read.
"""

from __future__ import annotations

import functools
import html
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

# the gateway's import of pysaml2 first: its temporary files closed as they are made
# (gateway.idp.saml.library), else a failed verification leaves them to the collector
import gateway.idp.saml.library  # noqa: F401

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pysaml2 imports a deprecated cryptography name
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import create_metadata_string
    from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
    from saml2.samlp import STATUS_SUCCESS
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.oauth2.live import free_port
from tests.oauth2.live import serving as serve_app

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@functools.cache
def _pems(name: str) -> tuple[bytes, bytes]:
    """A self-signed RSA certificate and its key (PEM), made once per test run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def make_cert(directory: Path, name: str) -> tuple[str, str]:
    """The SP's certificate and key as PEM files in ``directory``."""
    cert, key = _pems(name)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert)
    key_file.write_bytes(key)
    return str(cert_file), str(key_file)


class TestSp:
    __test__ = False  # not a test class

    def __init__(self, directory: Path, *, idp_metadata: str, signs: bool = True,
                 name: str = "sp", encrypts: bool = False, soap: bool = True,
                 answers_by_post: bool = False) -> None:
        """``encrypts``: a key pair of its own for encryption, in its metadata as a
        ``KeyDescriptor use="encryption"`` (as Shibboleth SP's), which it decrypts with;
        ``soap``: False, single logout by HTTP-Redirect only (the front channel);
        ``answers_by_post``: its LogoutResponse to a front-channel LogoutRequest goes
        back by HTTP-POST (an enveloped signature), as some SPs answer."""
        self.answers_by_post = answers_by_post
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.entity_id = f"{self.base}/metadata"
        cert, key = make_cert(directory, name)
        encryption = ({"encryption_keypairs": [dict(zip(
            ("cert_file", "key_file"), make_cert(directory, f"{name}-enc"), strict=True))]}
            if encrypts else {})
        self.config = SPConfig().load({
            **encryption,
            "entityid": self.entity_id,
            "key_file": key, "cert_file": cert,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "service": {"sp": {
                "endpoints": {
                    "assertion_consumer_service": [(f"{self.base}/acs", BINDING_HTTP_POST)],
                    "single_logout_service": [(f"{self.base}/slo", BINDING_SOAP)] * soap
                    + [(f"{self.base}/slo", BINDING_HTTP_REDIRECT)],
                },
                "authn_requests_signed": signs,
                "logout_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": True,
                "allow_unsolicited": False,
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                # pysaml2 signs queries with RSA-SHA1 unless told; the gateway refuses SHA-1
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }},
            "allow_unknown_attributes": True,
            "metadata": {"inline": [idp_metadata]},
        })
        self.client = Saml2Client(config=self.config)
        self.idp = next(iter(self.config.metadata.identity_providers()))
        self.outstanding: dict[str, str] = {}
        self.logins: list[dict[str, Any]] = []
        self.soap_logouts: list[str] = []
        self.logout_responses: list[bool] = []
        self.cas_logouts: list[str] = []
        self.front_logouts: list[str] = []

    def metadata(self) -> str:
        return str(create_metadata_string(None, self.config, valid=None, sign=False).decode())

    # -- the SP's side of each exchange, callable without HTTP too ---------------------

    def authn_request(self, binding: str = BINDING_HTTP_REDIRECT, **kwargs: Any
                      ) -> tuple[str, dict[str, Any]]:
        """(request ID, pysaml2's HTTP arguments) of a new AuthnRequest."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            req_id, info = self.client.prepare_for_authenticate(
                entityid=self.idp, relay_state="/after-login", binding=binding, **kwargs)
        self.outstanding[req_id] = "/after-login"
        return req_id, info

    def logout_request(self, name_id: str) -> str:
        """The URL of a signed SP-initiated LogoutRequest (HTTP-Redirect binding)."""
        subject = NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id,
                         sp_name_qualifier=self.entity_id, name_qualifier=self.idp)
        destination = f"{self.idp.removesuffix('/metadata')}/slo"
        _, request = self.client.create_logout_request(
            destination, self.idp, name_id=subject, sign=False)
        info = self.client.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination,
                                         relay_state="bye", sign=True)
        return str(dict(info["headers"])["Location"])

    # -- the web app -------------------------------------------------------------------

    def app(self) -> Starlette:
        async def login(request: Request) -> Response:
            binding = (BINDING_HTTP_POST if request.query_params.get("binding") == "post"
                       else BINDING_HTTP_REDIRECT)
            _, info = self.authn_request(binding)
            if binding == BINDING_HTTP_REDIRECT:
                return RedirectResponse(dict(info["headers"])["Location"], status_code=302)
            return HTMLResponse(info["data"])

        async def acs(request: Request) -> Response:
            form = await request.form()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = self.client.parse_authn_request_response(
                        str(form["SAMLResponse"]), BINDING_HTTP_POST, self.outstanding)
            except Exception as exc:
                return JSONResponse({"error": f"{type(exc).__name__}: {exc}"[:300]}, 403)
            if response is None:
                return JSONResponse({"error": "no response"}, 403)
            self.outstanding.pop(response.in_response_to, None)
            info = {"name_id": response.name_id.text, "format": response.name_id.format,
                    "encrypted": "EncryptedAssertion" in response.xmlstr.decode()
                    if isinstance(response.xmlstr, bytes) else "EncryptedAssertion" in str(
                        response.xmlstr),
                    "attributes": response.ava, "relay_state": form.get("RelayState"),
                    "session_index": response.session_info()["session_index"]}
            self.logins.append(info)
            return JSONResponse(info)

        async def slo_soap(request: Request) -> Response:
            body = (await request.body()).decode()
            try:
                parsed = self.client.parse_logout_request(body, BINDING_SOAP)
                name_id = parsed.message.name_id.text
                signed = str(self.client.create_logout_response(
                    parsed.message, [BINDING_SOAP], sign=True))
            except Exception as exc:
                return Response(f"{type(exc).__name__}: {exc}"[:300], 400)
            self.soap_logouts.append(name_id)
            # signed on its own, then enveloped as text (pysaml2's use_soap signs inside
            # the envelope, which its own receiving side cannot verify)
            body = signed.split("?>", 1)[1] if signed.startswith("<?xml") else signed
            return Response(f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}"><soap-env:Body>'
                            f"{body}</soap-env:Body></soap-env:Envelope>", media_type="text/xml")

        async def slo_redirect(request: Request) -> Response:
            query = {k: v[0] for k, v in parse_qs(request.url.query).items()}
            if "SAMLRequest" in query:
                return front_logout(query)
            try:
                response = self.client.parse_logout_request_response(
                    query["SAMLResponse"], BINDING_HTTP_REDIRECT)
                ok = response.response.status.status_code.value == STATUS_SUCCESS
            except Exception:
                ok = False
            self.logout_responses.append(ok)
            return HTMLResponse(f"<p id='logged-out'>{html.escape(str(ok))}</p>")

        def front_logout(query: dict[str, str]) -> Response:
            try:
                parsed = self.client.parse_logout_request(
                    query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                    relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                    signature=query.get("Signature"))
                binding = BINDING_HTTP_POST if self.answers_by_post else BINDING_HTTP_REDIRECT
                response = self.client.create_logout_response(
                    parsed.message, [binding], sign=self.answers_by_post)
                where = self.client.response_args(parsed.message, [binding])
                info = self.client.apply_binding(
                    binding, str(response), where["destination"],
                    query.get("RelayState", ""), response=True, sign=True,
                    sigalg=SIG_RSA_SHA256)
            except Exception as exc:
                return Response(f"{type(exc).__name__}: {exc}"[:300], 400)
            self.front_logouts.append(parsed.message.name_id.text)
            if self.answers_by_post:  # a page whose form posts it
                return HTMLResponse(info["data"])
            return RedirectResponse(dict(info["headers"])["Location"], 302)

        async def logout(request: Request) -> Response:
            return RedirectResponse(self.logout_request(request.query_params["name_id"]), 302)

        async def cas_slo(request: Request) -> Response:
            self.cas_logouts.append(str((await request.form()).get("logoutRequest", "")))
            return Response("ok")

        return Starlette(routes=[
            Route("/login", login), Route("/acs", acs, methods=["POST"]),
            Route("/slo", slo_soap, methods=["POST"]), Route("/slo", slo_redirect),
            Route("/logout", logout), Route("/cas/", cas_slo, methods=["POST"]),
        ])


@contextmanager
def serving(sp: TestSp) -> Iterator[TestSp]:
    with serve_app(sp.app(), sp.port, lifespan="off"):
        yield sp


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
