from __future__ import annotations

import hashlib
import hmac

import pytest

from keys import GM, STANDARD, UnknownProfile, get_profile


def test_standard_profile_hashes_match_stdlib() -> None:
    p = get_profile("standard")
    assert p.hash_name == "sha256"
    assert p.hash(b"abc") == hashlib.sha256(b"abc").digest()
    assert p.hmac(b"k", b"abc") == hmac.new(b"k", b"abc", hashlib.sha256).digest()


def test_gm_profile_uses_sm3() -> None:
    p = get_profile("gm")
    assert p.hash_name == "sm3"
    # GM/T 0004-2012 appendix A, example 1
    assert p.hash(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
    assert len(p.hmac(b"k", b"abc")) == 32
    assert p.hmac(b"k", b"abc") != STANDARD.hmac(b"k", b"abc")


def test_profiles_are_frozen() -> None:
    with pytest.raises(AttributeError):
        GM.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["", "SM", "Standard", None])
def test_unknown_profile(name: str) -> None:
    with pytest.raises(UnknownProfile) as err:
        get_profile(name)
    assert isinstance(err.value, KeyError)
    assert "unknown crypto profile" in str(err.value)
