"""One factory wires the gateway's objects from the settings.

The CLI and ``create_app`` both call ``open_services``; nothing else builds an
engine, a key service or an audit log.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from audit import AuditLog, AuditRecord
from gateway.clock import Clock, utcnow
from gateway.errors import GovgateError, StorageError
from gateway.idp.live_users import LiveUsers
from gateway.org import Org
from gateway.settings import Settings
from gateway.statefile import SectionHandler, StateApplier
from gateway.storage import check_schema, create_engine
from keys import InvalidSignature, KeyService
from keys.master import MasterKeyProvider, master_key_from_settings
from keys.profiles import get_profile


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


# One entry per package that owns a state-file section (policies, catalogue, ...),
# appended where that package's gateway wiring is defined.
STATE_SECTION_FACTORIES: list[Callable[[Services], SectionHandler]] = []


def _policies_section(services: Services) -> SectionHandler:
    from gateway.proxy.policies import policies_section

    return policies_section(services)


STATE_SECTION_FACTORIES.append(_policies_section)


def _catalogue_section(services: Services) -> SectionHandler:
    from gateway.catalogue_wiring import catalogue_section

    return catalogue_section(services)


def _grants_section(services: Services) -> SectionHandler:
    from gateway.catalogue_wiring import grants_section

    return grants_section(services)


def _calendar_section(services: Services) -> SectionHandler:
    from gateway.catalogue_wiring import calendar_section

    return calendar_section(services)


STATE_SECTION_FACTORIES.append(_catalogue_section)
STATE_SECTION_FACTORIES.append(_grants_section)
STATE_SECTION_FACTORIES.append(_calendar_section)


def audit_log(settings: Settings, engine: Engine, keys: KeyService, writer: str) -> AuditLog:
    """The audit log of one writer process. ``writer`` names the kind of process
    (``gateway``, ``cli``); a restarted writer resumes its chain when it is free."""
    return AuditLog(
        engine,
        keys=keys,
        profile=keys.profile,
        writer_id=f"{writer}@{socket.gethostname()}",
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
    )


@dataclass
class Services:
    settings: Settings
    engine: Engine
    keys: KeyService
    clock: Clock = utcnow
    audit: Any = None
    # who acts when a change carries no actor of its own: the OS account for the CLI
    actor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def org(self) -> Org:
        return Org(self.engine, clock=self.clock, on_change=self.record_admin_change)

    @property
    def live_users(self) -> LiveUsers:
        """The users' current roles and departments, for decisions on tokens."""
        found = self.extra.get("live_users")
        if found is None:
            found = self.extra["live_users"] = LiveUsers(self.engine)
        return found  # type: ignore[no-any-return]

    def record_admin_change(self, event: str, detail: dict[str, Any]) -> None:
        """Audit an administrative change durably before the caller reports success.

        Raises AuditWriteError when the record cannot be written: the change is
        already committed then, and the operator must see that it went unrecorded.
        """
        # this process sees its own change at once (others within a second)
        found = self.extra.get("live_users")
        if found is not None:
            found.invalidate()
        provider = self.extra.get("idp_provider")
        if provider is not None:
            provider.server.clients.invalidate()
        if self.audit is None:
            return
        detail = dict(detail)
        actor = detail.pop("actor", None) or self.actor
        self.audit.append_sync(
            AuditRecord(
                event_type="admin_change",
                outcome="success",
                actor_user=actor,
                department=detail.pop("department", None),
                reason=event,
                extra={"change": event, **detail},
            )
        )

    @property
    def policies(self) -> Any:
        """The policy lines, their index and hot reload (policies.Policies)."""
        from gateway.proxy.policies import get_policies

        return get_policies(self)

    @property
    def catalogue(self) -> Any:
        """The catalogue and its proxy snapshot (catalogue.Catalogue)."""
        from gateway.catalogue_wiring import get_catalogue

        return get_catalogue(self)

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

    def state_sections(self) -> list[SectionHandler]:
        """State-file sections owned by other packages (policies, catalogue, ...)."""
        return [factory(self) for factory in STATE_SECTION_FACTORIES]

    def state_applier(self) -> StateApplier:
        return StateApplier(
            self.engine,
            hash_secret=self.hash_client_secret,
            verify_secret=self.verify_client_secret,
            clock=self.clock,
            on_change=self.record_admin_change,
            sections=self.state_sections(),
            seal=self.keys.seal,
            open_=self.keys.open,
        )

    def close(self) -> None:
        """Stop watchers and flush the audit log (the app's lifespan closes the async
        parts first; everything here is idempotent)."""
        from gateway.proxy.policies import close_policies

        close_policies(self)
        if self.audit is not None:
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
        if getattr(exc, "code", None) and getattr(exc, "status", None):
            raise
        raise StorageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    services = Services(settings=settings, engine=engine, keys=keys, clock=clock, actor=actor)
    services.audit = audit_log(settings, engine, keys, writer)
    return services


def os_actor() -> str:
    """The operator behind a CLI command, as the audit log names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"os:{user}@{socket.gethostname()}"
