"""The load of issue #16: clients calling a real gateway the ways its users do, and
the checks every load and fault run makes against the audit log.

Each client is one person at one system: an ``httpx.AsyncClient`` (its own
keep-alive connections and cookies), signed in once by the authorization-code flow
(the portal's form, ``/oauth2/authorize`` with PKCE, the code exchanged), then
stepping through a fixed mix, one request at a time:

    allowed    the owning department's system client reads /s/api/api/things/N   200
    user_call  the person reads /s/api/api/items with their access token          200
    shaped     another department's client reads /s/api/api/items: cut and masked 200
    denied     that client reads /s/api/api/private: no policy line              403
    catalogue  the person searches /api/v1/catalogue/resources (not audited)      200
    refresh    the person's refresh token rotated at /oauth2/token                200
    cc_token   a client-credentials token                                         200
    login      the portal's sign-in form, then the password                      303

Every answer is kept (:class:`Answer`: its status, the request id the proxy
returned, the ``jti`` of a token), so that afterwards each one can be looked up
in the audit log: ``unaudited_successes`` (a 2xx without its record: must never
happen, whatever failed) and ``record_count_problems`` (a healthy run: exactly one
record per audited answer, nothing more).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import httpx
import sqlalchemy as sa

from bench.gateway_world import LOADER, OUTSIDER, PASSWORD, SYSTEM, WEB, WEB_CALLBACK

MIX: tuple[tuple[str, int], ...] = (
    ("allowed", 40), ("user_call", 15), ("shaped", 10), ("denied", 15), ("catalogue", 8),
    ("refresh", 8), ("cc_token", 2), ("login", 2))
# the audit record each kind of answer is owed (event types), and the status it should
# have when nothing is wrong
PROXY_OPS = {"allowed": 200, "user_call": 200, "shaped": 200, "denied": 403}
TOKEN_OPS = {"refresh": 200, "cc_token": 200, "code": 200}
HEALTHY = {**PROXY_OPS, **TOKEN_OPS, "catalogue": 200, "login": 303, "login_form": 200,
           "authorize": 302}
EVENTS = {"allowed": "proxy_request", "user_call": "proxy_request", "shaped": "proxy_request",
          "denied": "proxy_request", "refresh": "token_refreshed", "cc_token": "token_issued",
          "code": "token_issued", "login": "login", "authorize": "authorize"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PATH = f"/s/{SYSTEM}/api"


@dataclass(frozen=True)
class Answer:
    op: str
    status: int  # 0: no answer (refused, reset, timed out)
    at: float  # time.monotonic() when it came
    request_id: str | None = None  # the proxy's X-Request-ID
    jti: str | None = None  # of the access token a 2xx token answer carried
    problem: bool = False  # application/problem+json
    error: str | None = None  # what went wrong on the way, for a status 0


def _jti(access_token: str) -> str | None:
    try:
        payload = access_token.split(".")[1]
        return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                   ["jti"])
    except (IndexError, ValueError, KeyError):
        return None


class Client:
    """One person at one system, keeping every answer it gets in ``answers``."""

    def __init__(self, url: str, username: str, answers: list[Answer], *,
                 seed: int = 0, timeout: float = 10.0, address: str | None = None) -> None:
        self.url = url
        self.username = username
        self.answers = answers
        self.random = random.Random(seed)
        # each person at a desk of their own: sign-ins from one address are checked
        # one at a time (gateway.login_throttle), as a burst of guesses would be
        self.http = httpx.AsyncClient(
            base_url=url, timeout=timeout, headers={"Origin": url},
            transport=httpx.AsyncHTTPTransport(local_address=address) if address else None)
        self.loader = ""
        self.outsider = ""
        self.access = ""
        self.refresh_token = ""
        ops, weights = zip(*MIX, strict=True)
        self._ops: Sequence[str] = ops
        self._weights: Sequence[int] = weights

    async def aclose(self) -> None:
        await self.http.aclose()

    def keep(self, op: str, response: httpx.Response | None, *, error: str | None = None,
             jti: str | None = None) -> None:
        if response is None:
            self.answers.append(Answer(op, 0, time.monotonic(), error=error))
            return
        self.answers.append(Answer(
            op, response.status_code, time.monotonic(),
            request_id=response.headers.get("x-request-id"), jti=jti,
            problem=response.headers.get("content-type", "").startswith(
                "application/problem+json")))

    async def _send(self, op: str, method: str, path: str, **kw: object
                    ) -> httpx.Response | None:
        try:
            response = await self.http.request(method, path, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self.keep(op, None, error=f"{type(exc).__name__}: {exc}"[:200])
            return None
        return response

    # -- sign-in and tokens ---------------------------------------------------------

    async def token(self, op: str, data: dict[str, str], auth: tuple[str, str]) -> str | None:
        response = await self._send(op, "POST", "/oauth2/token", data=data, auth=auth)
        if response is None:
            return None
        body = response.json() if response.status_code == 200 else {}
        access = body.get("access_token")
        self.keep(op, response, jti=_jti(access) if access else None)
        if op in ("refresh", "code") and access:
            self.access, self.refresh_token = access, body.get("refresh_token", "")
        return str(access) if access else None

    async def client_tokens(self) -> bool:
        loader = await self.token("cc_token", {"grant_type": "client_credentials",
                                               "scope": "proxy catalogue:read"}, LOADER)
        outsider = await self.token("cc_token", {"grant_type": "client_credentials",
                                                 "scope": "proxy"}, OUTSIDER)
        self.loader, self.outsider = loader or self.loader, outsider or self.outsider
        return bool(loader and outsider)

    async def login(self) -> bool:
        form = await self._send("login_form", "GET", "/portal/login")
        if form is None:
            return False
        self.keep("login_form", form)
        found = _CSRF.search(form.text)
        if found is None:
            return False
        response = await self._send("login", "POST", "/portal/login", data={
            "username": self.username, "password": PASSWORD, "csrf_token": found.group(1),
            "next": "/portal"})
        if response is None:
            return False
        self.keep("login", response)
        return response.status_code == 303

    async def sign_in(self) -> bool:
        """The authorization-code flow with PKCE: an access and a refresh token."""
        if not await self.login():
            return False
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        response = await self._send("authorize", "GET", "/oauth2/authorize", params={
            "response_type": "code", "client_id": WEB[0], "redirect_uri": WEB_CALLBACK,
            "scope": "openid proxy catalogue:read", "state": "s", "nonce": "n",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        if response is None:
            return False
        self.keep("authorize", response)
        code = parse_qs(urlparse(response.headers.get("location", "")).query).get("code")
        if response.status_code != 302 or not code:
            return False
        return await self.token("code", {
            "grant_type": "authorization_code", "code": code[0],
            "redirect_uri": WEB_CALLBACK, "code_verifier": verifier}, WEB) is not None

    async def setup(self) -> bool:
        return await self.client_tokens() and await self.sign_in()

    # -- the mix --------------------------------------------------------------------

    def next_op(self) -> str:
        return self.random.choices(self._ops, self._weights)[0]

    async def step(self, op: str | None = None) -> None:
        op = op or self.next_op()
        if op == "refresh":
            if not self.refresh_token or await self.token(op, {
                    "grant_type": "refresh_token", "refresh_token": self.refresh_token},
                    WEB) is None:
                # a refresh token rotated by a request whose answer was lost (a crash,
                # an outage) is spent: sign in again, as a person would
                self.refresh_token = ""
                await self.sign_in()
            return
        if op == "cc_token":
            await self.client_tokens()
            return
        if op == "login":
            # from a browser of its own: signing in again where the tokens' session
            # lives would end that session and the tokens with it (as designed)
            self.http.cookies.clear()
            await self.login()
            return
        token, path = {
            "allowed": (self.loader, f"{_PATH}/things/{self.random.randrange(1000)}"),
            "user_call": (self.access, f"{_PATH}/items"),
            "shaped": (self.outsider, f"{_PATH}/items"),
            "denied": (self.outsider, f"{_PATH}/private"),
            "catalogue": (self.access, "/api/v1/catalogue/resources"),
        }[op]
        response = await self._send(op, "GET", path,
                                    headers={"Authorization": f"Bearer {token}"})
        if response is not None:
            self.keep(op, response)
            if op == "shaped" and response.status_code == 200 and "phone" in response.text:
                raise AssertionError("a shaped answer released a withheld item")


@dataclass
class Run:
    """The answers of one load run, and what it was."""

    clients: int
    requests: int
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0
    since_id: int = 0  # the newest audit record before it

    def statuses(self) -> Counter[tuple[str, int]]:
        return Counter((a.op, a.status) for a in self.answers)

    def unexpected(self) -> Counter[tuple[str, int]]:
        """(op, status) answers a healthy gateway does not give, with their counts."""
        return Counter((a.op, a.status) for a in self.answers
                       if HEALTHY.get(a.op) != a.status)


async def run_clients(url: str, *, clients: int, requests: int | None = None,
                      stop: asyncio.Event | None = None, seed: int = 1,
                      answers: list[Answer] | None = None, pause: float = 0.0,
                      first_user: int = 0, user_count: int = 8) -> Run:
    """``clients`` clients at once, each signed in, then ``requests`` steps of the mix
    each (or until ``stop`` is set). ``pause``: seconds between one client's steps."""
    from bench.gateway_world import users

    names = users(user_count)
    run = Run(clients, requests or 0, answers if answers is not None else [])
    started = time.monotonic()

    async def one(n: int) -> None:
        client = Client(url, names[(first_user + n) % len(names)], run.answers,
                        seed=seed * 1000 + n, address=desk(first_user + n))
        try:
            if not await client.setup():
                raise RuntimeError(f"client {n} could not sign in: {run.answers[-3:]}")
            done = 0
            while (requests is None or done < requests) and not (stop and stop.is_set()):
                await client.step()
                done += 1
                if run.answers and run.answers[-1].status == 0:
                    await asyncio.sleep(0.05)  # nobody listening: as a person would
                elif pause:
                    await asyncio.sleep(pause)
        finally:
            await client.aclose()

    await asyncio.gather(*(one(n) for n in range(clients)))
    run.seconds = time.monotonic() - started
    return run


