"""委托 × the proxy's rate limit: B's calls for A count against B (the one calling),
never against A, whose own calls are not throttled by a colleague's use."""

from __future__ import annotations

import dataclasses

from tests.delegation.conftest import approved, cookies
from tests.proxy.conftest import WORLD_PROXY, World


async def test_a_delegates_calls_spend_their_own_budget(seam: World) -> None:
    world = seam
    number = await approved(world)
    async with world.rebuilt(proxy_config=dataclasses.replace(WORLD_PROXY, rate=0.01,
                                                              burst=3)):
        acting = cookies(world, "wang.fang", acting=number)
        got = [(await world.request("GET", "/s/echo/x", headers=[acting])).status
               for _ in range(4)]
        assert got == [200, 200, 200, 429]
        # A's own budget is untouched by B's calls for A; B's own is what B spent
        assert (await world.request("GET", "/s/echo/x",
                                    headers=[cookies(world, "li.ming")])).status == 200
        assert (await world.request("GET", "/s/echo/x",
                                    headers=[cookies(world, "wang.fang")])).status == 429
