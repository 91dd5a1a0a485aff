"""The SAML 2.0 identity provider (Web Browser SSO profile, HTTP-Redirect and
HTTP-POST bindings, single logout) for systems that speak SAML: signed assertions
over the portal's sign-in, built on pysaml2 and xmlsec1.

``sps`` (which SPs are registered, by their metadata), ``bindings`` (the two browser
bindings' encodings, the query signature), ``engine`` (the protocol work on pysaml2),
``library`` (pysaml2 imported, the signing key kept off disk), ``signing`` (the IdP's
key and certificate, sealed), ``release`` (NameIDs and attributes), ``store``
(requests answered once, what sessions released), ``slo`` (back-channel single
logout), ``errors``, ``routes`` (the endpoints and ``SamlIdp``), ``tables``.
"""
