"""Decisions with their reason, answered from an index that casbin's model defines.

The semantics are exactly those of ``policies/model.conf`` (RBAC with
departments as domains, allow and explicit deny, deny wins), plus govgate's
default rule for requests no line matches:

    1. a matching ``deny`` line denies          (reason: that line)
    2. a matching ``allow`` line allows         (reason: that line)
    3. the system's own department is allowed   (reason: default rule)
    4. everything else is denied                (reason: default rule)

One deliberate difference from casbin: a **deny** line matches every spelling an
upstream reads as its path, not only its own letters. casbin's ``keyMatch`` compares
letter for letter, but an upstream that ignores letter case (the system's
``case_sensitive_paths: false``, the default), cuts a ``;`` path parameter (Tomcat),
drops trailing dots, spaces and slashes (Windows/IIS, Spring before 6, Django's
APPEND_SLASH) or reads ``.json`` as a format (old Spring, Rails) serves
``/s/echo/ADMIN``, ``/s/echo/admin/``, ``/s/echo/admin.`` or ``/s/echo/admin;x`` from
the handler of ``/s/echo/admin``. So, beside its letters, a deny line matches

    exact ``O``     a path whose reading is ``O``'s reading
    prefix ``P*``   a path whose letters folded (``catalogue.routes.fold``), or whose
                    reading, starts with ``P``'s complete segments read and its last,
                    partial one folded

where the reading is the catalogue's for routes (``catalogue.routes.loosen``: what
the catalogue calls resembling a route, and refuses), letter case kept when the
system tells it apart (``Query.case_sensitive``). **Allow** lines keep matching letter
for letter: a spelling that matches only an allow line when read loosely is not
allowed by it (fail closed). Likewise a ``GET`` deny line denies ``HEAD`` (servers
answer HEAD from their GET handler), while a ``GET`` allow line does not allow it.
For a path in its canonical spelling (the reading of every spelling, e.g. lower case,
no trailing ``/`` or ``.``), lines in theirs and a method other than HEAD, the
decisions are casbin's.

Calling casbin's ``enforce`` per request costs about 1 ms; here a request
looks up only the lines filed under its (department, subject) pairs, and
within those only the objects that can match its path (one dict lookup per
distinct pattern length, for its letters and, where deny lines are filed, its two
readings, computed once per decision), so the time does not grow with the number of
lines. Decisions are cached per index, keyed by everything they read (the system's
case flag too); a new index (after a policy change) starts with an empty cache.
``tests/policies`` checks the index against casbin's own ``enforce`` on random
policies.

Everything here is pure: no database, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalogue.routes import fold, loosen
from texts import Text, joined

ALLOW = "allow"
DENY = "deny"
EFFECTS = (ALLOW, DENY)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"})
SUBJECT_KINDS = ("role", "user", "client", "dept")
SUBJECT_RE = re.compile(r"^(role|user|client|dept):([A-Za-z0-9][A-Za-z0-9_.@:-]{0,127})\Z")
DEPARTMENT_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9_.-]{0,63})\Z")
OBJECT_RE = re.compile(r"^(\*|/s/\*|/s/[a-z0-9][a-z0-9_.-]{0,63}(/[^*\s]*)?\*?)\Z")
MAX_OBJECT = 500
MAX_REASON = 500  # an ungoverned line's reason
CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class PolicyLine:
    """One policy line: ``p, subject, department, object, action, effect``."""

    subject: str
    department: str
    object: str
    action: str
    effect: str = ALLOW
    id: int | None = None
    # why this line may open a system that publishes catalogue resources to another
    # department without the catalogue (``ungoverned: true``); None: it may not
    ungoverned: str | None = field(default=None, compare=False)

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.subject, self.department, self.object, self.action, self.effect)

    def casbin(self) -> list[str]:
        return list(self.key())

    def __str__(self) -> str:
        return "p, " + ", ".join(self.key())

    def describe(self) -> str:
        where = f"policy line {self.id}" if self.id is not None else "policy line"
        return f"{where}: {self}"

    def to_entry(self) -> dict[str, Any]:
        """The line as a state-file entry."""
        out: dict[str, Any] = {
            "subject": self.subject, "department": self.department, "object": self.object,
            "action": self.action,
        }
        if self.effect != ALLOW:
            out["effect"] = self.effect
        if self.ungoverned is not None:
            out["ungoverned"] = True
            out["reason"] = self.ungoverned
        return out


def line_problems(subject: Any, department: Any, obj: Any, action: Any, effect: Any) -> list[str]:
    """Why these values do not make a policy line; empty when they do."""
    problems: list[str] = []
    if not isinstance(subject, str) or not SUBJECT_RE.match(subject):
        problems.append(Text(
            "pol.subject", "subject {subject!r}: expected role:NAME, user:NAME, client:ID or "
            "dept:CODE", subject=subject))
    if not isinstance(department, str) or not DEPARTMENT_RE.match(department):
        problems.append(Text("pol.department",
                             "department {department!r}: expected a department code or '*'",
                             department=department))
    if (
        not isinstance(obj, str) or len(obj) > MAX_OBJECT or not OBJECT_RE.match(obj)
        or "*" in obj[:-1] or "//" in obj or "/./" in obj or "/../" in obj
        or obj.endswith(("/.", "/.."))
    ):
        problems.append(Text(
            "pol.object", "object {object!r}: expected '/s/SYSTEM/path', optionally ending in "
            "'*' (no other '*', no dot segments, no empty segments)", object=obj))
    if not isinstance(action, str) or action not in METHODS:
        problems.append(Text("pol.action", "action {action!r}: expected one of {known}",
                             action=action, known=", ".join(sorted(METHODS))))
    if effect not in EFFECTS:
        problems.append(Text("pol.effect", "effect {effect!r}: expected allow or deny",
                             effect=effect))
    return problems


def make_line(
    subject: str, department: str, obj: str, action: str, effect: str = ALLOW,
    id: int | None = None, *, ungoverned: str | None = None,
) -> PolicyLine:
    """A checked line; raises ValueError listing every problem."""
    action = action.upper() if isinstance(action, str) else action
    problems = line_problems(subject, department, obj, action, effect)
    if problems:
        raise ValueError(joined(problems))
    return PolicyLine(subject, department, obj, action, effect, id, ungoverned)


def subjects_for(
    *, username: str | None = None, client_id: str | None = None,
    roles: Iterable[str] = (), department: str | None = None,
) -> tuple[str, ...]:
    """Every subject string a caller holds (the g() links of the model)."""
    out = []
    if username:
        out.append(f"user:{username}")
    if client_id:
        out.append(f"client:{client_id}")
    out.extend(f"role:{r}" for r in sorted(set(roles)))
    if department:
        out.append(f"dept:{department}")
    return tuple(out)


@dataclass(frozen=True)
class Query:
    """A request as policy sees it."""

    subjects: tuple[str, ...]
    department: str  # the caller's department (the domain)
    object: str  # normalised path: /s/{system}/{path}
    action: str  # HTTP method
    owner: str | None = None  # the department that owns the system
    # the system's server tells path letters apart (``case_sensitive_paths``); False,
    # the system's default, makes deny lines match whatever the letter case
    case_sensitive: bool = False


@dataclass(frozen=True)
class Decision:
    """An answer and why. ``rule`` names what decided: "policy", "default" (and,
    once the catalogue extends ``decide``, "catalogue" or "grant")."""

    allowed: bool
    rule: str
    reason: str
    line: PolicyLine | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def outcome(self) -> str:
        return ALLOW if self.allowed else DENY


def reading(path: str, case_sensitive: bool) -> str:
    """``path`` as the laxest upstream reads it (``catalogue.routes.loosen``: letter case
    folded unless ``case_sensitive``, a ``;`` parameter, trailing dots, spaces and ``+``
    and a format suffix cut), its trailing slash kept."""
    parts = loosen(path, case_sensitive=case_sensitive)
    return "/" + "/".join(parts) + ("/" if parts and path.endswith("/") else "")


def _exact_key(path: str, case_sensitive: bool) -> str:
    """What an exact deny line and a request compare: the reading, trailing slashes
    (and a segment read as empty at the end: ``/admin/.json``) dropped."""
    return reading(path, case_sensitive).rstrip("/")


def _prefix_key(prefix: str, case_sensitive: bool) -> str:
    """A deny line's prefix (before its ``*``) as request readings are compared with
    it: its complete segments read as segments followed by more (no format suffix
    cut), its last, partial one only folded (``/s/echo/adm*`` still ends in ``adm``)."""
    cut = prefix.rfind("/") + 1
    head, partial = prefix[:cut], prefix[cut:]
    if head:
        parts = loosen(head + "_", case_sensitive=case_sensitive)[:-1]
        head = "/" + "/".join(parts) + ("/" if parts else "")
    return head + (partial if case_sensitive else fold(partial))


class _Filing:
    """Lines filed by their exact object, or by the prefix before their ``*``."""

    __slots__ = ("exact", "lengths", "prefix")

    def __init__(self) -> None:
        self.exact: dict[str, list[PolicyLine]] = {}
        self.prefix: dict[str, list[PolicyLine]] = {}
        self.lengths: tuple[int, ...] = ()

    def seal(self) -> None:
        self.lengths = tuple(sorted({len(p) for p in self.prefix}))

    def matches(self, exact: str, texts: Iterable[str]) -> Iterable[PolicyLine]:
        """The lines filed under ``exact``, and under a prefix of one of ``texts``
        (one dict lookup per distinct prefix length)."""
        hit = self.exact.get(exact)
        if hit:
            yield from hit
        for text in texts:
            n = len(text)
            for length in self.lengths:
                if length > n:
                    break
                hit = self.prefix.get(text[:length])
                if hit:
                    yield from hit


class _Denies(_Filing):
    """A bucket's deny lines filed by the reading of their object, for one case flag."""

    __slots__ = ()

    def add(self, line: PolicyLine, case_sensitive: bool) -> None:
        star = line.object.find("*")
        if star < 0:
            self.exact.setdefault(_exact_key(line.object, case_sensitive), []).append(line)
        else:
            key = _prefix_key(line.object[:star], case_sensitive)
            self.prefix.setdefault(key, []).append(line)


