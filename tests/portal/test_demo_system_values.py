"""The demo systems' tables in the page's language, values too (walk of 2026-12-05,
fourth): 办公用房管理系统's 是否超标 column said ``False`` and ``True`` (Python's
words) on the Chinese page and the English one alike."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from gateway.demo.apps import create_upstream


@pytest.mark.parametrize(("lang", "yes", "no"), [("zh", "是", "否"), ("en", "Yes", "No")])
def test_the_offices_table_says_yes_and_no_in_the_pages_language(
        lang: str, yes: str, no: str) -> None:
    with TestClient(create_upstream("offices"), base_url="http://127.0.0.1:9102") as client:
        page = client.get("/", params={"lang": lang}).text
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert "False" not in cells and "True" not in cells
    assert yes in cells and no in cells  # the demo's rooms: some over the standard, some not
