"""What a CAS service receives: the attributes its system is registered for
(``cas_attributes``), read at validation; with nothing listed, the username only.
Through the real endpoints: portal sign-in, ``/cas/login``, ``/cas/p3/serviceValidate``;
the registration through the state file as ``govgate state apply`` reads it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.errors import StateFileError
from gateway.services import Services
from tests.cas.conftest import CAS_SYSTEM, register_cas
from tests.cas.test_flows import NS, cas_login, p3, sign_in_from, ticket_of
from tests.wiring import apply_state

FIXED = ("authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin")


def released(client: TestClient, ticket: str) -> dict[str, list[str]]:
    """The user and the attributes of a p3 validation, the protocol's own left out."""
    success = p3(client, ticket).find(f"{NS}authenticationSuccess")
    assert success is not None
    out: dict[str, list[str]] = {"user": [success.find(f"{NS}user").text]}
    for e in success.find(f"{NS}attributes"):
        name = e.tag.removeprefix(NS)
        if name not in FIXED:
            out.setdefault(name, []).append(e.text)
    return out


def registered(idp: Services, **changes: Any) -> None:
    register_cas(idp, {k: v for k, v in (CAS_SYSTEM | changes).items() if v is not None})


def test_a_service_with_nothing_listed_gets_the_username_only(client: TestClient,
                                                              idp: Services) -> None:
    registered(idp, cas_attributes=None)
    ticket = ticket_of(sign_in_from(client, cas_login(client)))
    assert released(client, ticket) == {"user": ["zhang.san"]}


def test_a_service_gets_only_what_is_listed_as_registered_at_validation(
        client: TestClient, idp: Services) -> None:
    registered(idp, cas_attributes=["roles", "name"])
    ticket = ticket_of(sign_in_from(client, cas_login(client)))
    assert released(client, ticket) == {"user": ["zhang.san"], "name": ["张三"],
                                        "roles": ["data_steward", "staff"]}
    # a ticket issued before the registration narrowed releases what it says now
    ticket = ticket_of(cas_login(client))
    registered(idp, cas_attributes=["department"])
    assert released(client, ticket) == {"user": ["zhang.san"], "department": ["jgswj"]}
    registered(idp, cas_attributes=[])
    assert released(client, ticket_of(cas_login(client))) == {"user": ["zhang.san"]}


@pytest.mark.parametrize(("value", "message"), [
    (["name", "email"], "unknown attribute 'email'"),
    ("name", "must be a list"),
    (["name", "name"], "listed twice"),
])
def test_a_bad_release_list_is_refused(idp: Services, value: Any, message: str) -> None:
    with pytest.raises(StateFileError) as refused:
        registered(idp, cas_attributes=value)
    assert message in str(refused.value.problems)


def test_a_release_list_without_cas_services_is_refused(idp: Services) -> None:
    with pytest.raises(StateFileError) as refused:
        apply_state(idp, {"systems": [{k: v for k, v in CAS_SYSTEM.items()
                                       if k != "cas_services"}]})
    assert "only with cas_services" in str(refused.value.problems)


def test_the_list_is_exported_and_applies_back(client: TestClient, idp: Services) -> None:
    from gateway.statefile import export_state

    registered(idp, cas_attributes=["roles", "name"])
    entry = next(s for s in export_state(idp.engine)["systems"] if s["code"] == "offices")
    assert entry["cas_attributes"] == ["name", "roles"]
    registered(idp, cas_attributes=None)
    entry = next(s for s in export_state(idp.engine)["systems"] if s["code"] == "offices")
    assert "cas_attributes" not in entry