class _Spelt:
    """A request path's readings, made once per decision (``_Denies.matches``)."""

    __slots__ = ("exact", "prefixed")

    def __init__(self, obj: str, case_sensitive: bool) -> None:
        read = reading(obj, case_sensitive)
        self.exact = read.rstrip("/")
        self.prefixed = tuple(dict.fromkeys(
            (read,) if case_sensitive else (fold(obj), read)))


class _Bucket(_Filing):
    """The lines of one (department, subject) pair, filed by object (``matches``:
    letter for letter, casbin's keyMatch); its deny lines also by their readings
    (module docstring), one filing per case flag."""

    __slots__ = ("denies",)

    def __init__(self) -> None:
        super().__init__()
        # (letter case folded, letter case kept); None: no deny line here
        self.denies: tuple[_Denies, _Denies] | None = None

    def add(self, line: PolicyLine) -> None:
        star = line.object.find("*")
        if star < 0:
            self.exact.setdefault(line.object, []).append(line)
        else:
            # casbin keyMatch: everything before the first '*' is a prefix
            self.prefix.setdefault(line.object[:star], []).append(line)
        if line.effect == DENY:
            if self.denies is None:
                self.denies = (_Denies(), _Denies())
            self.denies[0].add(line, False)
            self.denies[1].add(line, True)

    def seal(self) -> None:
        super().seal()
        if self.denies is not None:
            for denies in self.denies:
                denies.seal()


