"""SCIM 2.0 (RFC 7643/7644) over the organisation: Users are govgate's users, Groups its
roles, for one registered client (``scim`` scope) within its department scope; every
change an ``admin_change`` record whose actor is the client (docs/scim.md)."""
