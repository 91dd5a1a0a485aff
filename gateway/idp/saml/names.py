"""The SAML 2.0 names govgate uses (OASIS SAML 2.0 core and bindings), as plain
strings: the modules that only name a binding or a NameID format (the state file's
``saml_sp`` checks, single logout's endpoint choice) need not import pysaml2, whose
import alone costs most of a second of every ``govgate`` command.
``gateway.idp.saml.library`` checks them against pysaml2's own."""

BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
NAMEID_FORMAT_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_FORMAT_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_FORMAT_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
