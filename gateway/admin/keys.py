"""Signing-key rotation as ``govgate keys rotate`` and the security administrator do it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from keys import USES, KeyInfo, KeyService
from keys.ring import FIXED_ALGS, ON_DEMAND

ChangeHook = Callable[[str, dict[str, Any]], None]


def rotate_keys(service: KeyService, record: ChangeHook, uses: Iterable[str] = (),
                alg: str | None = None, at_once: bool = False) -> list[KeyInfo]:
    """A new key for each use (default: every use), pending until the prepublication
    delay has passed, or active at once with ``at_once`` (a compromised key). Each
    rotation is recorded through ``record``."""
    out = []
    # every use: those made on first need only once made; an algorithm asked for all
    # is not theirs (token_rs256 stays RS256)
    held = {i.use for i in service.list_keys() if i.state in ("active", "pending")}
    for use in list(uses) or [u for u in USES if u not in ON_DEMAND or u in held]:
        info = service.rotate(use, None if use in FIXED_ALGS else alg)
        if at_once and info.state == "pending":
            info = service.promote_now(use)
        record("key_rotated", {"kid": info.kid, "use": info.use, "alg": info.alg,
                               "state": info.state})
        out.append(info)
    return out
