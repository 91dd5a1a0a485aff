"""The composition root: every object a running gateway is made of, built once, in
dependency order, from the settings, each handed the collaborators it uses.

    Services (settings, engine, keys, audit log, clock, live users)   gateway.services
      → policies → catalogue → workflow                                the domain
      → metrics → identity provider → authenticator → CAS server, SAML IdP   who is calling
      → proxy (admission, catalogue decider and shaper, upstream client)

``create_app`` (gateway.app) builds one :class:`Gateway` per application; the CLI
builds one when a command needs more than ``Services``. What a test or an embedding
replaces (transports, the upstream client, the proxy's limits, the page a browser
gets) goes in :class:`Seams`; nothing is rewired after it is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httpx
from starlette.requests import HTTPConnection

from catalogue import Catalogue, Workflow
from gateway.audit_shipping import lags
from gateway.break_glass.active import ActiveBreakGlass
from gateway.break_glass.desk import BreakGlassDesk
from gateway.catalogue_wiring import (
    calendar_section,
    catalogue_section,
    grants_section,
    open_catalogue,
    open_workflow,
)
from gateway.directory.client import DirectoryClient, directory_client
from gateway.idp.authenticator import Authenticator
from gateway.idp.cas.server import CasServer
from gateway.idp.oauth2.oidc import RS256_USE
from gateway.idp.oauth2.provider import Provider
from gateway.idp.saml.server import SamlIdp
from gateway.login_throttle import LoginThrottle
from gateway.metrics import Metrics
from gateway.policy_wiring import open_policies, policies_section
from gateway.proxy.admission import Decider
from gateway.proxy.break_glass import break_glass_decider
from gateway.proxy.catalogue import (
    CatalogueShaping,
    catalogue_decider,
    catalogue_shaper,
    check_shaped_body,
)
from gateway.proxy.credentials import CachingAuthenticator
from gateway.proxy.endpoint import BrowserPage, Proxy, ProxyConfig, Shaper
from gateway.proxy.upstream_http import UpstreamTransport
from gateway.services import Services
from gateway.statefile import SectionHandler, StateApplier
from policies import Policies


@dataclass(frozen=True)
class Seams:
    """The parts a test or an embedding hands in instead of the defaults."""

    proxy_config: ProxyConfig | None = None  # default: from the settings
    upstream_client: UpstreamTransport | None = None
    backchannel_transport: httpx.AsyncBaseTransport | None = None
    cas_slo_transport: httpx.AsyncBaseTransport | None = None
    saml_slo_transport: httpx.AsyncBaseTransport | None = None
    browser_page: BrowserPage | None = None  # default: problem+json for everyone
    rate_clock: Callable[[], float] = time.monotonic
    # a serving gateway follows other processes' policy changes; a command that acts
    # and ends (the CLI, a state file applied) needs no watcher thread
    watch_policies: bool = True
    # steps after the catalogue's (tests of the proxy's seams)
    deciders: tuple[Decider, ...] = ()
    shapers: tuple[Shaper, ...] = ()
    catalogue_steps: bool = True


@dataclass(eq=False)
class Gateway:
    services: Services
    policies: Policies
    catalogue: Catalogue
    workflow: Workflow
    metrics: Metrics
    provider: Provider
    authenticator: Authenticator
    cas: CasServer
    saml: SamlIdp
    throttle: LoginThrottle
    proxy: Proxy
    break_glass: BreakGlassDesk  # emergency access (gateway.break_glass)
    seams: Seams = field(default_factory=Seams)
    directory: DirectoryClient | None = None  # LDAP / AD sign-in (gateway.directory)

    def state_sections(self) -> list[SectionHandler]:
        return state_sections(self.services, self.catalogue)

    def state_applier(self) -> StateApplier:
        return state_applier(self.services, self.catalogue)

    async def aclose(self) -> None:
        """Close what the app's lifespan opened: the upstream pool, the watcher."""
        await self.proxy.aclose()
        self.policies.close()

    def close(self) -> None:
        self.policies.close()
        self.services.close()


