"""The portal's side of the workflow attack (tests/catalogue/test_workflow_attack.py):
an applicant moved to the provider department sees no approve form on their own
application, and a posted approval is refused with a readable page, audited."""

from __future__ import annotations

from starlette.testclient import TestClient

from gateway.services import Services
from tests.catalogue.conftest import audit_rows
from tests.oauth2.helpers import csrf_of
from tests.portal.test_catalogue_pages import (  # noqa: F401 - fixtures
    apply_as_wang,
    fast_hashes,
    portal,
    sign_in,
)
from tests.wiring import apply_state, parts


def test_a_moved_applicant_cannot_approve_their_own_in_the_portal(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = portal
    apply_as_wang(client, ["plate_number"])
    (app,) = parts(services).workflow.applications(consumer="nn-jgsw")
    apply_state(services, {"users": [{"username": "wang.wu", "name": "王五",
                                      "department": "jgswj",
                                      "roles": ["staff", "data_steward"]}]})
    sign_in(client, "wang.wu")
    page = client.get(f"/portal/catalogue/applications/{app.id}")
    assert page.status_code == 200 and "车辆费用核算" in page.text
    assert 'id="approve-form"' not in page.text and 'id="reject-form"' not in page.text
    r = client.post(f"/portal/catalogue/applications/{app.id}/approve",
                    data={"csrf_token": csrf_of(page.text), "items": ["plate_number"]})
    assert r.status_code == 403
    assert f"wang.wu 提交了申请 {app.id}：须由他人审批" in r.text
    refused = audit_rows(services, "catalogue_refused")[-1]
    assert refused["actor_user"] == "wang.wu" and refused["department"] == "jgswj"
    assert parts(services).workflow.get(app.id).status == "submitted"
