"""A JSON object as the shaped-request checks read it."""

from __future__ import annotations

from typing import Any


class Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept (``json``'s
    ``object_pairs_hook``): upstreams differ on which of two equal keys they take."""
