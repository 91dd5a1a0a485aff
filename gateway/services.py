"""One factory wires the gateway's objects from the settings.

The CLI and ``create_app`` both call ``open_services``; nothing else builds an
engine, a key service or an audit log.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from audit import AuditLog, AuditRecord
from audit.indexer import Indexer
from audit.journal import Journal
from gateway.clock import Clock, utcnow
from gateway.errors import GovgateError, StorageError, is_problem
from gateway.indexer_process import IndexerProcess
from gateway.live_users import LiveUsers
from gateway.org import Org
from gateway.settings import Settings
from gateway.storage import check_schema, create_engine
from keys import InvalidSignature, KeyService
from keys.master import MasterKeyProvider, master_key_from_settings
from keys.profiles import get_profile

log = logging.getLogger("govgate")


def master_key(settings: Settings, environ: Mapping[str, str] | None = None) -> MasterKeyProvider:
    environ = os.environ if environ is None else environ
    return master_key_from_settings(
        settings.master_key_provider,
        path=settings.master_key_path,
        env_var=settings.master_key_env,
        environ=environ,
        pkcs11_module=settings.pkcs11_module,
        pkcs11_token_label=settings.pkcs11_token_label,
        pkcs11_pin=settings.pkcs11_pin.get() if settings.pkcs11_pin else None,
        pkcs11_key_label=settings.pkcs11_key_label,
    )


def key_service(
    settings: Settings, engine: Engine, master: MasterKeyProvider, clock: Clock = utcnow
) -> KeyService:
    longest = max(
        settings.access_token_lifetime, settings.id_token_lifetime, settings.assertion_lifetime
    )
    return KeyService(
        engine,
        master,
        get_profile(settings.crypto_profile),
        clock=clock,
        default_alg=settings.signing_alg,
        prepublish_seconds=settings.key_prepublish_seconds,
        max_token_lifetime_seconds=longest,
        clock_skew_seconds=settings.clock_skew_seconds,
    )


def audit_log(settings: Settings, engine: Engine, keys: KeyService, writer: str) -> AuditLog:
    """The audit log of one writer process. ``writer`` names the kind of process
    (``gateway``, ``cli``); a restarted writer resumes its chain when it is free.
    In journal mode (``audit_path``) its indexer loads the journal into the tables.
    A command of the CLI writes its few records to the database in either mode: the
    journal is for the serving process's hot path, and a chain directory per command
    would be left behind by every command run."""
    folder = settings.audit_journal_path if writer != "cli" else None
    journal = Journal(folder) if folder is not None else None
    if journal is None:
        load_left_journal(engine, settings.home / settings.audit_journal_dir)
    audit = AuditLog(
        engine,
        keys=keys,
        profile=keys.profile,
        writer_id=f"{writer}@{socket.gethostname()}",
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
        journal=journal,
    )
    if journal is not None and settings.audit_indexer == "process":
        audit.attach_indexer(IndexerProcess(settings.db_url, journal.root,
                                            own=audit.journal_position,
                                            interval=settings.audit_index_seconds,
                                            on_checkpoint=audit.note_checkpoint))
    elif journal is not None:
        audit.attach_indexer(Indexer(engine, journal, own=audit.journal_position,
                                     interval=settings.audit_index_seconds,
                                     on_checkpoint=audit.note_checkpoint))
    return audit


def load_left_journal(engine: Engine, folder: Path) -> int:
    """Database mode after journal mode: load what a journal-mode process that died left
    in the journal, before this writer resumes a chain from the table's head (which
    would be behind the journal's). Returns the records loaded."""
    if not folder.is_dir():
        return 0
    try:
        return Indexer(engine, Journal(folder)).run_once()
    except Exception as exc:  # the database away: the writer's own claim will say so
        log.warning("audit journal %s not loaded: %s", folder, exc)
        return 0