def desk(n: int) -> str:
    """The loopback address client ``n`` calls from (127.0.0.2 to 127.0.0.251)."""
    return f"127.0.0.{2 + n % 250}"


# -- the audit log's side ----------------------------------------------------------


def newest_record_id(db_url: str) -> int:
    from audit.query import newest_id
    from gateway.storage import create_engine

    engine = create_engine(db_url)
    try:
        return newest_id(engine)
    finally:
        engine.dispose()


@dataclass
class Trail:
    """The audit records after ``since_id``: by request id, token ``jti``, event type."""

    by_request: Counter[str]
    status_of: dict[str, int | None]
    jtis: Counter[str]
    events: Counter[tuple[str, str]]  # (event type, outcome)


def read_trail(db_url: str, since_id: int) -> Trail:
    from audit.tables import records
    from gateway.storage import create_engine

    trail = Trail(Counter(), {}, Counter(), Counter())
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(records.c.event_type, records.c.outcome, records.c.request_id,
                          records.c.status, records.c.extra)
                .where(records.c.id > since_id).order_by(records.c.id))
            for row in rows:
                trail.events[(row.event_type, row.outcome)] += 1
                if row.request_id:
                    trail.by_request[row.request_id] += 1
                    trail.status_of[row.request_id] = row.status
                if row.event_type in ("token_issued", "token_refreshed") and row.extra:
                    jti = json.loads(row.extra).get("jti")
                    if jti:
                        trail.jtis[jti] += 1
    finally:
        engine.dispose()
    return trail


