"""`govgate demo` starts for real, serves, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_demo_serves_gateway_and_every_upstream_then_stops_on_sigint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
    env["LANG"] = "C.UTF-8"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--free-ports",
            "--home",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            _exercise(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _exercise(proc: subprocess.Popen[str]) -> None:
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C" in line:
            break
    out = "".join(lines)
    assert "Ctrl-C" in out, out + (proc.stderr.read() if proc.poll() is not None else "")
    gateway = re.search(r"gateway:\s+(http://127\.0\.0\.1:\d+)/", out)
    assert gateway, out
    assert httpx.get(gateway.group(1) + "/healthz", timeout=5).json() == {"status": "ok"}
    assert httpx.get(gateway.group(1) + "/readyz", timeout=5).status_code == 200
    # the demo runs gateway.http_server's protocol: one head size limit on every route
    big = httpx.get(gateway.group(1) + "/healthz", headers={"X-Big": "a" * 40_000}, timeout=5)
    assert big.status_code == 431
    upstreams = dict(re.findall(r"^\s+(vehicles|offices|assets)\s+\S+\s+(http://\S+)$", out, re.M))
    assert set(upstreams) == {"vehicles", "offices", "assets"}, out
    for code, url in upstreams.items():
        assert httpx.get(url + "/healthz", timeout=5).json()["system"] == code
    records = httpx.get(upstreams["vehicles"] + "/api/vehicles", timeout=5).json()
    assert records["total"] == len(records["items"]) > 0
    assert "zhang.san" in out and "Demo-Passw0rd-2026" in out

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "demo stopped" in proc.stdout.read()
