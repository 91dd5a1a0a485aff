"""gateway.proxy.path: the plain-path shortcut gives exactly what the segment walk gives,
and every spelling the walk refuses is still refused."""

from __future__ import annotations

import random

import pytest

from gateway.proxy import path as proxy_path
from gateway.proxy.path import BadPath, Target, parse

ALPHABET = [b"a", b"Z", b"0", b"-", b".", b"_", b"~", b"/", b"%", b"2", b"e", b"F", b";",
            b"=", b"@", b":", b"!", b"\\", b" ", b"\xc3\xa9", b"%2e", b"%2F", b"%25", b"..",
            b"%e8%b4%a2"]


def _by_walk(raw: bytes) -> Target | str:
    """parse() with the shortcut switched off: the reference."""
    saved = proxy_path._PLAIN
    proxy_path._PLAIN = _Never()  # type: ignore[assignment]
    try:
        return parse(raw)
    except BadPath as exc:
        return f"refused: {exc}"
    finally:
        proxy_path._PLAIN = saved


class _Never:
    def fullmatch(self, _data: bytes) -> None:
        return None


def _parsed(raw: bytes) -> Target | str:
    try:
        return parse(raw)
    except BadPath as exc:
        return f"refused: {exc}"


def test_shortcut_and_walk_agree_on_random_paths() -> None:
    rng = random.Random(20261128)
    shortcut_taken = 0
    for _ in range(20_000):
        below = b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        raw = b"/s/assets/" + below
        assert _parsed(raw) == _by_walk(raw), raw
        shortcut_taken += bool(proxy_path._PLAIN.fullmatch(below))
    assert shortcut_taken > 1_000  # the comparison covered the shortcut, not only the walk


@pytest.mark.parametrize("raw", [b"/s/assets", b"/s/assets/", b"/s/assets/api/v1/rooms",
                                 b"/s/assets/api/rooms/", b"/s/assets/a;b=c/d@e:f"])
def test_plain_paths_pass_unchanged(raw: bytes) -> None:
    t = parse(raw)
    below = raw[len(b"/s/assets"):] or b"/"
    assert (t.system, t.path, t.upstream_path) == ("assets", below.decode(), below.decode())


@pytest.mark.parametrize("raw", [b"/s/assets/api/../admin", b"/s/assets/api/./x",
                                 b"/s/assets//api", b"/s/assets/api//x", b"/s/assets/..;x/a",
                                 b"/s/assets/.."])
def test_dot_and_empty_segments_are_refused(raw: bytes) -> None:
    with pytest.raises(BadPath):
        parse(raw)
