"""The audit package's error tree.

    AuditError                      code, description, status
    ├── AuditRecordError            a record cannot be built (bad field)
    ├── AuditWriteError             a record was not durably committed (503: no audit, no access)
    │   └── ChainLostError          another writer owns this chain now (lease lost)
    ├── AuditQueryError             a malformed query filter; names the field (400)
    ├── ArchiveError                an archive is missing, unreadable or does not verify
    │   └── ArchiveUnreadable       a file of it could not be read (permissions, I/O)
    ├── PurgeRefused                a purge would drop records still needed (409)
    └── ShipError                   the shipping file or its position cannot be written or read
"""

from __future__ import annotations

from texts import where


class AuditError(Exception):
    code = "audit_error"
    status = 500
    title = "Audit error"

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.title)
        self.description = description or self.title


class AuditRecordError(AuditError):
    code = "audit_record"
    status = 400
    title = "Invalid audit record"


class AuditWriteError(AuditError):
    code = "audit_unavailable"
    status = 503
    title = "Audit log unavailable"


class ChainLostError(AuditWriteError):
    code = "audit_chain_lost"


class AuditQueryError(AuditError):
    code = "validation"
    status = 400
    title = "Invalid query"

    def __init__(self, field: str, description: str) -> None:
        super().__init__(where(field, description))
        self.field = field
        self.reason = description


class ArchiveError(AuditError):
    code = "audit_archive"
    title = "Audit archive error"


class ArchiveUnreadable(ArchiveError):
    """An archive file exists but could not be read (no permission, an I/O error):
    nothing was checked, so this is no evidence of tampering either way."""

    code = "audit_archive_unreadable"


class PurgeRefused(AuditError):
    code = "audit_purge_refused"
    status = 409
    title = "Purge refused"


class ShipError(AuditError):
    code = "audit_ship"
    title = "Audit shipping error"
