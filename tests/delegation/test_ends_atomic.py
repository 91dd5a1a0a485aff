"""A delegation end's token revocation is one step: the refresh family revoked and its
access tokens on the deny list commit together, so a round that fails half-way leaves
the family for the next round (``gateway.idp.oauth2.acting_ends``)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.delegations import Delegations
from gateway.idp.oauth2.acting_ends import ActingEnds, RoundFailed
from tests.delegation.conftest import api, approved
from tests.delegation.test_ends import acting_tokens
from tests.delegation.test_idp import clients_doc, verified
from tests.proxy.conftest import World


async def revoked_with_tokens(world: World) -> str:
    """A delegation B acted under at echo-web, then revoked by the head; the jti of the
    access token the relying party got."""
    world.built.state_applier().apply(clients_doc())
    number = await approved(world, systems=["echo"])
    client, token = await acting_tokens(world, number)
    await client.aclose()
    r = await api(world, "zhao.head", "POST", f"/{number}/revoke")
    assert r.status == 200, r.body
    return str(verified(world, token["access_token"])["jti"])


async def test_a_round_failing_before_the_deny_list_leaves_the_family_for_the_next(
        sockets: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = sockets
    jti = await revoked_with_tokens(world)

    store = world.built.provider.store
    deny = store._deny
    failed: list[str] = []

    def deny_once(*args: Any, **kw: Any) -> None:
        if not failed:  # the database goes away for this one write
            failed.append("once")
            raise OSError("connection lost")
        deny(*args, **kw)

    monkeypatch.setattr(store, "_deny", deny_once)
    ends = ActingEnds(world.built.provider)
    with pytest.raises(OSError):
        ends.round()
    assert not store.is_denied("jti", jti)
    ends.round()  # the next round finds the family still to end
    assert store.is_denied("jti", jti)


async def test_the_tokens_end_though_recording_other_ends_fails(
        sockets: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revocation is recorded by whoever revoked; the round's own records (moves,
    lapses) failing must not keep that delegation's tokens alive."""
    world = sockets
    jti = await revoked_with_tokens(world)

    def unrecordable(self: Any) -> list[Any]:
        raise OSError("audit log unavailable")

    monkeypatch.setattr(Delegations, "settle_ends", unrecordable)
    with pytest.raises(RoundFailed) as failed:
        ActingEnds(world.built.provider).round()
    assert isinstance(failed.value.__cause__, OSError)
    assert world.built.provider.store.is_denied("jti", jti)
