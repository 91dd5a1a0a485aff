"""Path tricks against a governed catalogue route, through the real proxy, in front of a
lax upstream (``cheliang``: tests/catalogue/conftest.py's ``LaxPaths`` reads case,
``;`` parameters, trailing dots, suffixes and slashes away, and serves the raw
records of ``/api/vehicles`` under every such spelling).

tests/catalogue/test_route_spellings.py holds the case, trailing-slash, encoded-letter,
``;``-parameter and suffix spellings; tests/proxy/test_proxy.py the traversal tricks
against a path policy. Here: the rest of the spellings an upstream may read as the
route (doubled slashes, dot segments, ``%2f``, double encoding, overlong UTF-8, NUL,
backslashes, an absolute-form target), HEAD, and the method in lower case; and, on
``cheliang-win`` (an upstream that reads paths as IIS behind a form decoder does:
:class:`WindowsPaths`), full-width and look-alike separators and dots and a ``+`` for
a space. Each is shaped for the granted consumer or refused, for everyone else
refused, and never answered with the raw records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.demo.apps import create_upstream
from tests.catalogue.test_route_spellings import (
    RAW_ID,
    RAW_PHONE,
    assert_not_raw,
    vehicle_resource,
)
from tests.hostile.conftest import CatalogueWorld
from tests.hostile.test_properties import windows
from tests.proxy.conftest import Resp, Served, raw_request

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHAPED = {"plate_number", "brand", "driver_name", "driver_phone"}


class WindowsPaths:
    """ASGI middleware: the app below routes on the forwarded path as an IIS upstream
    behind a form decoder reads it (``+`` a space; best fit to the code page, ``\\``
    a separator, trailing dots and spaces dropped, dots resolved, case ignored:
    tests/hostile/test_properties.py's ``windows``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            below = scope["raw_path"].decode("ascii")[len(root):].replace("+", "%20")
            read = root + windows(below)
            scope = {**scope, "path": read, "raw_path": read.encode()}
        await self.app(scope, receive, send)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cheliang(catalogue_world: CatalogueWorld) -> AsyncIterator[CatalogueWorld]:
    """The vehicle resource on the lax system (and on ``cheliang-win``, behind
    :class:`WindowsPaths`), granted to czt, with broad ungoverned policy lines
    (tests/catalogue/test_route_spellings.py's set-up)."""
    async with Served(WindowsPaths(create_upstream("vehicles"))) as win:
        apply_vehicles(catalogue_world, f"http://127.0.0.1:{win.port}")
        yield catalogue_world


def apply_vehicles(catalogue_world: CatalogueWorld, windows_upstream: str) -> None:
    lines = [{"subject": f"dept:{dept}", "department": dept, "object": f"/s/{system}/*",
              "action": "*", "ungoverned": True, "reason": "车辆平台其他接口"}
             for dept in ("czt", "nn-jgsw") for system in ("cheliang", "cheliang-win")]
    catalogue_world.built.state_applier().apply({
        "systems": [{"code": "cheliang-win", "name": "车辆平台（Windows）",
                     "department": "jgswj", "upstream": windows_upstream}],
        "catalogue": [vehicle_resource("JG-0101", "cheliang", "公务用车信息（cheliang）"),
                      vehicle_resource("JG-0102", "cheliang-win",
                                       "公务用车信息（cheliang-win）")],
        "grants": [{"resource": code, "consumer": "czt", "items": sorted(SHAPED),
                    "purpose": "费用核算", "until": "2027-12-31"}
                   for code in ("JG-0101", "JG-0102")],
        "policies": lines,
    })
    catalogue_world.built.catalogue.invalidate()
    catalogue_world.built.proxy.systems.invalidate()
    catalogue_world.built.policies.refresh()


async def send(world: CatalogueWorld, method: str, target: str, department: str,
               client: str) -> Resp:
    token = world.token(department, client)
    return await raw_request(world.port, method, target,
                             [("Authorization", f"Bearer {token}")])


def assert_shaped_or_refused(r: Resp, what: str) -> None:
    assert_not_raw(r.body.decode("utf-8", "replace"))
    assert RAW_ID not in str(r.headers) and RAW_PHONE not in str(r.headers)
    if r.status == 200:
        first = r.json()["items"][0]
        assert set(first) == SHAPED, what
        assert first["driver_name"].endswith("*"), what
    else:
        assert r.status in (400, 403, 404, 405), (what, r.status, r.body[:200])


#: raw request targets (byte for byte) that some upstream reads as /api/vehicles
SPELLINGS = [
    # doubled and leading slashes (nginx merge_slashes, most routers)
    "/s/cheliang//api/vehicles", "/s/cheliang/api//vehicles", "/s/cheliang/api/vehicles//",
    # dot segments, plain and encoded (every server resolves them)
    "/s/cheliang/api/./vehicles", "/s/cheliang/api/x/../vehicles", "/s/cheliang/./api/vehicles",
    "/s/cheliang/api/%2e/vehicles", "/s/cheliang/api/x/%2e%2e/vehicles",
    "/s/cheliang/api/x/.%2E/vehicles", "/s/cheliang/api/vehicles/.",
    "/s/cheliang/x/..;/api/vehicles",
    # an encoded slash or backslash (Apache AllowEncodedSlashes, Tomcat, IIS)
    "/s/cheliang/api%2fvehicles", "/s/cheliang/api%2Fvehicles", "/s/cheliang/api%5cvehicles",
    "/s/cheliang/api\\vehicles", "/s/cheliang\\api\\vehicles",
    # double encoding (IIS decodes twice): %2576 is %76, v
    "/s/cheliang/api/%2576ehicles", "/s/cheliang/api%252fvehicles",
    # overlong UTF-8 for "/" and "s" (old IIS, some Java decoders)
    "/s/cheliang/api%c0%afvehicles", "/s/cheliang/api/vehicle%c1%b3",
    "/s/cheliang/api%e0%80%afvehicles",
    # NUL and other control characters (C string ends, PHP, Windows file APIs)
    "/s/cheliang/api/vehicles%00", "/s/cheliang/api/vehicles%00.json",
    "/s/cheliang/api/vehicles%0a", "/s/cheliang/api/vehicles%09",
    # encoded letters, case and a suffix at once
    "/s/cheliang/%41PI/V%45HICLES/", "/s/cheliang/Api/Vehicles.JSON",
    "/s/cheliang/api/vehicles;jsessionid=1", "/s/cheliang/api/vehicles%3b",
]


@pytest.mark.parametrize("target", SPELLINGS)
async def test_every_spelling_is_shaped_or_refused(cheliang: CatalogueWorld,
                                                   target: str) -> None:
    for department, client in (("czt", "finance-system"), ("nn-jgsw", "nn-client")):
        r = await send(cheliang, "GET", target, department, client)
        assert_shaped_or_refused(r, f"{department} {target}")
        if department == "nn-jgsw":
            assert r.status != 200, target


#: targets a Windows upstream behind a form decoder reads as /api/vehicles
WINDOWS_SPELLINGS = [
    "/s/cheliang-win/api%EF%BC%8Fvehicles", "/s/cheliang-win/api%E2%88%95vehicles",
    "/s/cheliang-win/api%C2%A5vehicles", "/s/cheliang-win/api/x/%EF%BC%8E%EF%BC%8E/vehicles",
    "/s/cheliang-win/api/x/%E2%80%A5/vehicles", "/s/cheliang-win/api/x/.../vehicles",
    "/s/cheliang-win/api/x/..%20/vehicles", "/s/cheliang-win/api/vehicles%EF%BC%8E",
    "/s/cheliang-win/api/vehicles+", "/s/cheliang-win/api+/vehicles",
    "/s/cheliang-win/api/vehicles%2B", "/s/cheliang-win/%EF%BD%81pi/vehicles%E3%80%80",
]


async def test_the_windows_upstream_serves_raw_records_under_its_own_reading(
        cheliang: CatalogueWorld) -> None:
    r = await send(cheliang, "GET", "/s/cheliang-win/API/Vehicles", "jgswj", "office-web")
    assert r.status == 200 and RAW_ID in r.body.decode()


@pytest.mark.parametrize("target", WINDOWS_SPELLINGS)
async def test_compatibility_forms_and_plus_signs_are_shaped_or_refused(
        cheliang: CatalogueWorld, target: str) -> None:
    """Full-width and look-alike separators and dots (Windows' best fit), and a ``+``
    a form decoder reads as a space."""
    for department, client in (("czt", "finance-system"), ("nn-jgsw", "nn-client")):
        r = await send(cheliang, "GET", target, department, client)
        assert_shaped_or_refused(r, f"{department} {target}")
        if department == "nn-jgsw":
            assert r.status != 200, target


async def test_head_on_a_governed_route(cheliang: CatalogueWorld) -> None:
    """HEAD is GET without the body: a caller who gets the records shaped learns nothing
    of the raw representation from the headers either (not its length)."""
    raw = await send(cheliang, "GET", "/s/cheliang/api/vehicles", "jgswj", "office-web")
    raw_length = raw.headers["content-length"]
    assert RAW_ID in raw.body.decode()
    for target in ("/s/cheliang/api/vehicles", "/s/cheliang/API/Vehicles/"):
        shaped = await send(cheliang, "HEAD", target, "czt", "finance-system")
        assert shaped.status == 200 and shaped.body == b""
        assert shaped.headers.get("content-length") != raw_length
        assert not {"etag", "last-modified", "content-md5", "digest"} & set(shaped.headers)
        other = await send(cheliang, "HEAD", target, "nn-jgsw", "nn-client")
        assert other.status == 403 and other.body == b""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def h11_port(cheliang: CatalogueWorld) -> AsyncIterator[int]:
    async with Served(create_app(cheliang.built), http="h11") as served:
        yield served.port


async def test_a_method_in_another_case(cheliang: CatalogueWorld, h11_port: int) -> None:
    """Methods are case-sensitive (RFC 9110 section 9.1), many upstreams are not: the
    production server (httptools) refuses ``get``; h11 passes it on, and then it is
    decided as GET and shaped, or refused."""
    for method in ("get", "Get", "head"):
        for department, client in (("czt", "finance-system"), ("nn-jgsw", "nn-client")):
            r = await send(cheliang, method, "/s/cheliang/api/vehicles", department, client)
            assert r.status == 400, (method, r.status)
            token = cheliang.token(department, client)
            r = await raw_request(h11_port, method, "/s/cheliang/api/vehicles",
                                  [("Authorization", f"Bearer {token}")])
            assert_shaped_or_refused(r, f"h11 {method} {department}")
            if department == "nn-jgsw":
                assert r.status != 200


async def test_an_absolute_form_target(cheliang: CatalogueWorld) -> None:
    """RFC 9112 section 3.2.2: a server must accept the absolute form; its path is the
    path, whatever the authority says."""
    for target in (f"http://127.0.0.1:{cheliang.port}/s/cheliang/API/Vehicles",
                   "http://evil.example/s/cheliang/api/vehicles",
                   f"http://127.0.0.1:{cheliang.port}/s/cheliang/api//vehicles"):
        for department, client in (("czt", "finance-system"), ("nn-jgsw", "nn-client")):
            r = await send(cheliang, "GET", target, department, client)
            assert_shaped_or_refused(r, f"{target} {department}")
            if department == "nn-jgsw":
                assert r.status != 200
