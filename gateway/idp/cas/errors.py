"""Why a CAS validation fails: one leaf per error code of the CAS Protocol 3.0
specification, section 2.5.3 (https://apereo.github.io/cas/development/protocol/CAS-Protocol-Specification.html)::

    CasError                     INTERNAL_ERROR
    ├── InvalidRequest           INVALID_REQUEST             a required parameter is missing
    ├── InvalidTicketSpec        INVALID_TICKET_SPEC         not a service ticket (e.g. a PT-)
    ├── UnauthorizedServiceProxy UNAUTHORIZED_SERVICE_PROXY  proxying asked for (not offered)
    ├── InvalidTicket            INVALID_TICKET              unknown, used, expired, renew unmet
    └── InvalidService           INVALID_SERVICE             issued for another service

Opaque outward, detailed inward: the service reads the code and one fixed sentence
per code (``description``); ``reason`` (replayed, expired, which service it was
issued for, ...) goes to the audit record only.
"""

from __future__ import annotations


class CasError(Exception):
    code = "INTERNAL_ERROR"
    description = "the ticket could not be validated"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidRequest(CasError):
    code = "INVALID_REQUEST"
    description = "the ticket and service parameters are both required"


class InvalidTicketSpec(CasError):
    code = "INVALID_TICKET_SPEC"
    description = "the ticket is not a service ticket"


class UnauthorizedServiceProxy(CasError):
    code = "UNAUTHORIZED_SERVICE_PROXY"
    description = "this server issues no proxy-granting tickets"


class InvalidTicket(CasError):
    code = "INVALID_TICKET"
    description = "the ticket is not recognised"


class InvalidService(CasError):
    code = "INVALID_SERVICE"
    description = "the ticket was not issued for this service"
