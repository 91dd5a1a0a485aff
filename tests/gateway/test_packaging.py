"""The distribution declares its packages: no flat-layout discovery, so setuptools
neither warns about tests/, bench/ and examples/ beside them nor drops a folder of
modules (the migrations) as mere data."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# every package at the top of the repository, but the ones that do not ship
TOP = sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
             if p.parent.name not in ("tests", "bench", "examples", "build"))


def test_every_folder_of_modules_is_a_declared_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "find" not in config.get("packages", {}), "packages are discovered, not declared"
    declared = set(config["packages"])
    found = {
        ".".join(folder.relative_to(ROOT).parts)
        for top in TOP for folder in [ROOT / top, *(ROOT / top).rglob("*")]
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py"))
    }
    assert declared == found
    # data that is not a module is listed, nothing else is swept in
    assert config["include-package-data"] is False
