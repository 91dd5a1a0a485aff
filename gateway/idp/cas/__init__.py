"""The CAS 3.0 server (Apereo CAS Protocol 3.0,
https://apereo.github.io/cas/development/protocol/CAS-Protocol-Specification.html)
for systems that speak CAS: service tickets over the portal's sign-in.

``services`` (which service URLs may receive tickets, pure), ``protocol`` (the
specification's texts, pure), ``errors`` (one leaf per error code), ``store``
(tickets as keyed hashes, consumed once), ``slo`` (single logout), ``routes`` (the
endpoints and ``CasServer``), ``tables``.
"""
