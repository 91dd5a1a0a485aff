"""The running app's maintenance loop (gateway.app lifespan): every
``maintenance_interval_seconds`` it promotes signing keys past their
prepublication delay, purges the identity provider's expired rows and, on
PostgreSQL, keeps the audit records' month partitions ahead (audit.partitions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit import AuditRecord
from audit.partitions import AHEAD, month_start, next_month, partition_name, partitions
from gateway.app import create_app
from gateway.errors import SettingsError
from gateway.idp.oauth2.tables import (
    assertion_jtis,
    authorization_codes,
    refresh_tokens,
    revocations,
)
from gateway.services import Services
from gateway.settings import load_settings
from tests.oauth2.helpers import OFFICE_CB, close_services, frozen_now, make_services
from tests.wiring import parts


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the maintenance loop did not get to it"
        time.sleep(0.02)


def months(services: Services) -> list[str]:
    with services.engine.connect() as conn:
        return [p.name for p in partitions(conn)]


def test_the_loop_promotes_due_keys_and_purges_expired_idp_rows(env: dict[str, str]) -> None:
    settings = load_settings(env, {"maintenance_interval_seconds": 0.05})
    clock = frozen_now()
    services = make_services(settings, clock=clock)
    try:
        store = parts(services).provider.store
        store.deny_jti("expired-jti", 1)
        store.deny_jti("live-jti", 30 * 86400)
        store.remember_assertion("finance-system", "assertion-1",
                                 clock() + timedelta(seconds=1))
        store.save_code("code-1", client_id="office-web", username="zhang.san", sid="s-1",
                        redirect_uri=OFFICE_CB, scope="openid", nonce=None,
                        code_challenge=None, code_challenge_method=None, auth_time=0,
                        amr=None)
        store.save_refresh("refresh-1", family_id="fam-1", client_id="office-web",
                           username="zhang.san", sid=None, scope="openid", auth_time=0,
                           lifetime=1, access_jti=None, access_expires_at=None)
        pending = services.keys.rotate("token")
        assert pending.state == "pending"

        def count(table: sa.Table) -> int:
            with services.engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(table))
                           .scalar_one())

        def state(kid: str) -> str:
            return next(k.state for k in services.keys.list_keys() if k.kid == kid)

        if services.engine.dialect.name == "postgresql":  # a month ahead and one in DEFAULT
            last = month_start(int(clock().timestamp() * 1000))
            for _ in range(AHEAD):
                last = next_month(last)
            ahead = partition_name(last)
            with services.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE {ahead}")
            services.audit.append_sync(AuditRecord(event_type="login", outcome="success",
                                                   ts=1_741_176_000_000))  # 2025-03-05
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080"):
            if services.engine.dialect.name == "postgresql":
                _eventually(lambda: {ahead, "audit_records_p202503"} <= set(months(services)))
            time.sleep(0.3)  # several rounds: nothing is due yet
            assert state(pending.kid) == "pending"
            assert count(revocations) == 2 and count(authorization_codes) == 1
            # past the prepublication delay and a day past every expiry above
            clock.advance(2 * 86400)
            _eventually(lambda: state(pending.kid) == "active")
            _eventually(lambda: count(authorization_codes) == 0
                        and count(refresh_tokens) == 0 and count(assertion_jtis) == 0)
            with services.engine.connect() as conn:
                left = conn.execute(sa.select(revocations.c.value)).scalars().all()
            assert left == ["live-jti"]
    finally:
        close_services(services)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon", "100000"])
def test_a_bad_interval_names_the_setting(env: dict[str, str], value: str) -> None:
    with pytest.raises(SettingsError, match="maintenance_interval_seconds"):
        load_settings({**env, "GOVGATE_MAINTENANCE_INTERVAL_SECONDS": value})


def test_the_interval_defaults_to_a_minute(env: dict[str, str]) -> None:
    assert load_settings(env).maintenance_interval_seconds == 60.0
    assert load_settings({**env, "GOVGATE_MAINTENANCE_INTERVAL_SECONDS": "2.5"}
                         ).maintenance_interval_seconds == 2.5
