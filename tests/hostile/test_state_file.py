"""Hostile state files: YAML alias bombs, recursive aliases, keys that are lists,
duplicate keys at any depth, files too large, and any value of the wrong kind in any
field of any section, through ``govgate apply``, ``govgate catalogue import`` and
``govgate calendar import`` (the CLI, in process).

tests/gateway/test_statefile.py has the safe loader (no ``!!python`` tags), the size
limit of ``load_text``, a top-level duplicate key and ill-typed names; tests/catalogue
and tests/saml their sections' problems. Each answer here is the CLI's one-line error
(exit 1), in a second at most, and nothing is written."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from catalogue.io import MAX_IMPORT_BYTES
from gateway.cli.main import cli
from gateway.demo import DEMO_STATE
from gateway.errors import StateFileError
from gateway.statefile import MAX_BYTES, export_state, load_file
from tests.hostile.conftest import IdpWorld

# nine lines, a billion values once expanded ("billion laughs")
BOMB = """x-anchors:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
#: where the bomb goes off: a value each section's checks walk or print
BOMBED = {
    "apply": [
        "users: *i\n",
        "users: [{username: *i, name: n, department: jgswj, roles: [staff]}]\n",
        "users: [{username: u.x, name: *i, department: jgswj, roles: [staff]}]\n",
        "users: [{username: u.x, name: n, department: jgswj, roles: *i}]\n",
        "systems: [{code: s, name: n, department: jgswj, upstream: 'http://127.0.0.1:9',"
        " forward_headers: *i}]\n",
        "clients: [{client_id: c, name: n, department: jgswj, grant_types: *i}]\n",
        "policies: [{subject: *i, department: jgswj, object: /s/x/*, action: GET}]\n",
        "grants: [{resource: JG-0001, consumer: czt, items: *i, purpose: p,"
        " until: 2030-01-01}]\n",
    ],
    "catalogue": ["catalogue: [{code: JG-0999, name: *i, provider: jgswj, system: vehicles,"
                  " share_type: none, route: {path: /x}, items: [{name: a, title: t}]}]\n"],
    "calendar": ["calendar: [{year: 2026, holidays: *i}]\n"],
}
COMMANDS = {"apply": ["apply", "--dry-run", "-f"],
            "catalogue": ["catalogue", "import", "--dry-run"],
            "calendar": ["calendar", "import", "--dry-run"]}


def run(world: IdpWorld, *args: str) -> Result:
    settings = world.services.settings
    return CliRunner().invoke(cli, list(args), env={
        "GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
        "LANG": "C.UTF-8"})


