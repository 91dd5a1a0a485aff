"""The SAML 2.0 names govgate uses (OASIS SAML 2.0 core and bindings), as plain
strings: the modules that only name a binding or a NameID format (the state file's
``saml_sp`` checks, single logout's endpoint choice, the endpoints' status codes and
binding names) need not import pysaml2, whose import alone costs most of a second of
every ``govgate`` command and about 20 MiB of a server that never serves SAML (it is
imported with the engine, on the first SAML request: ``SamlIdp.run``).
``gateway.idp.saml.library`` checks them against pysaml2's own."""

BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
NAMEID_FORMAT_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_FORMAT_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_FORMAT_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

# the two bindings the endpoints speak, as govgate names them
REDIRECT, POST = "redirect", "post"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_INVALID_NAME_ID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
STATUS_NO_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
STATUS_REQUEST_UNSUPPORTED = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
