"""``govgate serve`` names the address the gateway gives out (walk of 2026-12-05,
fourth): the README's ``govgate serve --port`` on another port than 8080 listened
there while discovery, tokens, CAS and SAML metadata still named
``http://127.0.0.1:8080`` (the ``issuer`` setting's default), and the banner said
only where it listened."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.oauth2.live import free_port

GOVGATE = [sys.executable, "-m", "gateway.cli"]


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The lines the server prints, as they come (a thread reads them)."""
    out: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return out


def _next(lines: queue.Queue[str], seconds: float) -> str:
    """The next line, or "" when none comes in time."""
    try:
        return lines.get(timeout=seconds)
    except queue.Empty:
        return ""


@pytest.mark.parametrize(("lang", "says"), [
    ("C.UTF-8", "the gateway's address in tokens, discovery and metadata (setting issuer): "),
    ("zh_CN.UTF-8", "令牌、发现文档和元数据中网关的地址（设置 issuer）："),
])
def test_serve_on_another_port_names_the_issuer_it_gives_out(
        env: dict[str, str], lang: str, says: str) -> None:
    assert subprocess.run([*GOVGATE, "init"], env=env, capture_output=True,
                          timeout=120).returncode == 0
    port = free_port()
    proc = subprocess.Popen([*GOVGATE, "serve", "--port", str(port)],
                            env={**env, "LANG": lang}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = _lines(proc)
        first = _next(lines, 60)
        assert f"http://127.0.0.1:{port}" in first
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/.well-known/openid-configuration",
                timeout=10) as r:
            issuer = json.load(r)["issuer"]
        assert issuer == "http://127.0.0.1:8080"  # the default, not where it listens
        assert _next(lines, 5) == says + issuer
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
