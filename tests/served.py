"""uvicorn for tests, started and stopped without uvicorn's polling.

``Server.serve()`` ticks every 0.1 s and its shutdown sleeps 0.1 s and polls at
0.1 s: about 0.3 s to stop a server, and most tests stop two (the gateway and its
upstream), which cost more than the tests themselves. ``QuickServer`` is the same
server (same config, protocols, lifespan and loop) that notices ``should_exit``
within milliseconds and stops as uvicorn does: it closes the listeners, lets open
connections finish the response they are sending, then runs the lifespan's
shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn


class QuickServer(uvicorn.Server):
    async def main_loop(self) -> None:
        ticks = 0
        await self.on_tick(0)  # the Date header every response carries
        while not self.should_exit:
            await asyncio.sleep(0.005)
            ticks += 1
            if ticks % 200 == 0:
                # on_tick(0) refreshes the Date header; uvicorn does so every second
                self.should_exit = await self.on_tick(0) or self.should_exit

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await stop_quickly(self)
        for sock in sockets or []:
            sock.close()
        if not self.force_exit:
            await self.lifespan.shutdown()


async def stop_quickly(server: uvicorn.Server, *, grace: float = 5.0) -> None:
    """Close the listeners, ask every connection to close after its response and wait
    up to ``grace`` seconds for them (polling at 2 ms, not 100); what is left then is
    aborted."""
    for listening in server.servers:
        listening.close()
    state = server.server_state
    for connection in list(state.connections):
        connection.shutdown()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            while state.connections or state.tasks:
                await asyncio.sleep(0.002)
    for task in list(state.tasks):
        task.cancel()
    for connection in list(state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()
    for listening in server.servers:
        await listening.wait_closed()
