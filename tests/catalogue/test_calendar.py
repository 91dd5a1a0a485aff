"""Working days from the operator's holiday calendar: the official 2026 calendar
(examples/calendar-2026.yaml) counts a 调休 Saturday and skips a holiday; an
application's time limit crosses 国庆 on it; the state file's ``calendar:`` section
validates, applies once and exports; ``govgate calendar import`` and ``show``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalogue import Actor
from catalogue import store as catalogue_store
from catalogue.calendar import CalendarYear, Holiday, WorkCalendar, year_from_entry
from gateway.cli.main import cli
from gateway.clock import FrozenClock
from gateway.errors import StateFileError
from gateway.services import Services
from gateway.statefile import export_state, load_file
from tests.catalogue.conftest import ROOT, audit_rows
from tests.wiring import apply_state, parts

EXAMPLE = ROOT / "examples" / "calendar-2026.yaml"
WANG = Actor("wang.wu", "nn-jgsw", frozenset({"staff"}))


def official() -> WorkCalendar:
    return WorkCalendar.of([year_from_entry(e) for e in load_file(EXAMPLE)["calendar"]])


def test_a_make_up_saturday_counts_a_holiday_does_not() -> None:
    cal = official()
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday, 调休上班 after 国庆
    assert cal.is_working_day(date(2026, 9, 20))  # Sunday, 调休上班 before 国庆
    assert cal.is_working_day(date(2026, 2, 14))  # Saturday before 春节
    assert not cal.is_working_day(date(2026, 10, 5))  # Monday of 国庆
    assert not cal.is_working_day(date(2026, 2, 23))  # Monday, the last day of 春节
    assert not cal.is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    assert cal.is_working_day(date(2026, 10, 9))  # an ordinary Friday
    plain = WorkCalendar()  # Monday to Friday: wrong on both
    assert not plain.is_working_day(date(2026, 10, 10)) and plain.is_working_day(
        date(2026, 10, 5))
    assert cal.covers(date(2026, 3, 1)) and not cal.covers(date(2027, 1, 1))


def test_ten_working_days_across_national_day() -> None:
    # filed Monday 2026-09-28 09:00 CST: 9/29, 9/30, (10/1-10/7 off), 10/8, 10/9,
    # 10/10 (a Saturday worked), 10/12 ... 10/16
    filed = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)
    assert official().add_working_days(filed, 10) == datetime(2026, 10, 16, 1, 0, tzinfo=UTC)
    assert WorkCalendar().add_working_days(filed, 10) == datetime(2026, 10, 12, 1, 0,
                                                                  tzinfo=UTC)
    assert official().working_days_between(date(2026, 9, 28), date(2026, 10, 16)) == 10
    assert official().working_days_between(date(2026, 10, 16), date(2026, 9, 28)) == -10


def test_the_workflow_counts_on_the_stored_calendar(services: Services,
                                                    clock: FrozenClock) -> None:
    clock.now = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)
    app = parts(services).workflow.apply(WANG, "JG-0001", items=["plate_number"],
                                       purpose="国庆值班用车", until="2026-12-31")
    assert app.due_at == datetime(2026, 10, 16, 1, 0, tzinfo=UTC)
    # the operator changes the calendar while the gateway runs: the next step counts on it
    apply_state(services, {"calendar": [{"year": 2026, "holidays": []}]})
    app = parts(services).workflow.apply(WANG, "JG-0001", items=["brand"], purpose="统计",
                                       until="2026-12-31")
    assert app.due_at == datetime(2026, 10, 12, 1, 0, tzinfo=UTC)


def test_the_section_applies_once_replaces_a_year_and_exports(services: Services) -> None:
    applier = parts(services).state_applier()
    doc = load_file(EXAMPLE)
    assert applier.apply(doc) == []  # the demo state holds the same year already
    changed = [dict(e) for e in doc["calendar"]]
    changed[0]["holidays"] = [h for h in changed[0]["holidays"] if h["name"] != "清明节"]
    (change,) = applier.apply({"calendar": changed})
    assert str(change).startswith("~ calendar 2026") and "holidays" in str(change)
    (change,) = applier.apply({"calendar": [{"year": 2030, "holidays": [
        {"name": "元旦", "from": "2030-01-01"}]}]})
    assert str(change) == "+ calendar 2030"
    exported = export_state(services.engine, parts(services).state_sections())["calendar"]
    assert [e["year"] for e in exported] == [2026, 2030]
    assert "清明节" not in [h["name"] for h in exported[0]["holidays"]]
    assert exported[1]["holidays"] == [{"name": "元旦", "from": date(2030, 1, 1)}]
    with services.engine.connect() as conn:
        stored = {y.year: y for y in catalogue_store.load_calendar(conn)}
    assert stored[2030] == CalendarYear(2030, (Holiday("元旦", date(2030, 1, 1),
                                                       date(2030, 1, 1)),))
    assert [(r["extra"]["action"], r["extra"]["key"]) for r in audit_rows(
        services, "admin_change") if r["extra"].get("kind") == "calendar"] == [
        ("create", "2026"), ("update", "2026"), ("create", "2030")]


def test_every_problem_of_a_calendar_is_reported_with_its_place(services: Services) -> None:
    bad = load_file_text("""
