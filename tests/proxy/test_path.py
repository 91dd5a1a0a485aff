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
    """parse() with the shortcut switched off (and past its table of parsed targets,
    which would hand back the shortcut's answer): the reference."""
    saved = proxy_path._PLAIN
    proxy_path._PLAIN = _Never()  # type: ignore[assignment]
    try:
        return proxy_path._parse(raw, b"")
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


def test_a_path_parsed_before_is_not_parsed_again_and_refusals_are_not_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of parsed targets: the same bytes give the same (immutable) Target
    without a second parse; a refused spelling is refused every time; a long target
    is parsed and not kept; a full table starts afresh."""
    calls: list[bytes] = []
    real = proxy_path._parse

    def counted(raw: bytes, query: bytes) -> Target:
        calls.append(raw)
        return real(raw, query)

    monkeypatch.setattr(proxy_path, "_parse", counted)
    monkeypatch.setattr(proxy_path, "_parsed", {})
    first = parse(b"/s/assets/api/rooms", b"a=1")
    assert parse(b"/s/assets/api/rooms", b"a=1") is first and len(calls) == 1
    assert first.object == "/s/assets/api/rooms" and first.query == "a=1"
    assert parse(b"/s/assets/api/rooms", b"a=2").query == "a=2" and len(calls) == 2
    for _ in range(2):
        with pytest.raises(BadPath):
            parse(b"/s/assets/api/%2e%2e/admin")
    assert len(calls) == 4
    long = b"/s/assets/" + b"x" * proxy_path.PARSED_KEY_MAX
    assert parse(long).path == "/" + "x" * proxy_path.PARSED_KEY_MAX
    assert (long, b"") not in proxy_path._parsed
    monkeypatch.setattr(proxy_path, "PARSED_MAX", 3)
    for n in range(4):
        parse(b"/s/assets/%d" % n)
    assert len(proxy_path._parsed) <= 3 and parse(b"/s/assets/3").path == "/3"
