"""The SCIM 2.0 endpoints under ``/scim/v2`` (docs/scim.md)."""
