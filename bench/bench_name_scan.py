"""The CPU a shaped request's query check costs in process (not a test: run it).

    PYTHONPATH=$PWD python bench/bench_name_scan.py [--rounds 5]

What ``gateway.proxy.catalogue._check_query`` runs for czt on the demo's JG-0001
(``catalogue_names.checked`` over ``catalogue.query.refusal``: the route's names, then
``catalogue.request_names`` reading every name and value for items not given in the
clear), per request, for the queries real consumers send; ``time.thread_time`` loops,
the median of ``--rounds``. Run it on two checkouts to compare.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

import yaml

from catalogue.decision import CatalogueDecision
from catalogue.model import resource_from_entry
from catalogue.query import refusal
from gateway.demo import DEMO_STATE
from gateway.proxy import catalogue_names

QUERIES = [
    "",
    "page=1&per_page=20",
    "page=2&per_page=20&sort=-plate_number",
    "plate_number=eq.%E6%A1%82A%C2%B7G1024",
    "brand=like.%E7%BA%A2%E6%97%97*&limit=50&offset=100&order=plate_number.asc",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loops", type=int, default=20000)
    args = parser.parse_args()
    doc = yaml.safe_load(Path(DEMO_STATE).read_text(encoding="utf-8"))
    resource = resource_from_entry(next(e for e in doc["catalogue"] if e["code"] == "JG-0001"))
    found = CatalogueDecision(True, "grant", "JG-0001", "grant", items=(
        "plate_number", "brand", "driver_name", "driver_phone"))
    check = getattr(catalogue_names, "checked_query", None) or (
        lambda r, f, q: catalogue_names.checked(r, f, functools.partial(
            refusal, q, r.route.query)))  # a checkout from before checked_query
    # the same query each time (a list polled), a new page each time, all new
    cases = [(q, [q]) for q in QUERIES] + [
        ("page=<n>&per_page=20&sort=-plate_number (a new page each time)",
         [f"page={n}&per_page=20&sort=-plate_number" for n in range(args.loops)]),
        ("plate_number=eq.<n>&brand=like.<n> (nothing seen before)",
         [f"plate_number=eq.G{n}&brand=like.B{n}" for n in range(args.loops)])]
    for shown, queries in cases:
        rounds = []
        for _ in range(args.rounds):
            started = time.thread_time()
            for n in range(args.loops):
                why, _named = check(resource, found, queries[n % len(queries)])
                assert why is None
            rounds.append((time.thread_time() - started) / args.loops * 1e6)
        print(f"{statistics.median(rounds):6.2f} µs  {shown or '(none)'}")


if __name__ == "__main__":
    main()