def assert_refused(result: Result, *says: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception  # a one-line error, not a traceback
    for text in says:
        assert text in result.output, (text, result.output)


@pytest.fixture(scope="module")
def before(idp_world: IdpWorld) -> dict[str, Any]:
    return export_state(idp_world.services.engine)


@pytest.mark.parametrize(("command", "tail"), [
    (command, tail) for command, tails in BOMBED.items() for tail in tails])
def test_an_alias_bomb_is_refused_at_once(idp_world: IdpWorld, before: dict[str, Any],
                                          tmp_path: Path, command: str, tail: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + tail, encoding="utf-8")
    started = time.monotonic()
    result = run(idp_world, *COMMANDS[command], str(path))
    assert time.monotonic() - started < 2.0
    assert_refused(result, "values once its aliases are expanded")
    assert export_state(idp_world.services.engine) == before


@pytest.mark.parametrize(("text", "says"), [
    ("users: &u [*u]\n", "alias to the node that contains it"),
    ("users: &u [{username: *u}]\n", "alias to the node that contains it"),
    ("users: [{? [a, b] : 1}]\n", "a key must be a plain value"),
    ("users: [{? {a: b} : 1}]\n", "a key must be a plain value"),
    ("users:\n  - username: u.x\n    name: a\n    name: b\n", "duplicate key 'name'"),
    ("catalogue:\n  - code: JG-0999\n    route: {path: /a, path: /b}\n", "duplicate key 'path'"),
    ("users: [{username: *nowhere}]\n", "undefined alias"),
    ("users: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("users: !!binary aGk=\n", ""),
    ("\ufeffusers: [\n", "not valid YAML"),
    # the attack of 2026-12-05: each was a traceback (PyYAML's constructors raise
    # ValueError, KeyError, ... and its parser recurses once per nesting level)
    ("departments: [{code: x2, name: \"\\ud800\", region: gx}]\n", "an unpaired surrogate"),
    ("departments: [{code: x2, name: \"\\ud83d\\ude00\", region: gx}]\n",
     "an unpaired surrogate"),
    ("grants: [{resource: JG-0001, until: 2026-13-45}]\n", "'2026-13-45' is not a valid timestamp"),
    ("users: [{username: u.x, name: !!int x}]\n", "'x' is not a valid int"),
    ("users: [{username: u.x, name: !!bool x}]\n", "'x' is not a valid bool"),
    ("users: [{username: u.x, name: !!timestamp x}]\n", "'x' is not a valid timestamp"),
    ("users: [{username: u.x, name: !!map [1]}]\n", "is not a valid map"),
    ("users: [{username: u.x, name: 0x_}]\n", "'0x_' is not a valid int"),
    ("users: [{username: u.x, name: " + "9" * 5000 + "}]\n", "is not a valid int"),
    ("users: " + "[" * 300 + "]" * 300 + "\n", "nested too deeply"),
])
def test_malformed_yaml_is_a_one_line_error(idp_world: IdpWorld, before: dict[str, Any],
                                            tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    for command in ("apply", "catalogue"):
        assert_refused(run(idp_world, *COMMANDS[command], str(path)), says)
    assert export_state(idp_world.services.engine) == before


@pytest.mark.parametrize(("command", "text", "says"), [
    # YAML reads ``2026-01-01:`` as a date and ``3:`` as a number: the messages showed
    # ``datetime.date(2026, 1, 1)``, and sorting them beside text keys was a traceback
    ("apply", "2026-01-01: 1\nfoo: 2\n", "unknown section '2026-01-01'"),
    ("apply", "users: [{username: u.x, 2026-01-01: x, foo: y, 3: z}]\n",
     "unknown key '2026-01-01'"),
    ("apply", "grants: [{2026-01-01: x, foo: y}]\n", "unknown key '2026-01-01'"),
    ("catalogue", "2026-01-01: 1\nfoo: 2\n", "2026-01-01"),
    ("catalogue", "catalogue: [{code: JG-0999, 7: x, on: y}]\n", "'7'"),
])
def test_keys_yaml_reads_as_dates_or_numbers_are_names(
        idp_world: IdpWorld, before: dict[str, Any], tmp_path: Path, command: str,
        text: str, says: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    assert_refused(run(idp_world, *COMMANDS[command], str(path)), says)
    assert "datetime" not in run(idp_world, *COMMANDS[command], str(path)).output
    assert export_state(idp_world.services.engine) == before


def test_a_file_too_large_is_refused_before_it_is_read(idp_world: IdpWorld,
                                                       tmp_path: Path) -> None:
    """Sparse files: their size is what counts, and nothing of them is read."""
    for command, limit in (("apply", MAX_BYTES), ("catalogue", MAX_IMPORT_BYTES),
                           ("calendar", MAX_BYTES)):
        path = tmp_path / f"{command}.yaml"
        with path.open("wb") as f:
            f.truncate(limit + 1)
        started = time.monotonic()
        assert_refused(run(idp_world, *COMMANDS[command], str(path)), f"{limit}")
        assert time.monotonic() - started < 2.0, command


#: values of every wrong kind (a list in a list, a mapping holding a list, a number past
#: 64 bits, a boolean, null, a NUL, text too long)
WRONG = [[["x"]], {"k": ["v"]}, 10**30, True, None, "\x00", "x" * 5000]


def test_any_wrong_value_in_any_field_is_a_problem_not_a_crash(idp_world: IdpWorld,
                                                               before: dict[str, Any]) -> None:
    """Every key of the first entry of every section of the demo's file (and of its
    nested mappings and lists of mappings), a key no section has, and each section
    itself, given each value of :data:`WRONG`: the state file is refused with its
    problems, or applies; never another exception (a traceback in ``govgate apply``).
    A file changes one place in each section at once (the checks report every problem,
    so a crash in any shows); a file that crashes is taken apart to name the place."""
    # the first entry of each section of the demo's file (the rest is in the database)
    demo = {section: entries[:1] for section, entries in load_file(DEMO_STATE).items()}
    demo["policies"] = [{"subject": "dept:czt", "department": "czt", "object": "/s/x/*",
                         "action": "GET", "ungoverned": True, "reason": "r"}]
    applier = idp_world.built.state_applier()
    places: dict[str, list[tuple[str, ...]]] = {}  # section → the places in its entry
    for section, entries in demo.items():
        entry = entries[0]
        found: list[tuple[str, ...]] = [()]  # () stands for the section itself
        for key in [*entry, "no_such_key"]:
            found.append((key,))
            inner = entry.get(key)
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, dict):
                found += [(key, sub) for sub in [*inner, "no_such_key"]]
        places[section] = found

    def put(doc: dict[str, Any], section: str, place: tuple[str, ...], value: Any) -> None:
        if not place:
            doc[section] = value
            return
        target = doc[section][0]
        if len(place) == 2:
            target = target[place[0]]
            target = target[0] if isinstance(target, list) else target
        target[place[-1]] = value

    def crash(changes: list[tuple[str, tuple[str, ...], Any]]) -> str | None:
        doc = copy.deepcopy(demo)
        for section, place, value in changes:
            put(doc, section, place, value)
        try:
            applier.apply(doc, dry_run=True)
        except StateFileError:
            return None
        except Exception as exc:  # what this test is looking for
            return f"{type(exc).__name__}: {exc}"[:160]
        return None

    crashes = []
    for n in range(max(len(p) for p in places.values())):
        for value in WRONG:
            changes = [(section, found[n], value) for section, found in places.items()
                       if n < len(found)]
            if crash(changes) is None:
                continue
            crashes += [f"{section}.{'.'.join(place)}={str(value)[:20]!r}: {why}"
                        for section, place, value in changes
                        if (why := crash([(section, place, value)])) is not None]
    assert not crashes, "\n".join(crashes)
    assert export_state(idp_world.services.engine) == before


def test_a_nul_in_a_file_or_a_document_is_a_problem(idp_world: IdpWorld,
                                                    tmp_path: Path) -> None:
    """PostgreSQL stores no NUL: refused where the file is read, and where a document
    built by a program is applied (its place named)."""
    path = tmp_path / "nul.yaml"
    path.write_text('users: [{username: "li\\0si", name: n, department: jgswj}]\n',
                    encoding="utf-8")
    for command in ("apply", "catalogue"):
        assert_refused(run(idp_world, *COMMANDS[command], str(path)), "a NUL character")
    with pytest.raises(StateFileError) as refused:
        idp_world.built.state_applier().apply({"regions": [{"code": "x", "name": "a\x00"}]})
    assert any("regions[0].name" in p for p in refused.value.problems), refused.value.problems
