"""A delegated token's pseudonyms (RFC 8693 × the catalogue's pseudonym mask) are
those of the acting client's department, whose system receives them: the same
pseudonym of a value as that system's own calls, whichever department's user it acts
for (docs/seams.md, "Attack of 2026-12-05, fourth session (a user's token through
another department's client, on every path)"). Through the proxy to the demo's
department system on a real socket."""

from __future__ import annotations

from tests.exchange.conftest import World, clock, services, world  # noqa: F401 (fixtures)
from tests.tokens import access_token
from tests.wiring import apply_state

ONE = "/s/vehicles/api/vehicles/%E6%A1%82A%C2%B7G1024"  # 桂A·G1024
SHARED = {"code": "JG-0003", "name": "单车信息", "provider": "jgswj", "system": "vehicles",
          "share_type": "unconditional",
          "route": {"method": "GET", "path": "/api/vehicles/{plate}"},
          "items": [{"name": "plate_number", "title": "车牌号"},
                    {"name": "driver_id_number", "title": "驾驶员标识", "mask": "pseudonym"}]}


async def test_a_delegated_tokens_pseudonyms_are_the_acting_systems(
        world: World) -> None:  # noqa: F811
    apply_state(world.services, {"catalogue": [SHARED]})

    async def pseudonym(token: str) -> str:
        r = await world.get(ONE, token)
        assert r.status_code == 200, r.text
        value = str(r.json()["driver_id_number"])
        assert value.startswith("p:")
        return value

    # fin-portal, czt's system, calling on its own and acting for nn-jgsw's wang.wu
    own = await pseudonym(access_token(world.services, sub=None, department="czt",
                                       client_id="fin-portal"))
    acting = await pseudonym(await world.delegated("wang.wu", "nn-jgsw"))
    assert acting == own
    rec = world.records("proxy_request")[-1]
    assert rec["department"] == "nn-jgsw" and rec["extra"]["acting_department"] == "czt"
    # nn-jgsw's own system gets nn-jgsw's: departments still cannot join
    nn = await pseudonym(access_token(world.services, sub=None, department="nn-jgsw",
                                      client_id="nn-sync"))
    assert nn != own