def state_sections(services: Services, catalogue: Catalogue) -> list[SectionHandler]:
    """The state-file sections the lower packages own (policies, catalogue, grants,
    calendar), after the gateway's own; a catalogue write refreshes ``catalogue``'s
    snapshot at once."""
    return [policies_section(services), catalogue_section(services, catalogue),
            grants_section(services, catalogue), calendar_section(services)]


def state_applier(services: Services, catalogue: Catalogue | None = None) -> StateApplier:
    """What ``govgate apply`` applies a state file with; without a gateway's
    ``catalogue`` (a command that only applies) one of its own."""
    s = services
    return StateApplier(
        s.engine,
        hash_secret=s.hash_client_secret,
        verify_secret=s.verify_client_secret,
        clock=s.clock,
        on_change=s.record_admin_change,
        sections=state_sections(s, catalogue or open_catalogue(s)),
        seal=s.keys.seal,
        open_=s.keys.open,
        id_token_algs=lambda algs: s.keys.ensure_active(RS256_USE) if "RS256" in algs
        else None,
    )


def build_gateway(services: Services, seams: Seams | None = None) -> Gateway:
    """Every object of one gateway over already-opened ``services``."""
    seams = seams or Seams()
    policies = open_policies(services, watch=seams.watch_policies)
    services.on_close(policies.close)
    catalogue = open_catalogue(services)
    workflow = open_workflow(services, catalogue)
    metrics = Metrics(policies=policies, audit=services.audit,
                      shipping=lambda: lags(services))
    services.on_close(metrics.close)
    # one view of the active break-glass for the proxy, the token issuer and the desk
    active = ActiveBreakGlass(services.engine, services.clock)
    provider = Provider(services, backchannel_transport=seams.backchannel_transport,
                        break_glass=active)
    authenticator = Authenticator(services, provider)
    cas = CasServer(provider, transport=seams.cas_slo_transport)
    saml = SamlIdp(provider, transport=seams.saml_slo_transport)
    throttle = LoginThrottle.from_settings(services.settings, services.engine, services.clock)
    deciders: list[Decider] = []
    shapers: list[Shaper] = []
    if seams.catalogue_steps:
        deciders.append(catalogue_decider(catalogue))
        shapers.append(catalogue_shaper(CatalogueShaping(
            services.engine, services.keys, services.settings.issuer,
            unsigned_clients=services.settings.catalogue_unsigned_item_clients)))
    # after the catalogue's: it knows the resource a request matched
    deciders.append(break_glass_decider(active))
    proxy = Proxy(
        services,
        authenticator=CachingAuthenticator(
            authenticator, keys=services.keys, clock=lambda: services.clock().timestamp(),
            skew=services.settings.clock_skew_seconds),
        policies=policies,
        metrics=metrics,
        config=seams.proxy_config,
        deciders=[*deciders, *seams.deciders],
        shapers=[*shapers, *seams.shapers],
        body_checks=[check_shaped_body] if seams.catalogue_steps else [],
        client=seams.upstream_client,
        rate_clock=seams.rate_clock,
        browser_page=seams.browser_page,
        # the clients an old system's Basic or API key names (cached 1 s)
        static_clients=provider.server.clients,
    )
    return Gateway(services=services, policies=policies, catalogue=catalogue,
                   workflow=workflow, metrics=metrics, provider=provider,
                   authenticator=authenticator, cas=cas, saml=saml, throttle=throttle, proxy=proxy,
                   break_glass=BreakGlassDesk(services, active), seams=seams,
                   directory=directory_client(services.settings))


def gateway_of(connection: HTTPConnection) -> Gateway:
    """The gateway of the application a request (or websocket) arrived at."""
    return cast(Gateway, connection.app.state.gateway)
