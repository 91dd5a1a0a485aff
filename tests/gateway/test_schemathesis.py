"""schemathesis against a live gateway: a real uvicorn server on 127.0.0.1 serving the demo
organisation and catalogue on this test's own (throwaway) database, the ``st run`` command
line with every check on (``--checks all``), every phase (examples, coverage, fuzzing,
stateful), a fixed seed and deterministic generation, every operation of
``/api/v1/openapi.json`` with a bearer token of a person allowed to call it: zero failures.

What a declaration says no schema can (``Operation.rules``: a date not in the past, the
current password) is answered 400 although the request matches the description; for
those operations only, and only for positive data, 400 is an expected status
(``positive_data_acceptance``). Everything else is schemathesis' defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from audit import AuditLog
from catalogue import Actor
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.services import Services
from gateway.web.api.openapi import PATH, operations
from gateway.web.http_server import HeadLimits, ServerConfig
from tests.catalogue.conftest import clock, services  # noqa: F401 - fixtures
from tests.proxy.conftest import free_socket
from tests.tokens import access_token
from tests.wiring import apply_state, parts

pytestmark = pytest.mark.slow

#: who calls each tag's operations (username, department, roles): the demo's data
#: steward, and the three admin accounts ``govgate init`` makes
CALLERS = {
    "catalogue": ("zhang.san", "jgswj", ("staff", "data_steward")),
    "steward": ("zhang.san", "jgswj", ("staff", "data_steward")),
    "account": ("li.si", "jgswj", ("staff",)),
    "admin-sys": ("fuzz.sysadmin", "fuzz-dept", ("sysadmin",)),
    "admin-sec": ("secadmin", "platform", ("secadmin",)),
    "audit": ("auditor", "platform", ("auditor",)),
    "admin-audit": ("auditor", "platform", ("auditor",)),
    "stats": ("auditor", "platform", ("auditor",)),
    # a person asking for, approving or ending emergency access: a security admin
    # (the review steps answer them 403, as documented)
    "break-glass": ("secadmin", "platform", ("secadmin",)),
    "delegation": ("zhang.san", "jgswj", ("staff", "data_steward")),
}
#: the system administrator's department, below the data steward's: what they change
#: (users, systems, clients, departments, learnt from their lists) is theirs, never the
#: callers of the other tags nor the client their tokens name
FUZZ_STATE = {
    "departments": [{"code": "fuzz-dept", "name": "试验处", "region": "gx",
                     "parent": "jgswj"}],
    "users": [{"username": "fuzz.sysadmin", "name": "试验管理员", "department": "fuzz-dept",
               "roles": ["sysadmin"], "status": "active"},
              {"username": "fuzz.target", "name": "试验", "department": "fuzz-dept",
               "roles": ["staff"], "status": "active"}],
    "systems": [{"code": "fuzz-sys", "name": "试验系统", "department": "fuzz-dept",
                 "upstream": "http://127.0.0.1:9"}],
    "clients": [{"client_id": "fuzz-client", "name": "试验", "department": "fuzz-dept",
                 "grant_types": ["client_credentials"], "secret": "x" * 32,
                 "scope": "catalogue:read"}],
}


def seed(services: Services) -> None:  # noqa: F811
    """The system administrator's department, and applications to decide on (ids from
    1: the numbers a run tries first)."""
    apply_state(services, FUZZ_STATE)
    wf = parts(services).workflow
    for items in (["plate_number"], ["brand"], ["plate_number", "brand"]):
        wf.apply(Actor("wang.wu", "nn-jgsw", frozenset({"staff"})), "JG-0001",
                 items=items, purpose="统计", until="2026-12-31")


#: operations called by a system rather than a person: a client-credentials token of the
#: demo's finance system (czt, a consumer with a grant: what it may call has an end)
SYSTEM_CALLS = {"get_catalogue_allowed", "get_catalogue_resources",
                "get_catalogue_resources_code", "get_catalogue_duplicates"}
MAX_EXAMPLES = 5
ST = Path(sys.executable).with_name("st")


class LiveServer:
    """The app on uvicorn as ``govgate serve`` runs it (lifespan on: the audit writer
    and the maintenance task start and stop with it), in a thread."""

    def __init__(self, services: Services) -> None:  # noqa: F811
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(ServerConfig(
            create_app(parts(services)), limits=HeadLimits(), lifespan="on",
            log_level="error", ws="none", access_log=False, proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "no server"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live(services: Services, clock: FrozenClock) -> Iterator[LiveServer]:  # noqa: F811
    sync_log = services.audit
    services.audit = AuditLog(services.engine, keys=services.keys, writer_id="schemathesis",
                              clock=lambda: clock().timestamp())
    try:
        with LiveServer(services) as server:
            yield server
    finally:
        services.audit = sync_log


def _toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string or array of them


def config(services: Services, env: dict[str, str]) -> str:  # noqa: F811
    """schemathesis.toml: the run's bounds, and per operation its caller's token (in the
    environment, not the file) and, where a declaration names rules beyond its schema,
    400 among the statuses positive data may get."""
    lines = [
        "workers = 1", "seed = 1", "request-timeout = 20", "continue-on-failure = true",
        "[generation]", f"max-examples = {MAX_EXAMPLES}", "deterministic = true",
        'database = "none"',
        # the API's strings are UTF-8 text without NUL (its description says so; JSON
        # Schema cannot): no lone surrogate, no NUL in what is meant to be valid
        'codec = "utf-8"', "allow-x00 = false",
        "[phases.stateful]", "max-steps = 20",
    ]
    for tag, (user, department, roles) in CALLERS.items():
        var = "GG_TOKEN_" + tag.upper().replace("-", "_")
        env[var] = access_token(services, sub=user, department=department, roles=roles)
    env["GG_TOKEN_SYSTEM"] = access_token(services, sub=None, department="czt",
                                          client_id="finance-system", scope="catalogue:read")
    for op in operations(create_app(parts(services)).routes):
        if op.access.public and not op.rules:
            continue  # nothing to say
        lines += ["[[operations]]", f"include-operation-id = {_toml(op.operation_id)}"]
        if not op.access.public:
            var = "GG_TOKEN_" + ("SYSTEM" if op.operation_id in SYSTEM_CALLS
                                 else op.tag.upper().replace("-", "_"))
            lines.append(f'headers = {{ Authorization = "Bearer ${{{var}}}" }}')
        if op.rules:
            lines += ["[operations.checks.positive_data_acceptance]",
                      "expected-statuses = " + _toml(
                          ["2xx", "3xx", "400", "401", "403", "404", "409", "429"])]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_nothing(live: LiveServer, services: Services,  # noqa: F811
                                    tmp_path: Path) -> None:
    seed(services)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GG_TOKEN_")}
    (tmp_path / "schemathesis.toml").write_text(config(services, env), encoding="utf-8")
    started = time.monotonic()
    run = subprocess.run(
        [str(ST), "--config-file", str(tmp_path / "schemathesis.toml"), "--no-color",
         "run", live.url + PATH, "--checks", "all", "--report", "junit",
         "--report-dir", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = run.stdout + run.stderr
    print(out[-20000:])
    print(f"schemathesis took {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, out[-20000:]
