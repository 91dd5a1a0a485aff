"""Translations by key: every key the code raises has its Chinese, every Chinese entry
has a user, and a text is shown in Chinese by its key, not by its English."""

from __future__ import annotations

import ast
import copy
import errno
import re
import string
from pathlib import Path

import pytest

from gateway.i18n import message_of, render
from gateway.messages import LIBRARY, MESSAGES
from texts import Text, joined, os_reason, where

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("texts", "keys", "audit", "policies", "catalogue", "gateway")


def _sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def text_calls() -> dict[str, list[tuple[str, str]]]:
    """key → [(English template, where)] of every ``Text(key, template, ...)`` call."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != "Text" or len(node.args) < 2:
                continue
            key, template = node.args[0], node.args[1]
            if isinstance(key, ast.Constant) and isinstance(template, ast.Constant):
                found.setdefault(str(key.value), []).append(
                    (str(template.value), f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def _fields(template: str) -> set[tuple[str, str | None]]:
    return {(name, conv) for _, name, _, conv in string.Formatter().parse(template)
            if name is not None}


def test_every_key_the_code_raises_has_its_chinese_and_the_same_english() -> None:
    """A new key without a Chinese entry fails here; so does rewording the English at
    the raise site without looking at the Chinese (the table's ``en`` must follow)."""
    problems = []
    for key, uses in text_calls().items():
        entry = LIBRARY.get(key)
        for template, at in uses:
            if entry is None:
                problems.append(f"{at}: {key!r} has no entry in gateway/messages.py LIBRARY")
            elif entry[1] != template:
                problems.append(f"{at}: {key!r} says {template!r}, the table {entry[1]!r}")
            elif _fields(entry[0]) != _fields(template):
                problems.append(f"{at}: {key!r}: the Chinese has other placeholders")
    assert not problems, "\n".join(problems)


def test_every_library_entry_is_used() -> None:
    """A Chinese entry whose key nobody raises is reported (a leftover after a
    message was removed or renamed). The ``os.*`` entries are keyed by errno name at
    run time (:func:`texts.os_reason`)."""
    used = set(text_calls())
    os_keys = {f"os.{name.lower()}" for name in errno.errorcode.values()}
    unused = sorted(k for k in LIBRARY if k not in used and k not in os_keys)
    assert not unused, f"LIBRARY entries nobody uses: {unused}"
    assert {k for k in LIBRARY if k.startswith("os.")} <= os_keys


def test_every_cli_message_is_used() -> None:
    """The CLI's own entries are looked up by ``t``/``msg``/``input_error`` with the
    key written out; an entry no code names is reported."""
    constants: set[str] = set()
    for path in _sources():
        if path.name == "messages.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
    unused = sorted(k for k in MESSAGES if k not in constants)
    assert not unused, f"CLI messages nobody uses: {unused}"


def test_both_languages_have_the_same_placeholders() -> None:
    for table in (MESSAGES, LIBRARY):
        for key, (zh, en) in table.items():
            assert {n for n, _ in _fields(zh)} == {n for n, _ in _fields(en)}, key


def test_a_text_is_its_english_and_carries_its_key() -> None:
    text = Text("cat.no_resource", "no resource {code!r}", code="x.y")
    assert text == "no resource 'x.y'" and str(text) == "no resource 'x.y'"
    assert (text.key, text.template, dict(text.params)) == (
        "cat.no_resource", "no resource {code!r}", {"code": "x.y"})
    again = copy.deepcopy(text)
    assert isinstance(again, Text) and again.key == text.key and again == text


def test_chinese_comes_from_the_key_not_from_the_english() -> None:
    """Rewording the English at the raise site keeps the Chinese (the table test
    above then asks for the table's ``en`` to follow)."""
    reworded = Text("cat.no_resource", "there is no resource called {code!r}", code="x.y")
    assert render(reworded, "zh") == "资源 'x.y' 不存在"
    assert render(reworded, "en") == "there is no resource called 'x.y'"
    assert render(str(reworded), "zh") == str(reworded)  # a plain string is never read


def test_nested_texts_and_lists_are_translated_in_turn() -> None:
    missing = os_reason(FileNotFoundError(errno.ENOENT, "No such file or directory"))
    text = where("/x/y", joined([missing, Text("cat.one_item", "name at least one item")]))
    assert text == "/x/y: No such file or directory; name at least one item"
    assert render(text, "zh") == "/x/y：没有这个文件或目录；请至少指定一个信息项"
    assert render(text, "en") == str(text)
    # a key the table does not know is shown in English, never dropped
    assert render(Text("nobody.knows", "as {it} is", it=1), "zh") == "as 1 is"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_error_raised_with_a_text_is_rendered_by_its_key(lang: str) -> None:
    from catalogue.errors import InvalidInput

    exc = InvalidInput(Text("cat.resource_rejected", "resource rejected"),
                       [Text("cat.one_item", "name at least one item")])
    assert str(exc) == "resource rejected: name at least one item"
    expected = {"zh": "资源未通过校验：请至少指定一个信息项",
                "en": "resource rejected: name at least one item"}
    assert render(message_of(exc), lang) == expected[lang]


# -- the portal's tables: the same format, every entry used ----------------------------

PORTAL = ROOT / "gateway" / "web" / "portal"
# a key built from a prefix and a value: t('cat_st_' ~ r.share_type), f"cat_done_{done}",
# "pw_" + ..., t.value("role_", role)
# and a prefix passed on to a helper that adds the value: names.codes(t, 'nm_gt_', ...)
_DYNAMIC = re.compile(r"""['"]([a-z]+_[a-z_]*)['"]\s*(?:~|\+)|f["']([a-z]+_[a-z_]*)\{"""
                      r"""|\bvalue\(\s*['"]([a-z]+_[a-z_]*)['"]|['"]([a-z]+_[a-z_]*_)['"]\s*,""")
# a table's own entry ("key": ("中文", "English")), which does not count as a use
_ENTRY = re.compile(r"""^\s*['"][^'"]+['"]\s*:\s*\(""", re.M)


def _portal_sources() -> str:
    files = [*PORTAL.glob("templates/*.html"), *(ROOT / "gateway").rglob("*.py")]
    # the translation modules' code (reason_i18n, names_i18n read keys by prefix), not
    # their tables' entries
    return "\n".join(_ENTRY.sub("", p.read_text(encoding="utf-8")) if p.name.endswith("_i18n.py")
                     else p.read_text(encoding="utf-8") for p in files
                     if p.name not in ("i18n.py", "messages.py"))


def test_the_portal_tables_have_both_languages_and_no_collisions() -> None:
    from gateway.web.portal.account_i18n import ACCOUNT_MESSAGES
    from gateway.web.portal.catalogue_i18n import CATALOGUE_MESSAGES
    from gateway.web.portal.i18n import MESSAGES as PORTAL_MESSAGES
    from gateway.web.portal.i18n import TABLE

    assert not set(PORTAL_MESSAGES) & set(CATALOGUE_MESSAGES)
    assert not (set(PORTAL_MESSAGES) | set(CATALOGUE_MESSAGES)) & set(ACCOUNT_MESSAGES)
    assert all(k.startswith("cat_") for k in CATALOGUE_MESSAGES)
    assert all(k.startswith(("acct_", "nav_")) for k in ACCOUNT_MESSAGES)
    for key, (zh, en) in TABLE.items():
        assert zh and en, key
        assert {n for n, _ in _fields(zh)} == {n for n, _ in _fields(en)}, key


def test_every_portal_entry_is_used() -> None:
    """A portal text no template or page names (written out, or as a prefix and a
    value) is reported."""
    from gateway.web.portal.i18n import TABLE

    sources = _portal_sources()
    prefixes = tuple(a or b or c or d for a, b, c, d in _DYNAMIC.findall(sources))
    unused = sorted(k for k in TABLE
                    if not re.search(rf"""['"]{re.escape(k)}['"]""", sources)
                    and not k.startswith(prefixes))
    assert not unused, f"portal texts nobody uses: {unused}"


def test_the_portal_translator_reads_the_table_by_key() -> None:
    from gateway.web.portal.i18n import Translator, pick_lang

    assert Translator("zh")("cat_results", n=3) == "共 3 个资源"
    assert Translator("en")("cat_results", n=3) == "Resources found: 3"
    assert Translator("zh")("no.such.key") == "no.such.key"
    assert pick_lang("en", None) == "en" and pick_lang("xx", "zh") == "zh"
    assert pick_lang(None, None, default="fr") == "zh"