def _literal(line: PolicyLine, obj: str) -> bool:
    """``line`` matches ``obj`` letter for letter (casbin's keyMatch)."""
    star = line.object.find("*")
    return line.object == obj if star < 0 else obj.startswith(line.object[:star])


class PolicyIndex:
    """An immutable index of policy lines at one version, with its decision cache."""

    def __init__(self, lines: Iterable[PolicyLine] = (), version: int = 0) -> None:
        self.version = version
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        count = 0
        for line in lines:
            bucket = self._buckets.get((line.department, line.subject))
            if bucket is None:
                bucket = self._buckets[(line.department, line.subject)] = _Bucket()
            bucket.add(line)
            count += 1
        for bucket in self._buckets.values():
            bucket.seal()
        self.size = count
        self._cache: dict[Query, Decision] = {}
        # the same decisions by the caller's own fields (decide_caller): a tuple's hash
        # and comparison instead of building, hashing and comparing a Query per request
        self._callers: dict[tuple[Any, ...], Decision] = {}

    def __len__(self) -> int:
        return self.size

    def matching(self, query: Query) -> list[PolicyLine]:
        """Every line that matches ``query``, each once, in no set order: casbin's
        matcher, and the deny lines of another spelling of the path (module
        docstring)."""
        out = []
        act = query.action
        # every server answers HEAD from its GET handler: a GET deny line denies it too
        denied_as = "GET" if act == "HEAD" else act
        spelt: _Spelt | None = None
        for dom in (query.department, "*"):
            for sub in query.subjects:
                bucket = self._buckets.get((dom, sub))
                if bucket is None:
                    continue
                for line in bucket.matches(query.object, (query.object,)):
                    if (line.action == "*" or line.action == act
                            or (line.action == denied_as and line.effect == DENY)):
                        out.append(line)
                if bucket.denies is not None:
                    if spelt is None:
                        spelt = _Spelt(query.object, query.case_sensitive)
                    denies = bucket.denies[query.case_sensitive]
                    for line in denies.matches(spelt.exact, spelt.prefixed):
                        if line.action == "*" or line.action == act or line.action == denied_as:
                            out.append(line)
        return list(dict.fromkeys(out)) if spelt is not None else out

    def decide(self, query: Query) -> Decision:
        hit = self._cache.get(query)
        if hit is not None:
            return hit
        decision = self._decide(query)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[query] = decision
        return decision

    def decide_caller(self, username: str | None, client_id: str | None,
                      roles: frozenset[str], department: str, obj: str, action: str,
                      owner: str | None, case_sensitive: bool = False) -> Decision:
        """``decide(Query(subjects_for(username=, client_id=, roles=, department=),
        department, obj, action, owner, case_sensitive))``, from a cache keyed by those
        fields."""
        key = (username, client_id, roles, department, obj, action, owner, case_sensitive)
        hit = self._callers.get(key)
        if hit is None:
            hit = self.decide(Query(subjects_for(username=username, client_id=client_id,
                                                 roles=roles, department=department),
                                    department, obj, action, owner, case_sensitive))
            if len(self._callers) >= CACHE_SIZE:
                self._callers.clear()
            self._callers[key] = hit
        return hit

    def _decide(self, query: Query) -> Decision:
        deny: PolicyLine | None = None
        allow: PolicyLine | None = None
        for line in self.matching(query):
            if line.effect == DENY:
                if deny is None or _order(line) < _order(deny):
                    deny = line
            elif allow is None or _order(line) < _order(allow):
                allow = line
        if deny is not None:
            why = f"deny by {deny.describe()}"
            if not _literal(deny, query.object):
                why += f" ({query.object!r} is another spelling of its path)"
            return Decision(False, "policy", why, deny)
        if allow is not None:
            return Decision(True, "policy", f"allow by {allow.describe()}", allow)
        if query.owner is not None and query.owner == query.department:
            return Decision(
                True, "default",
                f"allow by default rule: the system belongs to department {query.owner}",
            )
        return Decision(
            False, "default",
            "deny by default rule: no policy line allows it and the system belongs to "
            f"department {query.owner or '(unknown)'}, not {query.department}",
        )


def _order(line: PolicyLine) -> tuple[int, str]:
    return (line.id if line.id is not None else 1 << 62, str(line))


class PolicyEngine:
    """The current index; ``replace`` swaps in a new one atomically."""

    def __init__(self, lines: Sequence[PolicyLine] = (), version: int = 0) -> None:
        self._index = PolicyIndex(lines, version)

    @property
    def index(self) -> PolicyIndex:
        return self._index

    @property
    def version(self) -> int:
        return self._index.version

    def replace(self, lines: Iterable[PolicyLine], version: int) -> None:
        self._index = PolicyIndex(lines, version)

    def decide(self, query: Query) -> Decision:
        return self._index.decide(query)

    def decide_caller(self, username: str | None, client_id: str | None,
                      roles: frozenset[str], department: str, obj: str, action: str,
                      owner: str | None, case_sensitive: bool = False) -> Decision:
        """:meth:`PolicyIndex.decide_caller` on the current index."""
        return self._index.decide_caller(username, client_id, roles, department, obj,
                                         action, owner, case_sensitive)
