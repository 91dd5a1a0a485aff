"""Tamper-evident audit log: hash chains per writer, group commit, signed checkpoints.

    from audit import AuditLog, AuditRecord

    log = AuditLog(engine, keys=key_service, profile=profile, writer_id="gw-1")
    stored = await log.append(AuditRecord(event_type="login", outcome="success",
                                          actor_user="zhang.san"))
"""

from audit.errors import (
    ArchiveError,
    ArchiveUnreadable,
    AuditError,
    AuditQueryError,
    AuditRecordError,
    AuditWriteError,
    ChainLostError,
    PurgeRefused,
    ShipError,
)
from audit.record import AuditRecord, StoredRecord, body_hash
from audit.writer import AuditLog

__all__ = [
    "ArchiveError",
    "ArchiveUnreadable",
    "AuditError",
    "AuditLog",
    "AuditQueryError",
    "AuditRecord",
    "AuditRecordError",
    "AuditWriteError",
    "ChainLostError",
    "PurgeRefused",
    "ShipError",
    "StoredRecord",
    "body_hash",
]
