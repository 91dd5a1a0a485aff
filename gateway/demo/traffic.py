"""The demo's traffic: a few dozen real calls through the gateway when ``govgate demo``
starts, so that the real-use pages (``/portal/stats``) have something true to show.

Nothing is written into the audit log by hand: the finance system takes a
client-credentials token and reads through ``/s/...`` as any client would, and the
demo's staff sign in at the portal (the form, its CSRF token and all) and open
their systems with the session cookie, as a browser would. The proxy decides,
shapes and audits every call; a refused one (another department's data without a
grant) is audited as refused and counted apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

# (path under /s/, times) per actor; the comments say what the gateway decides
CLIENT_CALLS: tuple[tuple[str, int], ...] = (
    ("/s/vehicles/api/vehicles", 6),  # JG-0001: czt's grant, shaped and encrypted
    ("/s/offices/api/rooms", 4),  # JG-0002: shared unconditionally
    ("/s/assets/api/assets", 4),  # CZ-0001: the finance department's own system
    ("/s/vehicles/api/vehicles/NOPE", 1),  # off the governed route: refused
)
USER_CALLS: dict[str, tuple[tuple[str, int], ...]] = {
    "li.si": (("/s/vehicles/api/vehicles", 3), ("/s/offices/api/rooms", 2)),  # own department
    "zhao.min": (("/s/vehicles/api/vehicles", 3), ("/s/assets/api/assets", 2)),  # grant; own
    "wang.wu": (("/s/offices/api/rooms", 3), ("/s/vehicles/api/vehicles", 1)),  # open; refused
    "zhang.san": (("/s/offices/api/rooms/ZW-A-0301", 1), ("/s/vehicles/api/vehicles", 1)),
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Traffic:
    calls: int = 0
    refused: int = 0

    def count(self, response: httpx.Response) -> None:
        self.calls += 1
        if response.status_code in (401, 403):
            self.refused += 1


async def _client_calls(http: httpx.AsyncClient, traffic: Traffic, client_id: str,
                        secret: str) -> None:
    token = await http.post("/oauth2/token", data={"grant_type": "client_credentials",
                                                   "scope": "proxy"},
                            auth=(client_id, secret))
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    for path, times in CLIENT_CALLS:
        for _ in range(times):
            traffic.count(await http.get(path, headers=headers))


async def _user_calls(gateway: str, traffic: Traffic, username: str, password: str,
                      calls: Sequence[tuple[str, int]]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=10,
                                 headers={"Origin": gateway}) as http:
        form = await http.get("/portal/login")
        found = _CSRF.search(form.text)
        if found is None:
            raise RuntimeError("the sign-in form has no CSRF token")
        signed_in = await http.post("/portal/login", data={
            "username": username, "password": password, "csrf_token": found.group(1),
            "next": "/portal"})
        if signed_in.status_code != 303:
            raise RuntimeError(f"{username} could not sign in ({signed_in.status_code})")
        for path, times in calls:
            for _ in range(times):
                traffic.count(await http.get(path, headers={"Accept": "application/json"}))


async def make_traffic(gateway: str, doc: dict[str, Any]) -> Traffic:
    """Calls through the gateway at ``gateway`` as the demo state ``doc``'s client
    credentials client and its staff (their passwords are in the demo file)."""
    traffic = Traffic()
    client = next((c for c in doc.get("clients", [])
                   if "client_credentials" in (c.get("grant_types") or []) and c.get("secret")),
                  None)
    if client is not None:
        async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
            await _client_calls(http, traffic, client["client_id"], client["secret"])
    passwords = {u["username"]: u.get("password") for u in doc.get("users", [])}
    for username, calls in USER_CALLS.items():
        if passwords.get(username):
            await _user_calls(gateway, traffic, username, str(passwords[username]), calls)
    return traffic
