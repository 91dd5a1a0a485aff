"""Working days (工作日) from the operator's holiday calendar: public holidays and the
调休 make-up working days the State Council announces each year.

A day is a working day when the calendar names it a make-up working day (a Saturday
or Sunday worked, 调休上班), or else when it is Monday to Friday and no holiday. A
year the calendar does not cover counts Monday to Friday only: the operator imports
each year's calendar when it is announced (``govgate calendar import``).

The state file's ``calendar:`` section holds one entry per year, as the notice
reads::

    calendar:
      - year: 2026
        source: 国务院办公厅关于2026年部分节假日安排的通知
        holidays:
          - {name: 元旦, from: 2026-01-01, to: 2026-01-03, workdays: [2026-01-04]}
          - {name: 清明节, from: 2026-04-04, to: 2026-04-06}

``to`` defaults to ``from``; ``workdays`` are that holiday's make-up working days.
A year is one unit: applying an entry replaces what was stored for that year.

Pure: no database, no clock. ``catalogue.store`` keeps the entries, the gateway
hands the calendar to :class:`catalogue.workflow.Workflow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from catalogue.limits import too_long
from catalogue.model import CST, parse_date
from texts import Text
from texts import where as placed

YEAR_KEYS = frozenset({"year", "holidays"})
YEAR_OPTIONAL = frozenset({"source"})
HOLIDAY_KEYS = frozenset({"name", "from"})
HOLIDAY_OPTIONAL = frozenset({"to", "workdays"})
MAX_HOLIDAY_DAYS = 15  # the longest official holiday is 9 days; more is a typing error
MAX_NAME = 64
MAX_SOURCE = 500
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class Holiday:
    name: str
    start: date
    end: date
    workdays: tuple[date, ...] = ()

    def days(self) -> list[date]:
        return [self.start + timedelta(days=k) for k in range((self.end - self.start).days + 1)]

    def to_entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "from": self.start}
        if self.end != self.start:
            out["to"] = self.end
        if self.workdays:
            out["workdays"] = list(self.workdays)
        return out


@dataclass(frozen=True)
class CalendarYear:
    """One year's announced holidays (one ``calendar:`` entry)."""

    year: int
    holidays: tuple[Holiday, ...]
    source: str = ""

    def to_entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"year": self.year}
        if self.source:
            out["source"] = self.source
        out["holidays"] = [h.to_entry() for h in self.holidays]
        return out

    def to_json(self) -> list[dict[str, Any]]:
        """The holidays as stored (JSON: dates as ISO text)."""
        return [{"name": h.name, "from": h.start.isoformat(), "to": h.end.isoformat(),
                 "workdays": [d.isoformat() for d in h.workdays]} for h in self.holidays]

    @classmethod
    def from_json(cls, year: int, holidays: Iterable[Mapping[str, Any]],
                  source: str = "") -> CalendarYear:
        return cls(year, tuple(
            Holiday(str(h["name"]), date.fromisoformat(h["from"]), date.fromisoformat(h["to"]),
                    tuple(date.fromisoformat(d) for d in h.get("workdays") or ()))
            for h in holidays), source)


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days. ``names`` says why a day is special (for pages)."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()

    @classmethod
    def of(cls, years: Iterable[CalendarYear]) -> WorkCalendar:
        """The calendar of these years; a later year's notice wins a date two name."""
        off: set[date] = set()
        on: set[date] = set()
        covered: set[int] = set()
        for y in sorted(years, key=lambda y: y.year):
            covered.add(y.year)
            for h in y.holidays:
                for d in h.days():
                    on.discard(d)
                    off.add(d)
                for d in h.workdays:
                    off.discard(d)
                    on.add(d)
        return cls(frozenset(off), frozenset(on), frozenset(covered))

    def is_working_day(self, d: date) -> bool:
        if d in self.workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def covers(self, d: date) -> bool:
        return d.year in self.years

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """``start`` moved ``days`` working days on, same time of day in China Standard
        Time. Filed on a day off, the count starts with the next working day."""
        local = start.astimezone(CST)
        d = local.date()
        left = days
        while left > 0:
            d += timedelta(days=1)
            if self.is_working_day(d):
                left -= 1
        return datetime.combine(d, local.timetz()).astimezone(UTC)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative when
        ``end`` is before ``start``): how many are left until a deadline, or gone past it."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for k in range(1, (end - start).days + 1)
                   if self.is_working_day(start + timedelta(days=k)))


MONDAY_TO_FRIDAY = WorkCalendar()


# -- the state file's entries (pure validation) --------------------------------------------


def _unknown(entry: Mapping[str, Any], allowed: frozenset[str]) -> list[str]:
    return [Text("field.unknown_key", "unknown key {key!r}", key=k)
            for k in entry if k not in allowed]


