"""A SCIM error (RFC 7644 section 3.12): the status, the ``scimType`` and the detail the
web layer puts into ``urn:ietf:params:scim:api:messages:2.0:Error``."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status),
                               "detail": self.detail}
        if self.scim_type:
            out["scimType"] = self.scim_type
        return out


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)
