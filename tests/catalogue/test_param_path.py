"""A parameter's name as nesting frameworks read it (``catalogue.param_path``), the
"named twice" rule over those paths (``catalogue.query.refusal``), and the language of
a refusal (``gateway.i18n.accept_lang``)."""

from __future__ import annotations

import pytest

from catalogue.param_path import name_path
from catalogue.query import refusal
from gateway.i18n import accept_lang


@pytest.mark.parametrize(("name", "path"), [
    ("columns[0][data]", ("columns", "0", "data")),
    ("orders[0].column", ("orders", "0", "column")),
    ("orders[0][column]", ("orders", "0", "column")),
    ("columns[00][ data ]", ("columns", "0", "data")),
    ("columns[+1][data]", ("columns", "1", "data")),
    ("select[]", ("select", "")),
    ("limit", ("limit",)),
    ("a.b.c", ("a", "b", "c")),
])
def test_a_name_is_read_as_its_path(name: str, path: tuple[str, ...]) -> None:
    assert name_path(name) == path


@pytest.mark.parametrize("query", [
    "columns%5B0%5D%5Bdata%5D=a&columns%5B0%5D%5Bname%5D=&columns%5B1%5D%5Bdata%5D=b",
    "params%5BbeginTime%5D=2026-01-01&params%5BendTime%5D=2026-12-31",
    "orders[0].column=a&orders[0].asc=true&orders[1].column=b",
    "search%5Bvalue%5D=&search%5Bregex%5D=false",
    # Spring Data reads every sort (catalogue.query.REPEATABLE)
    "sort=plate_number,desc&sort=brand,asc", "sort=a&SORT=b&%73ort=c",
    # PHP's and Rack's list (catalogue.query.APPENDED)
    "x[]=1&x[]=2", "x%5B%5D=1&x%5B%5D=2&x%5B%5D=3",
])
def test_different_paths_are_different_parameters(query: str) -> None:
    assert refusal(query, None) is None


@pytest.mark.parametrize(("query", "second"), [
    ("limit=1&LIMIT=2", "LIMIT"),
    ("limit=1&limit%5Bx%5D=2", "limit%5Bx%5D"),
    ("limit%5Bx%5D=2&limit=1", "limit"),
    ("orders[0].column=a&orders[0][column]=b", "orders[0][column]"),
    ("columns[0][data]=a&columns[00][data]=b", "columns[00][data]"),
    ("x[]=1&x=2", "x"), ("x=1&x[]=2", "x[]"), ("x[]=1&x[][a]=2", "x[][a]"),
    ("x[a]=1&x[a]=2", "x[a]"),
    ("sort=a&sort[x]=b", "sort[x]"), ("sort[x]=b&sort=a", "sort"),
    ("sort[0]=a&sort[0]=b", "sort[0]"), ("order=a&order=b", "order"),
])
def test_the_same_path_or_one_holding_another_is_named_twice(query: str, second: str
                                                             ) -> None:
    found = refusal(query, None)
    assert found is not None and found.parameter == second
    assert str(found.reason).startswith("named twice")


@pytest.mark.parametrize(("header", "lang"), [
    (None, "zh"), ("", "zh"), ("*", "zh"), ("fr-FR", "zh"), ("zh-CN,zh;q=0.9", "zh"),
    ("en", "en"), ("en-US,en;q=0.9,zh-CN;q=0.8", "en"), ("zh;q=0.3, en-GB;q=0.7", "en"),
    ("fr, zh;q=0.5", "zh"), ("en;q=0, zh;q=0.1", "zh"), ("en;q=bad", "zh"),
    ("en;q=2", "zh"),
])
def test_the_callers_language(header: str | None, lang: str) -> None:
    assert accept_lang(header, "zh") == lang
    assert accept_lang("fr", "en") == "en"
