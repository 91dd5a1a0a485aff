"""The packages import downwards only, and no module imports itself round a cycle.

Every import is read from the source (nested and type-only ones too), so a cycle
hidden inside a function or behind ``TYPE_CHECKING`` fails here as well. The
layers, bottom up (docs/architecture.md):

    texts, statedoc          messages by key; the state document's YAML reader and
                             planned change; import nothing of ours
    keys, audit, policies,   the pure cores; never the gateway
    catalogue
    gateway core             settings, storage, tables, errors, org, services, ...
    gateway.idp              who is calling: OAuth 2.0 / OIDC, CAS, authenticator
    gateway.proxy            admission, forwarding, shaping, forward-auth
    gateway wiring           the state file, the lower packages' wiring, the
                             composition root (gateway.root), migrations, the
                             administrators' operations (gateway.admin), referral rounds
                             (gateway.referrals), the compliance checks (gateway.compliance),
                             the directory sync (gateway.directory)
    gateway.web              every page and HTTP endpoint but the proxy's
    gateway.app              create_app
    gateway.cli              the command line (and the demo it starts)

``govgate_upstream`` (the verifier upstream systems install) and ``gateway.demo``
(the demo's upstream systems) import nothing of the gateway's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("texts", "statedoc", "keys", "audit", "policies", "catalogue", "gateway",
        "govgate_upstream")
LOWER = ("keys", "audit", "policies", "catalogue")
WIRING = {"gateway.statefile", "gateway.catalogue_wiring", "gateway.policy_wiring",
          "gateway.setup", "gateway.root"}
ORDER = ["texts", "lower", "core", "idp", "proxy", "wiring", "web", "app", "cli"]


def _modules() -> dict[str, Path]:
    found = {"govgate_upstream": ROOT / "govgate_upstream.py"}
    for package in OURS[:-1]:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every first-party module ``path`` imports (the longest name that is a module)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES:
                yield name, node.lineno
                if isinstance(node, ast.ImportFrom):
                    break


def layer(module: str) -> str:
    top, _, rest = module.partition(".")
    if top in LOWER:
        return "lower"
    if top in ("texts", "statedoc"):
        return "texts"
    if top == "govgate_upstream":
        return top
    sub = rest.split(".", 1)[0]
    if module in WIRING or sub in ("migrations", "admin", "referrals", "compliance",
                                   "directory"):
        return "wiring"
    if sub in ("idp", "proxy", "web", "cli", "demo"):
        return sub
    if sub == "app":
        return "app"
    return "core"


def _edges() -> dict[str, list[tuple[str, int]]]:
    return {m: sorted(set(_imports(p))) for m, p in MODULES.items()}


def test_every_import_goes_down() -> None:
    wrong = []
    for module, targets in _edges().items():
        here = layer(module)
        for target, line in targets:
            there = layer(target)
            if target == module:
                continue
            if here in ("govgate_upstream", "demo") and target.startswith(("gateway", "texts")) \
                    and not target.startswith("gateway.demo"):
                wrong.append(f"{module}:{line} imports {target} ({here} stands alone)")
            elif here == "lower" and target.startswith("gateway"):
                wrong.append(f"{module}:{line} imports {target} (a lower package)")
            elif here == "texts" and target.split(".")[0] != module.split(".")[0]:
                wrong.append(f"{module}:{line} imports {target} (the bottom imports no other)")
            elif here in ORDER and there in ORDER and ORDER.index(there) > ORDER.index(here):
                wrong.append(f"{module}:{line} ({here}) imports {target} ({there})")
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = {m: [t for t, _ in targets if t != m and not m.startswith(t + ".")]
             for m, targets in _edges().items()}
    assert _cycles(graph) == []


def test_the_walk_sees_what_it_judges() -> None:
    """The checks above would pass on an empty walk: they must see the real tree."""
    edges = _edges()
    assert ("gateway.root", layer("gateway.root")) == ("gateway.root", "wiring")
    assert any(t == "gateway.proxy.endpoint" for t, _ in edges["gateway.root"])
    assert layer("gateway.web.portal.routes") == "web"
    assert layer("gateway.idp.oauth2.server") == "idp"
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert len(MODULES) > 100
