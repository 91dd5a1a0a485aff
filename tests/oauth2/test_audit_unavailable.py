"""The identity provider's endpoints when the audit log cannot take a record: no
audit, no answer, and every one of them says so in the same words (one text key,
``oauth2.audit_unavailable``, with its Chinese)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.i18n import render
from gateway.services import Services
from gateway.web.oauth2 import AUDIT_UNAVAILABLE
from tests.oauth2.helpers import FINANCE, code_flow
from tests.tokens import access_token

SAID = {"type": "urn:govgate:error:audit_unavailable", "title": "audit unavailable",
        "status": 503, "detail": "the audit log is unavailable; try again"}


def test_every_refusal_the_log_cannot_take_answers_alike(
        client: TestClient, idp: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    signed_in = code_flow(client)  # zhang.san's session and ID token (its sid)
    other = access_token(idp, sub="li.si", department="jgswj", client_id="office-web",
                         scope="openid")

    async def failing(record: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(idp.audit, "append", failing)
    answers = {
        "token": client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             auth=FINANCE),
        "userinfo, a bad token": client.get("/oauth2/userinfo",
                                            headers={"Authorization": "Bearer nope"}),
        "authorize, an unknown client": client.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": "nobody", "scope": "openid"},
            follow_redirects=False),
        "logout, another client's hint": client.get("/oauth2/logout", params={
            "client_id": "finance-system", "id_token_hint": other}, follow_redirects=False),
        "logout, the session's end": client.get("/oauth2/logout", params={
            "id_token_hint": signed_in["id_token"]}, follow_redirects=False),
    }
    for what, r in answers.items():
        assert (r.status_code, r.json()) == (503, SAID), what
        assert r.headers["content-type"] == "application/problem+json", what
        assert "access_token" not in r.text and "location" not in r.headers, what
    assert AUDIT_UNAVAILABLE.key == "oauth2.audit_unavailable"
    assert render(AUDIT_UNAVAILABLE, "zh") == "审计日志暂不可用，请稍后重试"