def unaudited_successes(answers: Iterable[Answer], trail: Trail) -> list[str]:
    """Every 2xx (and the sign-in's 303) a client got whose audit record is missing:
    a proxy answer by its request id (and the status recorded), a token by its jti, a
    sign-in by the count of successful ``login`` records."""
    problems: list[str] = []
    logins = 0
    for a in answers:
        if a.op in PROXY_OPS and 200 <= a.status < 300:
            if a.request_id is None or trail.by_request[a.request_id] != 1:
                problems.append(f"{a.op} {a.status} {a.request_id}: "
                                f"{trail.by_request[a.request_id or '']} records")
            elif trail.status_of[a.request_id] != a.status:
                problems.append(f"{a.op} {a.request_id}: recorded "
                                f"{trail.status_of[a.request_id]}, answered {a.status}")
        elif a.op in TOKEN_OPS and a.status == 200:
            if a.jti is None or trail.jtis[a.jti] != 1:
                problems.append(f"{a.op} token {a.jti}: {trail.jtis[a.jti or '']} records")
        elif a.op == "login" and a.status == 303:
            logins += 1
    if logins > trail.events[("login", "success")]:
        problems.append(f"{logins} sign-ins answered, "
                        f"{trail.events[('login', 'success')]} recorded")
    return problems


def event_of(answer: Answer) -> str:
    """The event type of the record ``answer`` is owed."""
    if answer.op in TOKEN_OPS and answer.status != 200:
        return "token_denied"
    return EVENTS[answer.op]


def record_count_problems(answers: Sequence[Answer], trail: Trail) -> list[str]:
    """A healthy run: exactly one record per audited answer, of its event type, and
    no other record (every proxy answer, refusals included, by request id)."""
    problems: list[str] = []
    owed = Counter(event_of(a) for a in answers if a.op in EVENTS and a.status)
    got = Counter[str]()
    for (event, _), n in trail.events.items():
        got[event] += n
    if owed != got:
        problems.append(f"records by event type {dict(got)}, answers owed {dict(owed)}")
    for a in answers:
        if a.op in PROXY_OPS and (a.request_id is None or trail.by_request[a.request_id] != 1):
            problems.append(f"{a.op} {a.status} {a.request_id}: "
                            f"{trail.by_request[a.request_id or '']} records")
    return problems[:20]


def sample(process_stats: Callable[[], tuple[int, int]], every: float,
           into: list[tuple[float, int, int]], stop: asyncio.Event) -> asyncio.Task[None]:
    """Sample (seconds, RSS KiB, open fds) every ``every`` seconds until ``stop``."""

    async def loop() -> None:
        started = time.monotonic()
        while not stop.is_set():
            rss, fds = process_stats()
            into.append((time.monotonic() - started, rss, fds))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    return asyncio.get_running_loop().create_task(loop())


def settled_trail(db_url: str, since_id: int, answers: Sequence[Answer],
                  within: float = 10.0, *, counts: bool = True) -> Trail:
    """The trail once every answered request's record (and, with ``counts``, no other)
    is in the tables: in journal mode (docs/audit-journal.md) the indexer loads them
    within its interval, so a reader in another process polls; in database mode the
    first read is the answer."""
    deadline = time.monotonic() + within
    while True:
        trail = read_trail(db_url, since_id)
        done = not unaudited_successes(answers, trail) and not (
            counts and record_count_problems(answers, trail))
        if done or time.monotonic() > deadline:
            return trail
        time.sleep(0.1)
