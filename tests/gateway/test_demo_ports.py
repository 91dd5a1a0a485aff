"""``make demo`` beside something on its ports (walk of 2026-12-05, fourth): a second
``govgate demo`` while one ran wiped the running demo's home under it, then failed in
pages of uvicorn tracebacks (exit 3) that named neither what to do nor
``--free-ports``. Now it stops first with one line, and the home is untouched."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.serve_cmd import DEMO_MARKER

GOVGATE = [sys.executable, "-m", "gateway.cli"]


@pytest.mark.parametrize(("lang", "says"), [
    ("C.UTF-8", "in use (another program, or a demo still running)"),
    ("zh_CN.UTF-8", "已被占用（另一个程序，或仍在运行的演示）"),
])
def test_a_taken_port_stops_the_demo_before_it_wipes_anything(
        env: dict[str, str], tmp_path: Path, lang: str, says: str) -> None:
    home = tmp_path / "demo"
    home.mkdir()
    (home / DEMO_MARKER).write_text("a running demo's\n")
    (home / "govgate.db").write_text("the running demo's database\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*GOVGATE, "demo", "--home", str(home), "--port", str(port)],
                                env={**env, "LANG": lang}, capture_output=True, text=True,
                                timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert says in result.stderr and str(port) in result.stderr
    assert "--free-ports" in result.stderr
    assert (home / "govgate.db").read_text() == "the running demo's database\n"
