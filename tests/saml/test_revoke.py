"""``govgate session revoke`` (a real subprocess, as an operator runs it) ends a user's
sessions and tells every system that signed the user in through them: the SAML SP
receives a signed LogoutRequest on its SOAP endpoint, the CAS service a CAS logout
request carrying the ticket it validated; each notice audited."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.oauth2.helpers import audit_events
from tests.saml.conftest import World
from tests.saml.test_interop_pysaml2 import to_sp
from tests.wiring import apply_state

pytestmark = [pytest.mark.slow]


def test_session_revoke_logs_the_user_out_of_saml_and_cas(world: World) -> None:
    services, sp = world.services, world.sp
    service = f"{sp.base}/cas/"
    apply_state(services, {"systems": [{
        "code": "cas-app", "name": "CAS 系统", "department": "jgswj",
        "upstream": sp.base, "cas_services": [service]}]})
    with httpx.Client(timeout=10) as browser:
        r = browser.get(f"{sp.base}/login")
        login = to_sp(browser, world, browser.get(r.headers["location"]))
        r = browser.get(f"{world.gateway}/cas/login", params={"service": service})
        ticket = parse_qs(urlsplit(r.headers["location"]).query)["ticket"][0]
        valid = browser.get(f"{world.gateway}/cas/p3/serviceValidate",
                            params={"service": service, "ticket": ticket})
        assert "<cas:user>zhang.san</cas:user>" in valid.text

        settings = services.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
        env.update(GOVGATE_HOME=str(settings.home), GOVGATE_DATABASE_URL=settings.database_url,
                   GOVGATE_ISSUER=world.gateway, LANG="C.UTF-8")
        done = subprocess.run([sys.executable, "-m", "gateway.cli", "session", "revoke",
                               "--user", "zhang.san"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        # the command returns once the notices are sent
        assert sp.soap_logouts[-1:] == [login["name_id"]]
        assert len(sp.cas_logouts) == 1 and f"<samlp:SessionIndex>{ticket}<" in sp.cas_logouts[0]
        # and the browser's session is over
        r = browser.get(f"{world.gateway}/cas/login", params={"service": service})
        assert r.headers["location"].startswith("/portal/login")
    kinds = {(e["event_type"], e["outcome"]) for e in audit_events(services)}
    assert {("admin_change", "success"), ("saml_logout_slo", "success"),
            ("cas_logout_slo", "success")} <= kinds
