"""The directory's errors: it cannot be reached (503; sign-in fails closed), or a
sync found conflicts and applied nothing (409)."""

from __future__ import annotations

from typing import Any

from gateway.errors import Conflict, GovgateError


class DirectoryUnavailable(GovgateError):
    code = "directory_unavailable"
    status = 503
    title = "Directory unavailable"


class DirectoryRefusal(DirectoryUnavailable):
    """The directory refused the person for a reason of its own, not the password
    (Active Directory: the account disabled, expired or locked out): no sign-in, and
    not a wrong password (not counted towards govgate's lockout: the directory keeps
    its own). ``message`` is the portal's key for what the person is told. A
    DirectoryUnavailable, so that every caller not made for it fails closed."""

    code = "directory_refused"
    status = 403
    title = "Directory refused the account"

    def __init__(self, description: Any = "", message: str = "directory_refused",
                 **extra: Any) -> None:
        super().__init__(description, **extra)
        self.message = message


class DirectoryPasswordChange(DirectoryRefusal):
    """The password is right, but the directory will not have it used before it is
    changed (Active Directory's "user must change password at next logon", "password
    expired")."""

    code = "directory_password_change"
    title = "Directory password must be changed"

    def __init__(self, description: Any = "", **extra: Any) -> None:
        super().__init__(description, message="directory_password_change", **extra)


class SyncConflict(Conflict):
    """The directory's data cannot be applied as it is; ``problems`` lists each, and
    ``plan`` is what the sync read."""

    code = "directory_conflict"
    title = "Directory sync conflict"

    def __init__(self, description: str = "", problems: list[str] | None = None,
                 plan: Any = None, **extra: Any) -> None:
        super().__init__(description, **extra)
        self.problems = list(problems or [])
        self.plan = plan

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        body["errors"] = self.problems
        return body
