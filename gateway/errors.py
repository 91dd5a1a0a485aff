"""The gateway's error tree, and its one mapping to HTTP.

    GovgateError                     code, description, status
    ├── SettingsError                settings file, environment or flag is wrong
    │   └── MasterKeyMissing         the database is initialised but its master key is gone
    ├── StorageError                 database unreachable or at the wrong schema
    ├── ValidationError              bad input; carries a list of problems
    │   └── StateFileError           a state file failed validation
    ├── NotFound                     a named object does not exist
    ├── Conflict                     the change contradicts stored state
    │   └── RoleConflict             三员分立: two admin roles on one account
    ├── Unauthorized                 no or bad credential (401)
    ├── Forbidden                    authenticated, not allowed (403)
    ├── ContentTooLarge              a body over the size limit (413)
    └── UnsupportedMediaType         a body (or a cookie-authenticated change) not in JSON (415)

Lower packages (keys, audit, policies, catalogue) raise their own errors, which
import nothing of the gateway; each carries a stable ``code`` and an HTTP
``status``, the :class:`Problem` protocol by which the edges (``problem_body``
for the API, the CLI's error handler) recognise and answer them.
"""

from __future__ import annotations

from typing import Any, Protocol, cast, runtime_checkable


@runtime_checkable
class Problem(Protocol):
    """An error that knows how it is answered: a stable code and an HTTP status."""

    code: str
    status: int


def is_problem(exc: BaseException) -> bool:
    """True for an error of ours or of a lower package that carries code and status
    (then ``cast(Problem, exc)`` reads them)."""
    return (isinstance(exc, Problem) and isinstance(exc.code, str)
            and isinstance(exc.status, int))


class GovgateError(Exception):
    code = "error"
    status = 500
    title = "Internal error"
    # the proxy answers its detail in the caller's language (Accept-Language; the
    # ``lang`` setting by default) when it is a ``texts.Text``
    localised = False

    def __init__(self, description: str = "", **extra: Any) -> None:
        super().__init__(description or self.title)
        self.description = description or self.title
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:govgate:error:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.description,
        }
        body.update(self.extra)
        return body


class SettingsError(GovgateError):
    code = "settings"
    title = "Bad settings"


class StorageError(GovgateError):
    code = "storage"
    status = 503
    title = "Storage unavailable"


class MasterKeyMissing(SettingsError):
    code = "master_key_missing"


class ValidationError(GovgateError):
    code = "validation"
    status = 400
    title = "Invalid input"

    def __init__(self, description: str = "", problems: list[str] | None = None, **extra: Any):
        super().__init__(description, **extra)
        self.problems = list(problems or [])

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        if self.problems:
            body["errors"] = self.problems
        return body


class StateFileError(ValidationError):
    code = "state_file"
    title = "State file rejected"


class NotFound(GovgateError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(GovgateError):
    code = "conflict"
    status = 409
    title = "Conflict"


class RoleConflict(Conflict):
    code = "role_conflict"
    title = "Admin roles are mutually exclusive"


class AuditUnavailable(GovgateError):
    """The audit log could not take the record: no audit, no access."""

    code = "audit_unavailable"
    status = 503
    title = "Audit log unavailable"


class TooManyRequests(GovgateError):
    """A caller past its rate limit; ``retry_after`` is the ``Retry-After`` value
    (RFC 9110 section 10.2.3: whole seconds)."""

    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: str, description: Any = "", *,
                 client_id: str | None = None) -> None:
        super().__init__(description or "rate limit exceeded; retry later")
        self.retry_after = retry_after
        self.client_id = client_id  # whose limit: the audit record's, never the body's


class Unauthorized(GovgateError):
    """No valid credential. ``reason`` (why, precisely) goes to the audit record only;
    the client reads the opaque description."""

    code = "unauthorized"
    status = 401
    title = "Authentication required"
    # the proxy and forward-auth answer it in the caller's language, as the API does
    localised = True

    def __init__(self, description: str = "", *, reason: str | None = None, **extra: Any):
        super().__init__(description, **extra)
        self.reason = reason


class Forbidden(GovgateError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class ContentTooLarge(GovgateError):
    code = "content_too_large"
    status = 413
    title = "Content too large"


class UnsupportedMediaType(GovgateError):
    code = "unsupported_media_type"
    status = 415
    title = "Unsupported media type"


def problem_body(exc: Exception) -> tuple[int, dict[str, Any]]:
    """RFC 9457 body for any exception: detailed for ours, opaque for the rest."""
    if isinstance(exc, GovgateError):
        return exc.status, exc.problem()
    if is_problem(exc):
        known = cast(Problem, exc)
        return known.status, {
            "type": f"urn:govgate:error:{known.code}",
            "title": known.code.replace("_", " "),
            "status": known.status,
            "detail": str(exc),
        }
    return 500, {
        "type": "urn:govgate:error:internal",
        "title": "Internal error",
        "status": 500,
        "detail": "internal error",
    }
