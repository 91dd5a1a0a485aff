"""The demo home's settings file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.demo import DEMO_SETTINGS


def write_demo_settings(home: Path, port: int, more: Mapping[str, Any] | None = None) -> None:
    """``home/govgate.toml``: the demo's settings, its port and issuer (and ``more``)."""
    values = {**DEMO_SETTINGS, "port": port, "issuer": f"http://127.0.0.1:{port}",
              **(more or {})}
    # a JSON string, number or list of strings is a TOML one too
    (home / "govgate.toml").write_text(
        "# written by govgate demo\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                                for k, v in values.items()), encoding="utf-8")
