"""``govgate serve`` and ``govgate demo``."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import click
import uvicorn

from gateway.cli import demo_directory, demo_guide
from gateway.cli.context import CliContext, CommandError, pass_cli
from gateway.cli.delegation_cmd import demo_delegations
from gateway.cli.demo_settings import write_demo_settings
from gateway.cli.workers import Supervisor, metrics_directory
from gateway.i18n import cli_lang, ljust
from gateway.passwords import generate_password
from gateway.root import state_applier
from gateway.services import open_services, os_actor
from gateway.settings import load_settings
from gateway.setup import initialise
from gateway.statefile import load_file
from gateway.web.http_server import HeadLimits, ServerConfig

BEIJING = timezone(timedelta(hours=8))

DEMO_MARKER = ".govgate-demo"
DEMO_PASSWORD_NOTE = "Demo-Passw0rd-2026"  # noqa: S105 - the published demo password
# a TCP port to listen on: 0 would bind a random port the banner and issuer cannot name
PORT = click.IntRange(1, 65535)
# an idle keep-alive connection is closed after this long (uvicorn's default, stated)
KEEP_ALIVE_SECONDS = 5


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us, so one Ctrl-C stops all."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(app: Any, host: str, port: int, limits: HeadLimits,
                    tls: tuple[str, str] | None = None, **kwargs: Any) -> uvicorn.Config:
    # gateway.web.http_server's protocol: one head size limit, a header read timeout and
    # no trailer fields among the headers, on every route
    return ServerConfig(
        app,
        limits=limits,
        host=host,
        port=port,
        # the gateway sets X-Forwarded-* itself; never let a client's header replace
        # the peer address it audits and rate-limits by
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **({"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}),
        **kwargs,
    )


def _tls(settings: Any) -> tuple[str, str] | None:
    return (settings.tls_cert, settings.tls_key) if settings.tls_cert else None


async def _run_servers(
    servers: list[_Server], on_started: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM; call ``on_started`` once every server listens."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for s in servers:
            s.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        serving = asyncio.gather(*(s.serve() for s in servers))
        if on_started is not None:
            # announce only when every socket accepts, so whoever reads the banner can
            # connect at once; a server that fails to start ends ``serving`` instead
            while not serving.done() and not all(s.started for s in servers):
                await asyncio.sleep(0.02)
            if not serving.done():
                on_started()
        await serving
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (as ``uvicorn.run`` would), else on
    asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _taken(ports: list[int]) -> list[int]:
    """The ports of ``ports`` that 127.0.0.1 cannot listen on now (as uvicorn binds:
    SO_REUSEADDR, so a port in TIME_WAIT is free)."""
    out = []
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                s.listen()
            except OSError:
                out.append(port)
    return out


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=PORT, default=None, help="Port, 1-65535 (default 8080).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (PostgreSQL only); each verifies tokens locally and "
                   "appends its own audit chain (use one per core).")
@click.option("--tls-cert", default=None, metavar="FILE",
              help="Serve HTTPS with this certificate chain (PEM; setting tls_cert).")
@click.option("--tls-key", default=None, metavar="FILE",
              help="Its private key (PEM; setting tls_key).")
@pass_cli
def serve(cli_ctx: CliContext, host: str | None, port: int | None, workers: int,
          tls_cert: str | None, tls_key: str | None) -> None:
    """Run the gateway (identity provider, proxy, APIs)."""
    # the server (every page and endpoint) only for the commands that serve it:
    # the other commands start in half the time
    from gateway.app import create_app


    if host:
        cli_ctx.overrides["host"] = host
    if port is not None:
        cli_ctx.overrides["port"] = port
    if tls_cert is not None:
        cli_ctx.overrides["tls_cert"] = tls_cert
    if tls_key is not None:
        cli_ctx.overrides["tls_key"] = tls_key

    settings = cli_ctx.settings
    # open once here too: a bad setting, database or master key stops start-up with
    # one line before any worker is forked
    services = open_services(settings, writer="gateway")
    cli_ctx._services = services
    listening = "\n".join((
        cli_ctx.msg("serve.listening", host=settings.host, port=settings.port),
        cli_ctx.msg("serve.issuer", issuer=settings.issuer)))
    if workers == 1:
        app = create_app(services, freeze_heap=True)
        server = _Server(_uvicorn_config(app, settings.host, settings.port,
                                         HeadLimits.from_settings(settings),
                                         _tls(settings)))
        _run_loop(_run_servers([server], on_started=lambda: click.echo(listening)))
        return
    if settings.db_url.startswith("sqlite"):
        # measured (bench/bench_proxy.py, case d2): 2 workers on SQLite gave the same
        # requests/s as one and a p99 of 0.6 s, from the busy handler's back-off
        raise CommandError(cli_ctx.msg("serve.sqlite_workers"))
    services.close()
    cli_ctx._services = None
    # the workers rebuild the same settings from the environment they inherit, and
    # share their metrics through this directory
    os.environ.update(_settings_environment(cli_ctx.overrides))
    metrics = metrics_directory(settings.home, settings.port)
    # uvicorn.run's multi-process path, with the gateway's server config (its protocol
    # and limits travel to the workers with the pickled config)
    config = _uvicorn_config("gateway.app:app_from_environment", settings.host,
                             settings.port, HeadLimits.from_settings(settings),
                             _tls(settings), factory=True, workers=workers)
    sockets = [config.bind_socket()]
    click.echo(listening)
    Supervisor(config, sockets, metrics).run()


def _settings_environment(overrides: dict[str, Any]) -> dict[str, str]:
    """The CLI's overrides as GOVGATE_* variables, for worker processes."""
    return {f"GOVGATE_{key.upper()}": str(value) for key, value in overrides.items()}


