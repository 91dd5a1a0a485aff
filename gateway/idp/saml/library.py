"""pysaml2, imported in one place, with what govgate changes about it.

- Import: pysaml2 still names ``cryptography``'s CFB mode where ``cryptography`` has
  deprecated it; the warning is silenced for the import only (pysaml2 never uses
  CFB for what govgate asks of it).
- The signing key: pysaml2 hands xmlsec1 the private key as a file name. The IdP's
  key is kept sealed by the key ring (``gateway.idp.saml.signing``), so
  ``KeyInMemoryXmlSec1`` writes it to a private temporary file (a directory only
  this process can read, the file mode 0600) for each xmlsec1 call and removes it
  at once: at rest the key exists only sealed.
- Temporary files: pysaml2 hands xmlsec1 documents and certificates as files made by
  ``saml2.sigver.make_temp``, a ``NamedTemporaryFile`` kept open until the garbage
  collector finds it (after a failed verification, inside a reference cycle: an
  open descriptor until then, and a ResourceWarning). ``make_temp`` is replaced by
  one that writes the file (mode 0600), closes it, and removes it when the object
  pysaml2 holds goes away; pysaml2 only ever reads ``.name``.
- Encryption: ``IdpServer`` encrypts an assertion as ``gateway.idp.saml.encryption``
  chose (AES-GCM or AES-CBC, RSA-OAEP), where pysaml2 would use 3DES-CBC.
- ``IdpServer`` keeps no copy of the assertions it issues (pysaml2 would keep every
  one in memory to answer AssertionIDRequest and AuthnQuery, which govgate does
  not offer).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.idp.saml import names
from gateway.idp.saml.encryption import Encryption
from gateway.idp.saml.errors import SamlUnavailable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # CryptographyDeprecationWarning on import only
    import saml2
    import saml2.entity
    import saml2.server
    import saml2.sigver
    from saml2 import (
        BINDING_HTTP_POST,
        BINDING_HTTP_REDIRECT,
        BINDING_SOAP,
        samlp,
    )
    from saml2.config import IdPConfig
    from saml2.mdstore import InMemoryMetaData
    from saml2.metadata import create_metadata_string
    from saml2.request import AuthnRequest, LogoutRequest
    from saml2.s_utils import UnknownPrincipal, UnsupportedBinding
    from saml2.saml import (
        NAME_FORMAT_BASIC,
        NAMEID_FORMAT_PERSISTENT,
        NAMEID_FORMAT_TRANSIENT,
        NAMEID_FORMAT_UNSPECIFIED,
        NameID,
    )
    from saml2.samlp import STATUS_SUCCESS
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

__all__ = [
    "BINDING_HTTP_POST",
    "BINDING_HTTP_REDIRECT",
    "BINDING_SOAP",
    "DIGEST_SHA256",
    "NAMEID_FORMAT_PERSISTENT",
    "NAMEID_FORMAT_TRANSIENT",
    "NAMEID_FORMAT_UNSPECIFIED",
    "NAME_FORMAT_BASIC",
    "SIG_RSA_SHA256",
    "STATUS_SUCCESS",
    "AuthnRequest",
    "IdPConfig",
    "IdpServer",
    "InMemoryMetaData",
    "KeyInMemoryXmlSec1",
    "LogoutRequest",
    "NameID",
    "UnknownPrincipal",
    "UnsupportedBinding",
    "create_metadata_string",
    "key_file",
    "saml2",
    "samlp",
    "xmlsec_binary",
]


class TempPath:
    """A written, closed temporary file that is removed with this object."""

    def __init__(self, data: bytes, suffix: str) -> None:
        fd, self.name = tempfile.mkstemp(suffix=suffix, prefix="govgate-saml-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        weakref.finalize(self, _remove, self.name)


_SESSION_INDEX = re.compile(r'SessionIndex="([^"]+)"')


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def make_temp(content: Any, suffix: str = "", decode: bool = True,
              delete_tmpfiles: bool = True) -> TempPath:
    """``saml2.sigver.make_temp``'s contract (content, optionally base64), a closed file."""
    data = content.encode("utf-8") if not isinstance(content, bytes) else content
    return TempPath(base64.b64decode(data) if decode else data, suffix)


saml2.sigver.make_temp = make_temp
saml2.entity.make_temp = make_temp


def xmlsec_binary() -> str:
    """Debian's ``xmlsec1`` (package ``xmlsec1``), found on the PATH; SamlUnavailable
    when it is not installed."""

    try:
        return str(saml2.sigver.get_xmlsec_binary(["/usr/bin", "/usr/local/bin"]))
    except saml2.sigver.SigverError:
        raise SamlUnavailable("xmlsec1 is not installed (Debian: apt-get install xmlsec1)"
                              ) from None


@contextmanager
def key_file(key_pem: str) -> Iterator[str]:
    """The PEM ``key_pem`` as a file that exists for the block only, readable by this
    process alone."""
    with tempfile.TemporaryDirectory(prefix="govgate-saml-") as tmp:
        path = Path(tmp) / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key_pem)
        yield str(path)


class KeyInMemoryXmlSec1(saml2.sigver.CryptoBackendXmlSec1):  # type: ignore[misc]
    """xmlsec1, with the private key handed over through ``key_file`` per signature
    (whatever file name pysaml2 passes is ignored: there is none on disk)."""

    def __init__(self, binary: str, key_pem: str) -> None:
        super().__init__(binary)
        self._key_pem = key_pem

    def sign_statement(self, statement: Any, node_name: str, key_file_name: Any,
                       node_id: Any) -> Any:
        with key_file(self._key_pem) as path:
            return super().sign_statement(statement, node_name, path, node_id)


class IdpServer(saml2.server.Server):  # type: ignore[misc]
    """pysaml2's IdP, with the assertion encrypted as ``encryption`` says: pysaml2
    would use 3DES-CBC (``pre_encryption_part``'s default) with a ``des-192`` key.
    The engine sets ``encryption`` for the one response it makes (its calls are one
    at a time); an encryption asked for with none set fails rather than fall back."""

    encryption: Encryption | None = None
    #: the SessionIndex of the assertion last encrypted (not to be read from the
    #: ciphertext afterwards)
    encrypted_session_index: str | None = None

    def _encrypt_assertion(self, encrypt_cert: Any, sp_entity_id: Any, response: Any,
                           node_xpath: Any = None) -> Any:
        plan = self.encryption
        if plan is None:
            raise RuntimeError("an assertion to encrypt with no encryption chosen")
        found = _SESSION_INDEX.search(str(response))
        self.encrypted_session_index = found.group(1) if found else None
        template = saml2.sigver.pre_encryption_part(
            msg_enc=plan.algorithm, key_enc=plan.key_transport, encrypt_cert=plan.cert)
        cert = make_temp(plan.cert_pem.encode("ascii"), decode=False)
        return self.sec.encrypt_assertion(response, cert.name, template,
                                          key_type=plan.session_key, node_xpath=node_xpath)

    def support_AssertionIDRequest(self) -> bool:
        return False

    def support_AuthnQuery(self) -> bool:
        return False


# the plain names the modules without pysaml2 use (gateway.idp.saml.names) are its own
assert (names.BINDING_HTTP_POST, names.BINDING_HTTP_REDIRECT, names.BINDING_SOAP,
        names.NAMEID_FORMAT_PERSISTENT, names.NAMEID_FORMAT_TRANSIENT,
        names.NAMEID_FORMAT_UNSPECIFIED) == (
    BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP, NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED)
