"""The browser tests' shared parts: one headless Chromium per test module (Debian's,
as CI installs it: the ``browser`` fixture), a live gateway for it, the demo's
department systems on free ports, and the two ways a test's browser is signed in:
through the portal's form (``sign_in``), or with a portal session made in the
gateway's store when the sign-in is not the subject (``session_page``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gateway.demo.apps import create_upstream
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import DEMO_PASSWORD
from tests.oauth2.live import free_port, live_gateway, serving
from tests.wiring import parts

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield b
        finally:
            b.close()


@contextmanager
def browser_gateway(settings: Settings, **changes: Any) -> Iterator[tuple[str, Services]]:
    """A gateway on 127.0.0.1 for a browser test (``settings`` with ``changes``):
    (issuer, services); the test is skipped before anything starts when Chromium is
    missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    with live_gateway(dataclasses.replace(settings, **changes)) as world:
        yield world


@contextmanager
def demo_system(code: str, **options: Any) -> Iterator[str]:
    """The demo's ``code`` system (``gateway.demo.apps.create_upstream``) on a free
    port of 127.0.0.1 for the block: its address."""
    port = free_port()
    with serving(create_upstream(code, **options), port, lifespan="off"):
        yield f"http://127.0.0.1:{port}"


def sign_in(page: Any, username: str, password: str = DEMO_PASSWORD) -> None:
    """Fill the portal's sign-in form on ``page`` and send it."""
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#submit")


def session_page(browser: Any, issuer: str, services: Services, username: str, *,
                 amr: str = "pwd", **context_options: Any) -> Any:
    """A page in a new browser context signed in as ``username``: a portal session
    made in the gateway's store (``amr`` as the sign-in would record it: ``"pwd otp"``
    for an admin), its cookie set for ``issuer``. ``context_options`` go to
    ``browser.new_context`` (locale, viewport, ...); close with ``page.context.close()``."""
    token, _ = parts(services).provider.store.create_session(
        username, "active", amr=amr, absolute_seconds=3600)
    context = browser.new_context(**context_options)
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": issuer}])
    return context.new_page()
