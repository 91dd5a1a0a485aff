"""A real gateway on 127.0.0.1 (uvicorn in a thread) for interop and browser tests."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import close_services, make_services
from tests.served import QuickServer
from tests.wiring import parts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any, port: int, *, lifespan: str = "on") -> Iterator[None]:
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread, for the block."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan=lifespan)
    server = QuickServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def live_gateway(settings: Settings, host: str = "127.0.0.1", *,
                 extra_clients: list[dict[str, Any]] | None = None
                 ) -> Iterator[tuple[str, Services]]:
    """A gateway served on 127.0.0.1, its issuer named by ``host`` (``localhost``
    where WebAuthn needs a host name); ``extra_clients`` instead of
    ``helpers.EXTRA_CLIENTS`` beside the demo's."""
    port = free_port()
    issuer = f"http://{host}:{port}"
    services = make_services(dataclasses.replace(settings, issuer=issuer, port=port),
                             extra_clients=extra_clients)
    try:
        with serving(create_app(parts(services)), port):
            yield issuer, services
    finally:
        close_services(services)