def _missing(entry: Mapping[str, Any], required: frozenset[str]) -> list[str]:
    return [Text("field.missing_key", "missing key {key!r}", key=k)
            for k in sorted(required) if k not in entry]


def _near(d: date, year: int) -> bool:
    """A notice's dates lie in its year, or in the weeks around it (元旦 2019 began on
    2018-12-30, with 2018-12-29 worked)."""
    return date(year - 1, 12, 1) <= d <= date(year + 1, 1, 31)


def year_problems(entry: Any) -> list[str]:
    """Every problem with one ``calendar:`` entry, each placed inside the entry."""
    if not isinstance(entry, Mapping):
        return [Text("field.mapping", "must be a mapping")]
    problems = _unknown(entry, YEAR_KEYS | YEAR_OPTIONAL) + _missing(entry, YEAR_KEYS)
    year = entry.get("year")
    if "year" in entry and (not isinstance(year, int) or isinstance(year, bool)
                            or not FIRST_YEAR <= year <= LAST_YEAR):
        problems.append(Text("cal.year", "year must be a year from {first} to {last}",
                             first=FIRST_YEAR, last=LAST_YEAR))
        year = None
    source = entry.get("source")
    if source is not None and not isinstance(source, str):
        problems.append(Text("field.string", "{field} must be a string", field="source"))
    elif long := too_long("source", source, MAX_SOURCE):
        problems.append(long)
    holidays = entry.get("holidays")
    if "holidays" not in entry:
        return problems
    if not isinstance(holidays, list):
        return [*problems, placed("holidays", Text("field.list", "must be a list"))]
    seen: dict[date, str] = {}
    for i, h in enumerate(holidays):
        at = f"holidays[{i}]"
        problems += [placed(at, p) for p in _holiday_problems(h, year, seen)]
    return problems


def _holiday_problems(h: Any, year: int | None, seen: dict[date, str]) -> list[str]:
    if not isinstance(h, Mapping):
        return [Text("field.mapping", "must be a mapping")]
    problems = _unknown(h, HOLIDAY_KEYS | HOLIDAY_OPTIONAL) + _missing(h, HOLIDAY_KEYS)
    name = h.get("name")
    if "name" in h and (not isinstance(name, str) or not name.strip()):
        problems.append(Text("field.non_empty", "{field} must be a non-empty string",
                             field="name"))
    elif long := too_long("name", name, MAX_NAME):
        problems.append(long)
    start = parse_date(h.get("from")) if "from" in h else None
    if "from" in h and start is None:
        problems.append(Text("field.date", "{field} must be a date YYYY-MM-DD", field="from"))
    end = start
    if h.get("to") is not None:
        end = parse_date(h["to"])
        if end is None:
            problems.append(Text("field.date", "{field} must be a date YYYY-MM-DD", field="to"))
    days: list[date] = []
    if start is not None and end is not None:
        if end < start:
            problems.append(Text("cal.to_before_from", "to is before from"))
        elif (end - start).days >= MAX_HOLIDAY_DAYS:
            problems.append(Text("cal.too_long", "a holiday of more than {n} days",
                                 n=MAX_HOLIDAY_DAYS))
        else:
            days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    workdays: list[date] = []
    raw = h.get("workdays")
    if raw is not None:
        if not isinstance(raw, list):
            problems.append(placed("workdays", Text("field.list", "must be a list")))
        else:
            for value in raw:
                d = parse_date(value)
                if d is None:
                    problems.append(Text("field.date", "{field} must be a date YYYY-MM-DD",
                                         field="workdays"))
                elif d.weekday() < 5:
                    problems.append(Text("cal.workday_weekday",
                                         "{date} is a weekday: a make-up working day is a "
                                         "Saturday or Sunday", date=d.isoformat()))
                else:
                    workdays.append(d)
    for d in [*days, *workdays]:
        if year is not None and not _near(d, year):
            problems.append(Text("cal.other_year", "{date} is not in or near {year}",
                                 date=d.isoformat(), year=year))
        if d in seen:
            problems.append(Text("cal.twice", "{date} is named twice ({first})",
                                 date=d.isoformat(), first=seen[d]))
        else:
            seen[d] = str(name)
    return problems


def year_from_entry(entry: Mapping[str, Any]) -> CalendarYear:
    """A valid entry (``year_problems`` found nothing) as a :class:`CalendarYear`."""
    holidays = []
    for h in entry["holidays"]:
        start = parse_date(h["from"])
        end = parse_date(h["to"]) if h.get("to") is not None else start
        assert start is not None and end is not None
        workdays = tuple(sorted(d for v in h.get("workdays") or ()
                                if (d := parse_date(v)) is not None))
        holidays.append(Holiday(h["name"].strip(), start, end, workdays))
    return CalendarYear(int(entry["year"]), tuple(sorted(holidays, key=lambda h: h.start)),
                        str(entry.get("source") or "").strip())
