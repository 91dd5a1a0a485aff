"""The SAML protocol work, on pysaml2's ``Server``: read and verify AuthnRequests and
LogoutRequests, write signed Responses, LogoutResponses and LogoutRequests, and the
IdP's metadata. No I/O but xmlsec1; one ``SamlEngine`` per (signing key, set of
registered SPs), rebuilt by ``gateway.idp.saml.routes.SamlIdp`` when either changes.

What pysaml2 does not do the way govgate needs, done here:

- which SP: the issuer is looked up among the registered SPs before anything else;
- signatures: an SP whose metadata says ``AuthnRequestsSigned`` must sign, and a
  signature that is present must verify (pysaml2 checks enveloped signatures, with
  the certificates of the SP's metadata only; the HTTP-Redirect query signature is
  checked by ``bindings.verify_redirect`` over the raw query);
- freshness: IssueInstant within ``REQUEST_MAX_AGE`` (plus the clock skew), where
  pysaml2 allows a day;
- the assertion consumer service: the URL or index the request names must be one of
  the SP's HTTP-POST ACS in its metadata (a request naming none gets the default);
- encryption: an SP whose assertions are to be encrypted (``gateway.idp.saml.encryption``)
  and none of whose keys is usable is refused when its request arrives, before the
  user signs in, and again when the assertion is made;
- what the request asks that the IdP does not give (SAML Core 3.4.1): a
  ``RequestedAuthnContext`` the password sign-in the assertion states does not
  satisfy (``NoAuthnContext``), a ``Subject`` naming whom to sign in
  (``RequestUnsupported``): pysaml2 would answer with an assertion all the same.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from gateway.idp.saml import bindings
from gateway.idp.saml import library as lib
from gateway.idp.saml.encryption import Encryption, choose
from gateway.idp.saml.errors import (
    BadAcs,
    BadEncryptionKey,
    BadSignature,
    Refused,
    Stale,
    UnknownSp,
)
from gateway.idp.saml.names import (
    POST,
    REDIRECT,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_REQUEST_UNSUPPORTED,
)
from gateway.idp.saml.signing import SigningKey
from gateway.idp.saml.sps import NAME_IDS, ServiceProvider

REQUEST_MAX_AGE = 300  # seconds an AuthnRequest or LogoutRequest stays acceptable
ASSERTION_LIFETIME_MINUTES = 5
_AC = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
AUTHN_CONTEXT_CLASS = _AC + "PasswordProtectedTransport"
#: the requested classes the assertion's AUTHN_CONTEXT_CLASS satisfies, by Comparison
#: (SAML Core 3.3.2.2.1); with no order of the other classes known, a class not named
#: here is taken as one govgate does not give (fail closed)
SATISFIES = {
    "exact": {AUTHN_CONTEXT_CLASS, _AC + "unspecified"},
    "minimum": {AUTHN_CONTEXT_CLASS, _AC + "Password", _AC + "unspecified"},
    "maximum": {AUTHN_CONTEXT_CLASS, _AC + "unspecified"},
    "better": {_AC + "Password", _AC + "unspecified"},
}
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_SESSION_INDEX = re.compile(r'SessionIndex="([^"]+)"')


@dataclass(frozen=True)
class Incoming:
    """A verified AuthnRequest."""

    sp: ServiceProvider
    request_id: str
    acs_url: str
    name_id_format: str | None  # as the request's NameIDPolicy asks (None: the SP's own)
    force_authn: bool
    is_passive: bool
    binding: str  # REDIRECT | POST
    #: (status, why) when the request asks what the IdP does not give: the answer is a
    #: Response with that status and no assertion
    unmet: tuple[str, str] | None = None


def unmet(message: Any) -> tuple[str, str] | None:
    """What of an AuthnRequest ``message`` the IdP cannot give, as (status, why)."""
    if getattr(message, "subject", None) is not None:
        return STATUS_REQUEST_UNSUPPORTED, "a Subject in the AuthnRequest is not supported"
    wanted = getattr(message, "requested_authn_context", None)
    if wanted is None:
        return None
    comparison = str(wanted.comparison or "exact")
    classes = [str(c.text or "").strip() for c in wanted.authn_context_class_ref or []]
    if not classes or not SATISFIES.get(comparison, set()) & set(classes):
        named = ", ".join(c[:100] for c in classes[:5]) or "an AuthnContextDeclRef"
        return STATUS_NO_AUTHN_CONTEXT, (f"RequestedAuthnContext {comparison[:20]} {named}: "
                                         f"the sign-in is {AUTHN_CONTEXT_CLASS}")
    return None


@dataclass(frozen=True)
class IncomingLogout:
    """A verified LogoutRequest from an SP."""

    sp: ServiceProvider
    message: Any  # pysaml2's LogoutRequest, for the response
    request_id: str
    name_id: str
    session_indexes: tuple[str, ...]
    binding: str


@dataclass(frozen=True)
class Outgoing:
    """A message for the browser to carry: a redirect (``location``) or a form to post
    (``url`` and ``fields``)."""

    location: str | None = None
    url: str | None = None
    fields: tuple[tuple[str, str], ...] = ()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(value: str | None) -> datetime:
    try:
        text = (value or "").strip().removesuffix("Z")
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(f"IssueInstant {str(value)[:40]!r} is not a time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _fresh(message: Any, now: datetime, skew: int, sp: ServiceProvider) -> None:
    at = _instant(getattr(message, "issue_instant", None))
    if at > now + timedelta(seconds=skew) or at < now - timedelta(
            seconds=REQUEST_MAX_AGE + skew):
        raise Stale(f"IssueInstant {_iso(at)} outside {REQUEST_MAX_AGE} s of {_iso(now)}",
                    sp=sp.meta.entity_id, system=sp.system)


def encryption_for(sp: ServiceProvider, now: datetime) -> Encryption | None:
    """How the SP's assertions are encrypted (None: they are not), or BadEncryptionKey."""
    try:
        return choose(sp.meta.encryption_keys, sp.encrypt_assertions, now)
    except ValueError as exc:
        raise BadEncryptionKey(str(exc), sp=sp.meta.entity_id, system=sp.system) from None