@dataclass(eq=False)
class Services:
    """What every part of govgate stands on: settings, the database, the keys, the
    audit log, the clock, and the users' current roles. The CLI and the composition
    root (``gateway.root``) both open it with :func:`open_services`."""

    settings: Settings
    engine: Engine
    keys: KeyService
    audit: AuditLog
    clock: Clock = utcnow
    # who acts when a change carries no actor of its own: the OS account for the CLI
    actor: str | None = None
    live_users: LiveUsers = field(init=False)
    _change_listeners: list[Callable[[], None]] = field(init=False, default_factory=list)
    _closers: list[Callable[[], None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.live_users = LiveUsers(self.engine)
        self.on_admin_change(self.live_users.invalidate)

    @property
    def org(self) -> Org:
        return Org(self.engine, clock=self.clock, on_change=self.record_admin_change)

    def on_admin_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each administrative change made in this process,
        so caches built here (users, clients) see it at once; other processes see it
        through the version counters within a second."""
        self._change_listeners.append(listener)

    def settle_audit(self) -> None:
        """Journal mode: load what this process has made durable into the tables now, so
        a reader here sees the records of what it just did (the audit pages and API, the
        directory schedule); other processes' records follow within their indexer's
        interval. Database mode: nothing to do. A database away leaves the tables as
        they are (the journal keeps the records)."""
        indexer = self.audit.indexer
        if indexer is None:
            return
        try:
            indexer.run_once()
        except Exception as exc:
            log.warning("audit journal not loaded before a read: %s", exc)

    def changed_here(self) -> None:
        """Tell this process's caches (users, clients) that an administrative change
        was just made here."""
        for listener in self._change_listeners:
            listener()

    def record_admin_change(self, event: str, detail: dict[str, Any]) -> None:
        """Audit an administrative change durably before the caller reports success.

        Raises AuditWriteError when the record cannot be written: the change is
        already committed then, and the operator must see that it went unrecorded.
        """
        self.changed_here()
        self.audit.append_sync(self._admin_record(event, detail))

    def record_admin_changes(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        """``record_admin_change`` for many changes in one audit transaction (a
        directory sync's hundreds of users)."""
        self.changed_here()
        if changes:
            self.audit.append_many_sync([self._admin_record(e, d) for e, d in changes])

    def _admin_record(self, event: str, detail: dict[str, Any]) -> AuditRecord:
        detail = dict(detail)
        actor = detail.pop("actor", None) or self.actor
        return AuditRecord(
            event_type="admin_change",
            outcome="success",
            actor_user=actor,
            department=detail.pop("department", None),
            reason=event,
            extra={"change": event, **detail},
        )

    def hash_client_secret(self, secret: str) -> str:
        return "mac1$" + self.keys.mac("client_secret", secret.encode("utf-8")).hex()

    def verify_client_secret(self, secret: str, stored: str) -> bool:
        """Constant time; a hash made under the other crypto profile still matches."""
        prefix, _, tag = stored.partition("$")
        if prefix != "mac1":
            return False
        try:
            self.keys.check_mac("client_secret", secret.encode("utf-8"), bytes.fromhex(tag))
        except (InvalidSignature, ValueError):
            return False
        return True

    def hash_api_key(self, key: str) -> str:
        """A client's API key (gateway.proxy.static_credentials) as its keyed hash."""
        return "mac1$" + self.keys.mac("client_api_key", key.encode("utf-8")).hex()

    def verify_api_key(self, key: str, stored: str) -> bool:
        prefix, _, tag = stored.partition("$")
        if prefix != "mac1":
            return False
        try:
            self.keys.check_mac("client_api_key", key.encode("utf-8"), bytes.fromhex(tag))
        except (InvalidSignature, ValueError):
            return False
        return True

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` first when these services close (a thread that would go on
        using the database: the policies' watcher)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Stop what uses the database, flush the audit log and release the database
        (idempotent; the app's lifespan closes the async parts first)."""
        while self._closers:
            self._closers.pop()()
        self.audit.close_sync()
        self.engine.dispose()


def open_services(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Clock = utcnow,
    check: bool = True,
    writer: str = "gateway",
    actor: str | None = None,
) -> Services:
    """Services on an initialised database; raises a one-line GovgateError otherwise.

    ``writer`` names this process's audit chain; ``actor`` is recorded for admin
    changes that carry no actor of their own (the CLI passes the OS account).
    """
    engine = create_engine(settings.db_url)
    try:
        if check:
            check_schema(engine)
        keys = key_service(settings, engine, master_key(settings, environ), clock)
        if check:
            keys.check()
    except GovgateError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        if is_problem(exc):
            raise
        raise StorageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return Services(settings=settings, engine=engine, keys=keys, clock=clock, actor=actor,
                    audit=audit_log(settings, engine, keys, writer))


def os_actor() -> str:
    """The operator behind a CLI command, as the audit log names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"os:{user}@{socket.gethostname()}"
