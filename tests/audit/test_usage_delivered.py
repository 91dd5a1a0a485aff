"""Real use (实绩) counts only what was delivered, in every view of it.

A real department system (a uvicorn server) answers a granted resource 200, 404 and
500 through the real gateway (another uvicorn server): only the 200s are deliveries
for the stewards' grant list (API and page), the usage figures (``/api/v1/audit/stats``,
``govgate audit stats``) and the real-use overview (``/api/v1/stats/overview``,
``/portal/stats``); a forward-auth allow is let through, its answer never seen
(``unconfirmed``). The rollup's class is written on both paths (the writer's and the
journal indexer's), and migration 0025 back-fills it from the records."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audit import AuditLog
from audit.indexer import Indexer
from audit.journal import Journal
from audit.stats import usage_stats
from audit.tables import records
from gateway.app import create_app
from gateway.cli.main import cli
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from gateway.storage import _alembic_config, create_engine, write_transaction
from gateway.web.http_server import HeadLimits
from tests.audit.conftest import rec
from tests.oauth2.helpers import close_services, make_services
from tests.proxy.conftest import Served
from tests.tokens import access_token
from tests.wiring import apply_state, parts

PLATES = {"G1024": 200, "G2048": 200, "NOPE": 404, "BOOM": 500}
KINDS = ["delivered", "not_delivered", "unconfirmed"]


def department_system() -> Starlette:
    async def vehicle(request: Request) -> Response:
        plate = request.path_params["plate"]
        status = PLATES.get(plate, 404)
        if status != 200:
            return JSONResponse({"error": "no such vehicle" if status == 404 else "db down"},
                                status_code=status)
        return JSONResponse({"items": [{"plate_number": plate, "brand": "红旗"}]})
    return Starlette(routes=[Route("/api/vehicles/{plate}", vehicle)])


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    services = make_services(settings)
    async with Served(department_system()) as upstream:
        apply_state(services, {
            "systems": [{"code": "vehicles", "name": "公务用车管理系统", "department": "jgswj",
                         "upstream": f"http://127.0.0.1:{upstream.port}"}],
            "catalogue": [{
                "code": "JG-0009", "name": "单车信息", "provider": "jgswj",
                "system": "vehicles", "share_type": "conditional", "conditions": "核验",
                "route": {"method": "GET", "path": "/api/vehicles/{plate}",
                          "records": "items"},
                "items": [{"name": "plate_number", "title": "车牌号"},
                          {"name": "brand", "title": "品牌"}]}],
            "grants": [{"resource": "JG-0009", "consumer": "czt",
                        "items": ["plate_number", "brand"], "purpose": "核验",
                        "until": "2099-01-01"}]})
        built = parts(services)
        limits = HeadLimits.from_settings(services.settings)
        async with Served(create_app(built), limits=limits) as gateway, httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as http:
            yield services, http
    close_services(services)


def bearer(services: Services, department: str, roles: tuple[str, ...] = ("staff",),
           sub: str | None = None, client: str = "finance-system") -> dict[str, str]:
    token = access_token(services, sub=sub, department=department, roles=roles,
                         client_id=client)
    return {"Authorization": f"Bearer {token}"}


def session(services: Services, username: str) -> dict[str, str]:
    token, _ = parts(services).provider.store.create_session(
        username, "active", amr="pwd otp", absolute_seconds=3600)
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


async def test_every_view_counts_only_what_the_system_delivered(
        served: tuple[Services, httpx.AsyncClient], env: dict[str, str]) -> None:
    services, http = served
    czt = bearer(services, "czt")
    for plate in ("G1024", "NOPE", "BOOM", "G2048", "NOPE"):
        r = await http.get(f"/s/vehicles/api/vehicles/{plate}", headers=czt)
        assert r.status_code == PLATES[plate], r.text
    # the provider's own system behind a front proxy: let through, the answer unseen
    verify = await http.get("/auth/verify", headers={
        **bearer(services, "jgswj", client="office-web"),
        "X-Original-URI": "/s/vehicles/api/vehicles/G1024", "X-Original-Method": "GET"})
    assert verify.status_code == 200, verify.text
    # a system reached only through a front proxy: its answers are never seen
    behind = await http.get("/auth/verify", headers={
        **bearer(services, "jgswj", client="office-web"),
        "X-Original-URI": "/s/offices/api/rooms", "X-Original-Method": "GET"})
    assert behind.status_code == 200, behind.text
    with services.engine.connect() as conn:
        answered = sorted((r.event_type, r.outcome, r.status) for r in conn.execute(
            sa.select(records).where(records.c.resource == "JG-0009")))
    assert answered == [("forward_auth", "allow", 200), *sorted(
        ("proxy_request", "allow", s) for s in (200, 200, 404, 404, 500))]

    # the stewards' grant list, API and page
    steward = bearer(services, "jgswj", roles=("staff", "data_steward"), sub="zhang.san")
    r = await http.get("/api/v1/catalogue/grants/provided", headers=steward)
    assert r.status_code == 200, r.text
    (grant,) = [g for g in r.json()["grants"] if g["resource"] == "JG-0009"]
    use = grant["usage"]
    assert (use["calls"], use["not_delivered"], use["unconfirmed"]) == (2, 3, 0), use
    with services.engine.connect() as conn:
        last_200 = conn.execute(sa.select(sa.func.max(records.c.ts)).where(
            records.c.resource == "JG-0009", records.c.status == 200,
            records.c.event_type == "proxy_request")).scalar_one()
    assert datetime.fromisoformat(use["last_used"]) == datetime.fromtimestamp(
        last_200 / 1000, UTC)
    for lang, words in (("zh", "另有 3 次系统报错，未送达"),
                        ("en", "3 more answered with an error, nothing delivered")):
        page = await http.get("/portal/catalogue/grants", params={"lang": lang},
                              headers=session(services, "zhang.san"))
        assert page.status_code == 200, page.text
        row = re.search(rf'<tr id="grant-{grant["id"]}".*?</tr>', page.text, re.S)
        assert row, page.text
        cell = re.search(r'<td class="num calls">(.*?)</td>', row.group(0), re.S)
        assert cell and re.search(r'<span class="delivered">2</span>', cell.group(1))
        assert words in cell.group(1)

    # the usage figures: API and CLI
    auditor = bearer(services, "platform", roles=("auditor",), sub="auditor")
    r = await http.get("/api/v1/audit/stats", headers=auditor,
                       params={"by": "kind", "resource": "JG-0009"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"kind": "delivered", "count": 2},
                                {"kind": "not_delivered", "count": 3},
                                {"kind": "unconfirmed", "count": 1}]
    out = CliRunner().invoke(cli, ["audit", "stats", "--by", "department,status_class,kind",
                                   "--resource", "JG-0009", "--format", "jsonl"], env=env)
    assert out.exit_code == 0, out.output
    assert [json.loads(line) for line in out.output.splitlines()] == [
        {"department": "czt", "status_class": "2xx", "kind": "delivered", "count": 2},
        {"department": "czt", "status_class": "4xx", "kind": "not_delivered", "count": 2},
        {"department": "czt", "status_class": "5xx", "kind": "not_delivered", "count": 1},
        {"department": "jgswj", "status_class": "2xx", "kind": "unconfirmed", "count": 1}]

    # real use (实绩): the overview, API and page
    stats = bearer(services, "platform", roles=("auditor",), sub="auditor")
    r = await http.get("/api/v1/stats/overview", params={"days": "30"}, headers=stats)
    assert r.status_code == 200, r.text
    (used,) = [x for x in r.json()["resources"] if x["code"] == "JG-0009"]
    assert used["total"]["calls"] == 2 and used["total"]["departments"] == 1
    (rare,) = [g for g in r.json()["grants"] if g["resource"] == "JG-0009"]
    assert rare["calls"] == 2
    (offices,) = [x for x in r.json()["systems"] if x["code"] == "offices"]
    assert offices["total"]["calls"] == 0  # let through, not known delivered
    idle = {(x["kind"], x["code"]) for x in r.json()["idle"]}
    assert ("system", "assets") in idle and ("system", "offices") not in idle  # nor idle
    services.org.change_password("auditor", "Brand-New-Passw0rd-2026!")  # past its first change
    page = await http.get("/portal/stats", params={"lang": "zh"},
                          headers=session(services, "auditor"))
    assert page.status_code == 200, page.text
    section = re.search(r'data-code="JG-0009">(.*?)</section>', page.text, re.S)
    assert section
    chart = re.search(r'class="chart chart-calls"(.*?)</svg>', section.group(1), re.S)
    assert chart and sum(int(v) for v in re.findall(r'data-value="(\d+)"', chart.group(1))) == 2


def test_the_journal_indexer_writes_the_class_too(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, tmp_path: Path) -> None:
    """Journal mode: the rows the writer offers and those read back from the segment
    after a restart (the two ways the indexer loads) both know the answer's class."""
    journal = Journal(tmp_path / "journal")
    log = make_log(journal=journal)
    indexer = Indexer(audit_engine, journal, own=log.journal_position,
                      on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    log.append_many_sync([rec(0, status=200), rec(1, status=404)])
    assert indexer.run_once() == 2  # from memory
    log.append_many_sync([rec(2, status=500), rec(3, status=304),
                          rec(4, event_type="forward_auth", status=200)])
    fresh = Indexer(audit_engine, journal, own=log.journal_position)  # nothing offered
    assert fresh.run_once() == 3  # read back from the segment
    assert usage_stats(audit_engine, group_by=["kind"]) == [
        {"kind": "delivered", "count": 2}, {"kind": "not_delivered", "count": 2},
        {"kind": "unconfirmed", "count": 1}]


# -- migration 0025: the class back-filled from the records ------------------------------

DAY_MS = 86_400_000
TS = 20_000 * DAY_MS + 3_600_000  # 2024-10-04 01:00 UTC
OLD_KEYS = ("day", "system", "resource", "department", "event_type", "outcome")


def _to(engine: sa.Engine, target: str, down: bool = False) -> None:
    with write_transaction(engine) as conn:
        (command.downgrade if down else command.upgrade)(_alembic_config(conn), target)


def _old_usage(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text(
            f"SELECT {', '.join(OLD_KEYS)}, SUM(count) FROM audit_usage_daily "  # noqa: S608
            f"GROUP BY {', '.join(OLD_KEYS)}")))