class SamlEngine:
    def __init__(self, *, entity_id: str, base_url: str, signing: SigningKey,
                 sps: Mapping[str, ServiceProvider], skew: int) -> None:
        self.entity_id = entity_id
        self.sso_url = f"{base_url}/saml/sso"
        self.slo_url = f"{base_url}/saml/slo"
        self.sps = dict(sps)
        self.skew = skew
        binary = lib.xmlsec_binary()
        config = {
            "entityid": entity_id,
            "xmlsec_binary": binary,
            "service": {"idp": {
                "endpoints": {
                    "single_sign_on_service": [(self.sso_url, lib.BINDING_HTTP_REDIRECT),
                                               (self.sso_url, lib.BINDING_HTTP_POST)],
                    "single_logout_service": [(self.slo_url, lib.BINDING_HTTP_REDIRECT),
                                              (self.slo_url, lib.BINDING_HTTP_POST)],
                },
                "name_id_format": list(NAME_IDS.values()),
                "want_authn_requests_signed": False,  # per SP, below
                "sign_response": True,
                "sign_assertion": True,
                "signing_algorithm": lib.SIG_RSA_SHA256,
                "digest_algorithm": lib.DIGEST_SHA256,
                "policy": {"default": {
                    "lifetime": {"minutes": ASSERTION_LIFETIME_MINUTES},
                    "attribute_restrictions": None,
                    "name_form": lib.NAME_FORMAT_BASIC,
                    "fail_on_missing_requested": False,
                }},
            }},
            "metadata": {"inline": [sp.metadata_xml for sp in self.sps.values()]},
            # a signature is checked against the SP's metadata, never a key it carries
            "only_use_keys_in_metadata": True,
            "accepted_time_diff": skew,
        }
        # pysaml2 reads the key and certificate from files while it is set up (the key
        # into memory, for query signatures); they exist only for that moment
        with TemporaryDirectory(prefix="govgate-saml-") as tmp:
            cert = Path(tmp) / "cert.pem"
            cert.write_text(signing.cert_pem)
            with lib.key_file(signing.key_pem) as key:
                config |= {"key_file": key, "cert_file": str(cert)}
                conf = lib.IdPConfig().load(config)
                self.server = lib.IdpServer(config=conf)
                self._metadata = lib.create_metadata_string(
                    None, conf, valid=None, sign=False).decode("utf-8")
        self.server.sec.crypto = lib.KeyInMemoryXmlSec1(binary, signing.key_pem)
        self.server.sec.key_file = None

    def metadata(self) -> str:
        return self._metadata

    # -- reading ---------------------------------------------------------------------

    def _sp(self, message: Any) -> ServiceProvider:
        issuer = (getattr(getattr(message, "issuer", None), "text", None) or "").strip()
        if not issuer:
            raise UnknownSp("the message names no issuer")
        sp = self.sps.get(issuer)
        if sp is None:
            raise UnknownSp(f"issuer {issuer[:200]!r} is no registered SP", sp=issuer[:1024])
        return sp

    def _sp_message(self, parse: Any, xml: str, unparsed: str
                    ) -> tuple[Any, ServiceProvider, dict[str, Any]]:
        """``xml`` as ``parse`` reads it, the registered SP its Issuer names, and what a
        refusal about it names (``where``); Refused(``unparsed``) when it does not parse."""
        try:
            message = parse(xml)
        except Exception:
            message = None
        if message is None:
            raise Refused(unparsed)
        sp = self._sp(message)
        return message, sp, {"sp": sp.meta.entity_id, "system": sp.system}

    def _read(self, request_cls: Any, parse: Any, xml: str, encoded: str, binding: str,
              raw_query: str, must_sign: Any, now: datetime) -> tuple[ServiceProvider, Any]:
        """The SP and pysaml2's verified request, or Refused."""
        _message, sp, where = self._sp_message(parse, xml, "not the SAML message expected here")
        if binding == REDIRECT and ("Signature=" in raw_query or must_sign(sp)):
            _redirect_signed(raw_query, "SAMLRequest", sp, where)
        receivers = [self.sso_url if request_cls is lib.AuthnRequest else self.slo_url]
        reader = request_cls(self.server.sec, receivers, self.server.config.attribute_converters,
                             timeslack=self.skew)
        try:
            reader.loads(xml, lib.BINDING_HTTP_POST if binding == POST else
                         lib.BINDING_HTTP_REDIRECT, origdoc=encoded,
                         must=binding == POST and must_sign(sp))
        except Exception as exc:
            if binding == POST and ("Signature" in xml or must_sign(sp)):
                raise BadSignature(f"enveloped signature: {type(exc).__name__}",
                                   **where) from None
            raise Refused(f"not a valid message: {type(exc).__name__}", **where) from None
        try:
            reader.verify()
        except Exception as exc:  # destination or version
            raise Refused(f"{type(exc).__name__}: {str(exc)[:200]}", **where) from None
        _fresh(reader.message, now, self.skew, sp)
        return sp, reader.message

    def authn_request(self, encoded: str, binding: str, *, raw_query: str, now: datetime
                      ) -> Incoming:
        xml = (bindings.decode_redirect if binding == REDIRECT else bindings.decode_post)(encoded)
        sp, msg = self._read(lib.AuthnRequest, lib.samlp.authn_request_from_string, xml,
                             encoded, binding, raw_query, lambda sp: sp.meta.signs_requests,
                             now)
        where = {"sp": sp.meta.entity_id, "system": sp.system}
        if msg.protocol_binding not in (None, lib.BINDING_HTTP_POST):
            raise BadAcs(f"ProtocolBinding {str(msg.protocol_binding)[:100]!r}: responses go "
                         "by HTTP-POST only", **where)
        index = msg.assertion_consumer_service_index
        acs = sp.meta.acs_for(msg.assertion_consumer_service_url,
                              int(index) if index is not None and str(index).isdigit() else None)
        if acs is None or (index is not None and not str(index).isdigit()):
            raise BadAcs(f"ACS {str(msg.assertion_consumer_service_url or index)[:300]!r} "
                         "is not in the SP's metadata", **where)
        encryption_for(sp, now)
        policy = msg.name_id_policy
        fmt = getattr(policy, "format", None) if policy is not None else None
        return Incoming(sp=sp, request_id=str(msg.id), acs_url=acs.location,
                        name_id_format=None if fmt in (None, lib.NAMEID_FORMAT_UNSPECIFIED)
                        else str(fmt),
                        force_authn=str(msg.force_authn).lower() == "true",
                        is_passive=str(msg.is_passive).lower() == "true", binding=binding,
                        unmet=unmet(msg))

    def logout_request(self, encoded: str, binding: str, *, raw_query: str, now: datetime
                       ) -> IncomingLogout:
        """A LogoutRequest an SP sent through the browser: it must be signed (SAML
        Profiles section 4.4.4.1, for the front-channel bindings)."""
        xml = (bindings.decode_redirect if binding == REDIRECT else bindings.decode_post)(encoded)
        sp, msg = self._read(lib.LogoutRequest, lib.samlp.logout_request_from_string, xml,
                             encoded, binding, raw_query, lambda sp: True, now)
        name_id = (getattr(msg.name_id, "text", None) or "").strip()
        if not name_id:
            raise Refused("the LogoutRequest names no NameID", sp=sp.meta.entity_id,
                          system=sp.system)
        return IncomingLogout(sp=sp, message=msg, request_id=str(msg.id), name_id=name_id,
                              session_indexes=tuple(str(s.text) for s in msg.session_index
                                                    if s.text), binding=binding)

    # -- writing ---------------------------------------------------------------------

    def authn_response(self, *, sp: ServiceProvider, request_id: str | None, acs_url: str,
                       name_id: str, name_id_format: str, identity: dict[str, list[str]],
                       authenticated_at: datetime, session_expires_at: datetime,
                       now: datetime) -> tuple[str, str]:
        """The signed Response (assertion signed too, and then encrypted for an SP
        that is to have it encrypted), base64 for the HTTP-POST binding, and the
        assertion's SessionIndex. BadEncryptionKey when it must be encrypted and
        cannot be."""
        encryption = encryption_for(sp, now)
        subject = lib.NameID(format=name_id_format, sp_name_qualifier=sp.meta.entity_id,
                             name_qualifier=self.entity_id, text=name_id)
        self.server.encryption, self.server.encrypted_session_index = encryption, None
        try:
            xml = str(self.server.create_authn_response(
                identity, in_response_to=request_id, destination=acs_url,
                sp_entity_id=sp.meta.entity_id, name_id=subject,
                authn={"class_ref": AUTHN_CONTEXT_CLASS, "authn_auth": self.entity_id,
                       "authn_instant": authenticated_at.timestamp()},
                sign_response=True, sign_assertion=True,
                encrypt_assertion=encryption is not None,
                encrypt_cert_assertion=encryption.cert_pem if encryption else None,
                session_not_on_or_after=_iso(session_expires_at)))
            encrypted_index = self.server.encrypted_session_index
        finally:
            self.server.encryption = self.server.encrypted_session_index = None
        if encryption is not None:
            # fail closed: what leaves must hold no assertion in the clear
            if "EncryptedAssertion" not in xml or re.search(r"<(\w+:)?Assertion[\s>]", xml):
                raise RuntimeError("an assertion to encrypt left unencrypted")
            index = encrypted_index
        else:
            found = _SESSION_INDEX.search(xml)
            index = found.group(1) if found else None
        if index is None:
            raise RuntimeError("pysaml2 wrote an assertion without a SessionIndex")
        return base64.b64encode(xml.encode("utf-8")).decode("ascii"), index

    def error_response(self, *, request_id: str, acs_url: str, status: str, message: str
                       ) -> str:
        """A signed Response carrying only a status (NoPassive, InvalidNameIDPolicy)."""
        xml = str(self.server.create_error_response(request_id, acs_url, (status, message),
                                                    sign=True))
        return base64.b64encode(xml.encode("utf-8")).decode("ascii")

    def logout_response(self, incoming: IncomingLogout, relay_state: str | None
                        ) -> Outgoing | None:
        """The signed LogoutResponse to the SP's SingleLogoutService, by the binding the
        request came with when the SP has it, else the other; None when the SP has no
        front-channel logout endpoint to answer at."""
        order = ((lib.BINDING_HTTP_REDIRECT, lib.BINDING_HTTP_POST) if incoming.binding == REDIRECT
                 else (lib.BINDING_HTTP_POST, lib.BINDING_HTTP_REDIRECT))
        for binding in order:
            endpoint = incoming.sp.meta.slo_for(binding)
            if endpoint is None:
                continue
            destination = endpoint.location
            response = self.server.create_logout_response(
                incoming.message, bindings=[binding], sign=binding == lib.BINDING_HTTP_POST)
            if binding == lib.BINDING_HTTP_POST:
                fields = [("SAMLResponse", base64.b64encode(str(response).encode()).decode())]
                if relay_state:
                    fields.append(("RelayState", relay_state))
                return Outgoing(url=destination, fields=tuple(fields))
            info = self.server.apply_binding(binding, str(response), destination,
                                             relay_state or "", response=True, sign=True)
            return Outgoing(location=dict(info["headers"])["Location"])
        return None

    def logout_response_to(self, sp: ServiceProvider, *, request_id: str, binding: str,
                           relay_state: str | None) -> Outgoing | None:
        """``logout_response`` to a LogoutRequest answered later (after a front-channel
        chain): its ID and binding, kept by ``store.keep_chain_end``, are all the
        response needs of it."""
        message = lib.samlp.LogoutRequest(id=request_id, issuer=lib.saml2.saml.Issuer(
            text=sp.meta.entity_id))
        return self.logout_response(IncomingLogout(
            sp=sp, message=message, request_id=request_id, name_id="", session_indexes=(),
            binding=binding), relay_state)

    def soap_logout_request(self, *, sp: ServiceProvider, destination: str, name_id: str,
                            name_id_format: str, session_index: str) -> str:
        """The signed LogoutRequest of back-channel single logout, in its SOAP envelope."""
        subject = lib.NameID(format=name_id_format, sp_name_qualifier=sp.meta.entity_id,
                             name_qualifier=self.entity_id, text=name_id)
        _, signed = self.server.create_logout_request(
            destination, sp.meta.entity_id, name_id=subject, session_indexes=[session_index],
            sign=True, reason="urn:oasis:names:tc:SAML:2.0:logout:user")
        # signed on its own, then put in the envelope as text: an SP that takes the
        # request out of the envelope and serialises it again (pysaml2 does) gets back
        # the prefixes it was signed with, which a request signed inside the envelope
        # (pysaml2's own use_soap) would not give
        body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", str(signed))
        return (f'<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env='
                f'"{SOAP_ENV}"><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>')

    def front_logout_request(self, *, sp: ServiceProvider, destination: str, name_id: str,
                             name_id_format: str, session_index: str, relay_state: str
                             ) -> str:
        """The URL of a signed LogoutRequest to the SP's HTTP-Redirect
        SingleLogoutService (front-channel single logout: the browser carries it)."""
        subject = lib.NameID(format=name_id_format, sp_name_qualifier=sp.meta.entity_id,
                             name_qualifier=self.entity_id, text=name_id)
        _, request = self.server.create_logout_request(
            destination, sp.meta.entity_id, name_id=subject, session_indexes=[session_index],
            sign=False, reason="urn:oasis:names:tc:SAML:2.0:logout:user")
        info = self.server.apply_binding(lib.BINDING_HTTP_REDIRECT, str(request), destination,
                                         relay_state, sign=True,
                                         sigalg=lib.SIG_RSA_SHA256)
        return str(dict(info["headers"])["Location"])

    def front_logout_response(self, encoded: str, binding: str, *, raw_query: str,
                              now: datetime) -> tuple[ServiceProvider, bool]:
        """An SP's LogoutResponse to a front-channel LogoutRequest, by HTTP-Redirect (the
        query signature) or HTTP-POST (an enveloped signature): the SP and whether it
        says Success. It must be signed (SAML Profiles 4.4.4.2)."""
        xml = (bindings.decode_redirect if binding == REDIRECT else bindings.decode_post)(encoded)
        message, sp, where = self._sp_message(lib.samlp.logout_response_from_string, xml,
                                              "not a LogoutResponse")
        if binding == REDIRECT:
            _redirect_signed(raw_query, "SAMLResponse", sp, where)
        else:
            try:  # against the issuer's metadata certificates only (only_use_keys_in_metadata)
                verified = self.server.sec.correctly_signed_logout_response(
                    xml, must=True, origdoc=xml)
            except Exception as exc:
                raise BadSignature(f"enveloped signature: {type(exc).__name__}",
                                   **where) from None
            if verified is None or self._sp(verified) is not sp:
                raise BadSignature("enveloped signature: not the SP's", **where)
            message = verified
        if (message.destination or self.slo_url) != self.slo_url:
            raise Refused(f"Destination {str(message.destination)[:200]!r} is not this IdP's",
                          **where)
        _fresh(message, now, self.skew, sp)
        status = getattr(getattr(message, "status", None), "status_code", None)
        return sp, getattr(status, "value", None) == lib.STATUS_SUCCESS

    def soap_logout_succeeded(self, body: str) -> bool:
        """The SP's SOAP LogoutResponse says Success."""
        try:
            response = self.server.parse_logout_request_response(body, lib.BINDING_SOAP)
        except Exception:
            return False
        status = getattr(getattr(getattr(response, "response", None), "status", None),
                         "status_code", None)
        return getattr(status, "value", None) == lib.STATUS_SUCCESS


def _redirect_signed(raw_query: str, param: str, sp: ServiceProvider,
                     where: dict[str, Any]) -> None:
    """The HTTP-Redirect signature over ``raw_query`` by one of ``sp``'s signing keys,
    or BadSignature naming the SP (``where``)."""
    try:
        bindings.verify_redirect(raw_query, param, sp.meta.signing_certs)
    except BadSignature as exc:
        raise BadSignature(exc.reason, **where) from None
