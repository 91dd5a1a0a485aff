"""``tests.conftest.initialised``: ``gateway.setup.initialise`` copied from a snapshot
made once per session for each value of the settings it reads. The snapshot is only
right while ``initialise`` reads no other setting, and only for a fresh database."""

from __future__ import annotations

from typing import Any

from gateway.settings import Settings
from gateway.setup import initialise
from tests.conftest import INITIALISE_READS, initialised

# the home, the database and the master key's place are the test's own; the key's
# other sources (an environment variable, PKCS#11) are never snapshotted
OWN = {"home", "db_url", "database_url", "master_key_path", "master_key_file",
       "master_key_env", "pkcs11_module", "pkcs11_token_label", "pkcs11_pin",
       "pkcs11_key_label"}


class _Reading:
    """``settings`` that note each attribute read of them."""

    def __init__(self, settings: Settings) -> None:
        self.__dict__["_settings"] = settings
        self.__dict__["read"] = set()

    def __getattr__(self, name: str) -> Any:
        self.__dict__["read"].add(name)
        return getattr(self.__dict__["_settings"], name)


def test_initialise_reads_no_setting_the_snapshot_leaves_out(settings: Settings) -> None:
    reading = _Reading(settings)
    initialise(reading, password_factory=lambda: "Admin-Passw0rd-2026!")  # type: ignore[arg-type]
    assert reading.read - OWN <= set(INITIALISE_READS), (
        "add to tests.conftest.INITIALISE_READS: "
        f"{sorted(reading.read - OWN - set(INITIALISE_READS))}")


def test_a_database_already_in_use_is_initialised_in_place(settings: Settings) -> None:
    """A second world over the same database (a restart) keeps what the first made."""
    from gateway.services import open_services

    initialised(settings)
    services = open_services(settings)
    try:
        services.org.add_region("gx", "某省")
        services.org.add_department("jgswj", "机关事务管理局", "gx")
    finally:
        services.close()
    initialised(settings)
    services = open_services(settings)
    try:
        assert "jgswj" in [d["code"] for d in services.org.list_departments()]
    finally:
        services.close()