calendar:
  - year: 2026
    holidays:
      - {name: 国庆节, from: 2026-10-01, to: 2026-10-07, workdays: [2026-10-09]}
      - {name: 又一个, from: 2026-10-07}
      - {name: 反了, from: 2026-05-05, to: 2026-05-01, colour: red}
  - year: 2026
    holidays: []
  - {year: 1800, holidays: [{name: x, from: 2026-01-01}]}
""")
    with pytest.raises(StateFileError) as caught:
        apply_state(services, bad)
    problems = [str(p) for p in caught.value.problems]
    expected = [
        "calendar[0] (line 3): holidays[0]: 2026-10-09 is a weekday: a make-up working day "
        "is a Saturday or Sunday",
        "calendar[0] (line 3): holidays[1]: 2026-10-07 is named twice (国庆节)",
        "calendar[0] (line 3): holidays[2]: unknown key 'colour'",
        "calendar[0] (line 3): holidays[2]: to is before from",
        "calendar[1] (line 8): 2026 is named twice (first at calendar[0])",
        "calendar[2] (line 10): year must be a year from 2000 to 2100",
    ]
    assert problems == expected
    with services.engine.connect() as conn:
        assert [y.year for y in catalogue_store.load_calendar(conn)] == [2026]


def load_file_text(text: str) -> dict[str, object]:
    from gateway.statefile import load_text

    return load_text(text)


def test_cli_imports_and_shows_the_calendar(services: Services, env: dict[str, str],
                                            tmp_path: Path) -> None:
    runner = CliRunner()
    zh = {**env, "LANG": "zh_CN.UTF-8"}

    def invoke(*args: str, code: int = 0, lang: dict[str, str] = env) -> str:
        result = runner.invoke(cli, ["calendar", *args], env=lang, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result.output

    assert invoke("import", str(EXAMPLE)) == "nothing to change.\n"
    shown = invoke("show", "--year", "2026", lang=zh)
    assert shown.splitlines()[0] == "2026 年：工作日 248 天"  # 261 weekdays - 19 off + 6 worked
    assert ("  2026-10-01 至 2026-10-07  国庆节（7 天）；调休上班：2026-09-20（周日）、"
            "2026-10-10（周六）") in shown.splitlines()
    assert "  2026-04-04 至 2026-04-06  清明节（3 天）" in shown.splitlines()
    assert "the holidays of 2031 are not imported" in invoke("show", "--year", "2031")

    next_year = tmp_path / "calendar-2030.yaml"
    next_year.write_text("calendar:\n  - year: 2030\n    holidays:\n"
                         "      - {name: 元旦, from: 2030-01-01}\n", encoding="utf-8")
    assert invoke("import", str(next_year), "--dry-run") == (
        "+ calendar 2030\ndry run: nothing written.\n")
    assert invoke("import", str(next_year)) == "+ calendar 2030\napplied 1 change(s).\n"
    assert "2030: 260 working days" in invoke("show")

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("calendar:\n  - {year: 2031, holidays: [{name: x, from: soon}]}\n",
                     encoding="utf-8")
    out = invoke("import", str(wrong), code=1)
    assert "calendar[0] (line 2): holidays[0]: from must be a date YYYY-MM-DD" in out
    other = tmp_path / "other.yaml"
    other.write_text("regions: []\ncalendar: []\n", encoding="utf-8")
    assert "only a calendar section is imported (found: regions)" in invoke(
        "import", str(other), code=2)
    assert "no such file" in invoke("import", str(tmp_path / "nope.yaml"), code=2)