@pytest.fixture
def old_database(empty_db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(empty_db_url)
    try:
        _to(engine, "0008_audit_partial_indexes")
        yield engine
    finally:
        engine.dispose()


def test_migration_splits_old_rows_by_what_the_records_tell(old_database: sa.Engine) -> None:
    engine = old_database
    day = "2024-10-04"
    # the records still held: czt's calls answered 200, 200, 404, 500 and a refusal;
    # the provider's forward-auth allow. The rollup counted 7 allows of czt: three of
    # them purged behind an archive since (their class is not known)
    statuses = [("proxy_request", "allow", "czt", 200), ("proxy_request", "allow", "czt", 200),
                ("proxy_request", "allow", "czt", 404), ("proxy_request", "allow", "czt", 500),
                ("proxy_request", "deny", "czt", 403),
                ("forward_auth", "allow", "jgswj", 200)]
    with engine.begin() as conn:
        conn.execute(sa.insert(records), [
            {"chain_id": "c1", "seq": i + 1, "prev_hash": "0", "hash": str(i), "ckpt": 0,
             "ts": TS + i, "event_type": ev, "outcome": out, "department": dept,
             "system": "vehicles", "resource": "JG-0009", "status": status, "items": "[]",
             "extra": "{}"} for i, (ev, out, dept, status) in enumerate(statuses)])
        conn.execute(sa.text(
            f"INSERT INTO audit_usage_daily ({', '.join(OLD_KEYS)}, count) VALUES "  # noqa: S608
            f"(:day, 'vehicles', 'JG-0009', :dept, :ev, :out, :n)"), [
            {"day": day, "dept": "czt", "ev": "proxy_request", "out": "allow", "n": 7},
            {"day": day, "dept": "czt", "ev": "proxy_request", "out": "deny", "n": 1},
            {"day": day, "dept": "jgswj", "ev": "forward_auth", "out": "allow", "n": 1},
            {"day": day, "dept": "czt", "ev": "application_submitted", "out": "success",
             "n": 2}])
    before = _old_usage(engine)
    _to(engine, "0025_audit_usage_status")
    assert usage_stats(engine, group_by=["department", "status_class", "kind"]) == [
        {"department": "czt", "status_class": "", "kind": "unconfirmed", "count": 3},
        {"department": "czt", "status_class": "", "kind": "other", "count": 2},
        {"department": "czt", "status_class": "2xx", "kind": "delivered", "count": 2},
        {"department": "czt", "status_class": "4xx", "kind": "not_delivered", "count": 1},
        {"department": "czt", "status_class": "4xx", "kind": "refused", "count": 1},
        {"department": "czt", "status_class": "5xx", "kind": "not_delivered", "count": 1},
        {"department": "jgswj", "status_class": "", "kind": "unconfirmed", "count": 1}]
    assert _old_usage(engine) == before  # nothing lost, nothing counted twice
    # the writer's next call of the day adds to the right row
    log = AuditLog(engine, writer_id="after", clock=lambda: (TS + 99) / 1000)
    log.append_sync(rec(9, status=200, resource="JG-0009"))
    log.close_sync()
    assert {"kind": "delivered", "count": 3} in usage_stats(engine, group_by=["kind"])
    _to(engine, "0008_audit_partial_indexes", down=True)
    after = _old_usage(engine)
    assert [r for r in after if r[4] != "proxy_request" or r[5] != "allow"] == [
        r for r in before if r[4] != "proxy_request" or r[5] != "allow"]
    assert [r[-1] for r in after if r[4] == "proxy_request" and r[5] == "allow"] == [8]