def _demo_sso(doc: dict[str, Any], moved: dict[str, str], *, gateway: str) -> dict[str, Any]:
    """System code → the OpenID Connect client its demo app signs users in with: a
    client whose redirect URI is ``/callback`` on that system's upstream. The client's
    addresses follow the upstream when ``--free-ports`` moves it."""
    from gateway.demo.sso import SsoClient


    by_upstream = {s["upstream"]: s["code"] for s in doc.get("systems", [])}
    found: dict[str, Any] = {}
    for client in doc.get("clients", []):
        for key in ("redirect_uris", "post_logout_redirect_uris"):
            client[key] = [_moved(uri, moved) for uri in client.get(key) or []] or None
            if client[key] is None:
                del client[key]
        for uri in client.get("redirect_uris") or []:
            base, _, tail = uri.rpartition("/")
            if tail == "callback" and base in by_upstream and client.get("secret"):
                found[by_upstream[base]] = SsoClient(gateway, client["client_id"],
                                                     client["secret"], uri)
    return found


def _demo_cas(doc: dict[str, Any], moved: dict[str, str], *, gateway: str) -> dict[str, Any]:
    """System code → the CAS client its demo app signs users in with: the system's
    first ``cas_services`` URL (moved with the upstream under ``--free-ports``)."""
    from gateway.demo.cas import CasClient


    found: dict[str, Any] = {}
    for system in doc.get("systems", []):
        if system.get("cas_services"):
            system["cas_services"] = [_moved(u, moved) for u in system["cas_services"]]
            found[system["code"]] = CasClient(gateway, system["cas_services"][0])
    return found


def _moved(uri: str, moved: dict[str, str]) -> str:
    for old, new in moved.items():
        if uri == old or uri.startswith(old + "/"):
            return new + uri[len(old):]
    return uri


@click.command()
@click.option(
    "--home",
    "demo_home",
    type=click.Path(file_okay=False),
    default=".govgate-demo",
    show_default=True,
    help="Fresh state directory for the demo (wiped at start).",
)
@click.option("--port", type=PORT, default=8080, show_default=True,
              help="Gateway port, 1-65535.")
