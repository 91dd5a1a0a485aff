"""Why a SAML message is refused. The browser gets the error page (400), never a
redirect or a post to an address the message named: until the SP and its
assertion consumer service are verified there is nowhere safe to send anything.
``reason`` (which SP, which URL, which check failed) goes to the audit record only;
``page`` is the translated sentence the page shows.

    Refused                    saml_malformed     not base64, not deflated, not the XML expected
    ├── UnknownSp              saml_unknown_sp    the issuer is no registered SP
    ├── BadAcs                 saml_bad_acs       an ACS URL or index the SP's metadata lacks
    ├── BadSignature           saml_bad_signature missing where required, or not verifying
    ├── Stale                  saml_stale         IssueInstant too old or in the future
    ├── Replayed               saml_replayed      the request was answered already
    ├── Expired                saml_expired       the sign-in took longer than the request lives
    └── BadEncryptionKey       saml_bad_encryption_key  the SP's assertions must be
                                                  encrypted and none of its keys is usable

``SamlUnavailable`` (503, problem+json) is not about a message: the IdP cannot work
on this host (xmlsec1, Debian's package ``xmlsec1``, is not installed).
"""

from __future__ import annotations

from gateway.errors import GovgateError


class SamlUnavailable(GovgateError):
    code = "saml_unavailable"
    status = 503
    title = "SAML identity provider unavailable"


class Refused(Exception):
    page = "saml_malformed"

    def __init__(self, reason: str, *, sp: str | None = None, system: str | None = None
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sp = sp
        self.system = system


class UnknownSp(Refused):
    page = "saml_unknown_sp"


class BadAcs(Refused):
    page = "saml_bad_acs"


class BadSignature(Refused):
    page = "saml_bad_signature"


class Stale(Refused):
    page = "saml_stale"


class Replayed(Refused):
    page = "saml_replayed"


class Expired(Refused):
    page = "saml_expired"


class BadEncryptionKey(Refused):
    page = "saml_bad_encryption_key"
