"""The demo home's settings file."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.demo import DEMO_SETTINGS


def write_demo_settings(home: Path, port: int) -> None:
    """``home/govgate.toml``: the demo's settings, its port and issuer."""
    values = {**DEMO_SETTINGS, "port": port, "issuer": f"http://127.0.0.1:{port}"}
    # a JSON string or number is a TOML one too
    (home / "govgate.toml").write_text(
        "# written by govgate demo\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                                for k, v in values.items()), encoding="utf-8")