@click.option(
    "--free-ports", is_flag=True, help="Pick free ports for the gateway and the upstream systems."
)
@pass_cli
def demo(cli_ctx: CliContext, demo_home: str, port: int, free_ports: bool) -> None:
    """Start the gateway with demo departments, users and three upstream systems."""
    from gateway.app import create_app  # as in serve: only where it is served
    from gateway.demo import DEMO_DELEGATIONS, DEMO_STATE
    from gateway.demo.apps import create_upstream
    from gateway.demo.traffic import make_traffic


    home = Path(demo_home)
    if home.exists() and not (home / DEMO_MARKER).exists():
        raise CommandError(cli_ctx.msg("demo.not_a_demo_home", home=home))
    if not free_ports:
        # before the wipe: a second `make demo` beside a running one deleted its home
        # under it, then failed in a page of tracebacks from the servers' bind
        fixed = [int(s["upstream"].rsplit(":", 1)[1])
                 for s in load_file(DEMO_STATE).get("systems", [])]
        if taken := _taken([port, *fixed]):
            raise CommandError(cli_ctx.msg("demo.ports_taken", home=home,
                                           ports=", ".join(map(str, taken))))
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / DEMO_MARKER).write_text("govgate demo state; wiped by the next `govgate demo`\n")

    if free_ports:
        port = _free_port()
    directory, directory_line = demo_directory.start(cli_ctx, home, region="gx",
                                                     password=DEMO_PASSWORD_NOTE)
    if directory is not None:
        atexit.register(directory.stop)  # whichever way the demo ends
    write_demo_settings(home, port, directory.settings if directory else None)

    settings = load_settings(
        {k: v for k, v in os.environ.items() if k != "GOVGATE_DATABASE_URL"},
        {"home": str(home), "port": port, "issuer": f"http://127.0.0.1:{port}", "database_url": ""},
    )
    admins = initialise(settings, password_factory=generate_password)
    doc = load_file(DEMO_STATE)
    upstream_ports: dict[str, int] = {}
    moved: dict[str, str] = {}  # an upstream's address in the file → where it runs
    for system in doc.get("systems", []):
        upstream_port = _free_port() if free_ports else int(system["upstream"].rsplit(":", 1)[1])
        moved[system["upstream"]] = f"http://127.0.0.1:{upstream_port}"
        system["upstream"] = moved[system["upstream"]]
        upstream_ports[system["code"]] = upstream_port
    sso = _demo_sso(doc, moved, gateway=f"http://127.0.0.1:{port}")
    cas = _demo_cas(doc, moved, gateway=f"http://127.0.0.1:{port}")
    services = open_services(settings, writer="gateway", actor=os_actor())
    cli_ctx._services = services
    state_applier(services).apply(doc)
    if directory is not None:
        directory_line = demo_directory.sync_people(cli_ctx, services, directory)
    delegated = demo_delegations(cli_ctx.gateway, DEMO_DELEGATIONS)

    limits = HeadLimits.from_settings(settings)
    servers = [_Server(_uvicorn_config(create_app(services, freeze_heap=True), "127.0.0.1",
                                      port, limits))]
    for code, upstream_port in upstream_ports.items():
        app = create_upstream(code, sso.get(code), cas.get(code))
        servers.append(_Server(_uvicorn_config(app, "127.0.0.1", upstream_port, limits)))

    lang = cli_lang()
    lines = [
        cli_ctx.msg("demo.ready"),
        f"  {ljust(cli_ctx.msg('demo.gateway'), 9)} http://127.0.0.1:{port}/",
    ]
    for system in doc.get("systems", []):
        lines.append(f"  {system['code']:<9} {system['name']}  {system['upstream']}")
    lines += demo_guide.account_lines(doc, admins, password=DEMO_PASSWORD_NOTE, lang=lang)
    lines += [cli_ctx.msg("demo.delegation", id=d.id, delegate=d.delegate, delegator=d.delegator,
                          systems=", ".join(d.systems), approver=d.decided_by or "",
                          # Beijing time, as the portal's pages show it
                          until=f"{d.ends_at.astimezone(BEIJING):%Y-%m-%d %H:%M} (UTC+8)")
              for d in delegated]
    lines += demo_guide.try_lines(
        doc, gateway=f"http://127.0.0.1:{port}", home=demo_home, lang=lang,
        sso={code: f"http://127.0.0.1:{upstream_ports[code]}" for code in sso},
        cas={code: f"http://127.0.0.1:{upstream_ports[code]}" for code in cas})
    lines.append("  " + directory_line)
    lines.append(cli_ctx.msg("demo.stop"))

    def announce() -> None:
        click.echo("\n".join(lines))
        sys.stdout.flush()

    started: list[asyncio.Task[None]] = []

    async def traffic_then_announce() -> None:
        # real calls through the gateway first, so the real-use pages have data

        gateway = f"http://127.0.0.1:{port}"
        try:
            made = await make_traffic(gateway, load_file(DEMO_STATE))
            # journal mode: its records in the tables before the pages are announced
            await asyncio.to_thread(services.settle_audit)
            lines.insert(-1, cli_ctx.msg("demo.traffic", calls=made.calls,
                                         refused=made.refused, url=gateway))
        except Exception as exc:  # the demo serves without its traffic
            lines.insert(-1, cli_ctx.msg("demo.traffic_failed", reason=str(exc)[:200]))
        announce()

    _run_loop(_run_servers(servers, on_started=lambda: started.append(
        asyncio.get_running_loop().create_task(traffic_then_announce()))))
    if directory is not None:
        directory.stop()
    click.echo(cli_ctx.msg("demo.stopped"))
