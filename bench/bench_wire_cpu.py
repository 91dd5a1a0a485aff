"""CPU of the server process per request, over the wire (loopback), short and bounded:

    .venv/bin/python bench/bench_wire_cpu.py [--seconds 3] [--connections 8] [--rounds 1]
                                             [--case c2|d|d3|e|e3 ...]
                                           [--assertion-alg EdDSA]

The servers of ``bench_proxy.py`` (same nginx upstream and configuration, same roles),
but what is measured is not requests per second (printed beside, for reference): it is
the CPU time (user + system, every thread) the one server process spent, read from
``/proc/<pid>/stat`` before and after a wrk run, divided by the requests wrk completed.
On a machine other engineers share that figure is far steadier than req/s, and (d) −
(c2) is then directly the CPU that govgate's security adds to a proxied request over its
own transport (issue #17's target: ≤ 100 µs). Cases:

    c2   govgate's transport alone (uvicorn + the upstream client, no checks)
    d    govgate proxy, bearer token, durable audit (SQLite)
    d3   the same for a system with ``assertion: per_caller``
    e    nginx auth_request -> govgate /auth/verify: govgate's CPU per request
    e3   the same for the per_caller system

With ``GOVGATE_AUDIT_INDEXER=process`` in the environment the gateway's audit indexer
runs as its child (docs/audit-journal.md); its CPU is printed apart. The child
inherits the server's pinning to CPU 0; ``--unpin-children`` lets it run on any core
(as it would on a gateway with cores to spare).

Needs nginx and wrk (each wrk run at most ``--seconds``, 10 at most).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_proxy  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def children_cpu(pid: int) -> float:
    """CPU seconds so far of the live children of ``pid`` (the audit indexer's process
    with ``GOVGATE_AUDIT_INDEXER=process``): counted apart from the server's."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):  # ended meanwhile
                total += sum(cpu_split(int(child)))
    return total


def switches(pid: int) -> int:
    """Context switches of process ``pid`` so far (its live threads, voluntary and not):
    each thread wake-up and GIL hand-over between its threads is one or more."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread ended meanwhile
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split()[1])
    return total


def unpin_children(pid: int) -> list[int]:
    """Let the live children of ``pid`` run on every core; returns their pids."""
    kids = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]
    for kid in kids:
        os.sched_setaffinity(kid, range(os.cpu_count() or 1))
    return kids


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> int:
    """Requests wrk completed in ``seconds`` (non-2xx answers refuse the run)."""
    cmd = [*bench_proxy.pin(1), str(bench_proxy.WRK), "-t1", f"-c{connections}",
           f"-d{seconds}s"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30,
                         check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"{url}: non-2xx answers\n{out}")
    found = re.search(r"(\d+) requests in", out)
    if found is None:
        raise RuntimeError(f"wrk said: {out}")
    return int(found.group(1))


def profile(pid: int, out: Path, seconds: int, rate: int = 250) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``; not a dependency) sampling ``pid`` for ``seconds``:
    the thread holding the GIL, where the one core goes."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds),
                             "--rate", str(rate), "--format", "raw", "--threads", "--gil",
                             "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each case this many times, print the median")
    parser.add_argument("--case", action="append", choices=("c2", "d", "d3", "e", "e3"))
    parser.add_argument("--profile", metavar="DIR",
                        help="also sample the server with py-spy during each case's last "
                             "round: DIR/<case>.txt, collapsed stacks (flamegraph input)")
    parser.add_argument("--profile-rate", type=int, default=250, metavar="HZ",
                        help="py-spy's samples a second (default 250)")
    parser.add_argument("--unpin-children", action="store_true",
                        help="the server's children (the audit indexer's process) on any "
                             "core, not pinned to the server's")
    parser.add_argument("--assertion-alg", choices=("ES256", "EdDSA", "RS256"),
                        help="the gateway's assertion key of this algorithm (default: the "
                             "ring's, ES256)")
    args = parser.parse_args()
    if args.assertion_alg:
        os.environ["GOVGATE_BENCH_ASSERTION_ALG"] = args.assertion_alg
    if not Path(bench_proxy.NGINX).exists() or bench_proxy.WRK is None:
        sys.exit("nginx and wrk are required")
    seconds = max(1, min(args.seconds, 10))
    rounds = max(1, min(args.rounds, 9))
    tmp = Path(tempfile.mkdtemp(prefix="govgate-wire-"))
    ports = {k: bench_proxy.free_port() for k in ("a", "b", "c", "t", "e", "f", "g")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        (tmp / "nginx.conf").write_text(bench_proxy.NGINX_CONF.format(
            tmp=tmp, body=bench_proxy.BODY, **ports))
        procs.append(subprocess.Popen([*bench_proxy.pin(0), bench_proxy.NGINX, "-p", str(tmp),
                                       "-c", str(tmp / "nginx.conf")]))
        token = bench_proxy.setup_govgate(tmp / "home", ports["a"])
        me = [sys.executable, str(ROOT / "bench" / "bench_proxy.py")]
        transport = subprocess.Popen([*bench_proxy.pin(0), *me, "--role", "transport",
                                      "--port", str(ports["t"]), "--upstream", str(ports["a"])])
        govgate = subprocess.Popen([*bench_proxy.pin(0), *me, "--role", "govgate", "--port",
                                    str(ports["g"]), "--home", str(tmp / "home")],
                                   env={**os.environ, "GOVGATE_HOME": str(tmp / "home")})
        procs += [transport, govgate]
        for key in ("a", "b", "e", "f", "t", "g"):  # "c", the aiohttp forwarder, not run
            bench_proxy.wait_port(ports[key])
        if args.unpin_children:
            print(f"children unpinned: {unpin_children(govgate.pid)}")
        auth = [f"Authorization: Bearer {token}"]
        cases = {
            "c2": ("(c2) govgate's transport alone", transport.pid,
                   f"http://127.0.0.1:{ports['t']}/api/x", []),
            "d": ("(d) govgate proxy", govgate.pid,
                  f"http://127.0.0.1:{ports['g']}/s/bench/api/x", auth),
            "d3": ("(d3) proxy, assertion per_caller", govgate.pid,
                   f"http://127.0.0.1:{ports['g']}/s/bench-pc/api/x", auth),
            "e": ("(e) nginx auth_request -> verify", govgate.pid,
                  f"http://127.0.0.1:{ports['e']}/api/x", auth),
            "e3": ("(e3) the same, per_caller", govgate.pid,
                   f"http://127.0.0.1:{ports['f']}/api/x", auth),
        }
        load = os.getloadavg()[0]
        print(f"server CPU per request over the wire, {seconds} s x {rounds}, "
              f"{args.connections} connections, load average {load:.2f}")
        for key in args.case or list(cases):
            name, pid, url, headers = cases[key]
            wrk(url, 1, args.connections, headers)  # warm-up
            figures = []
            for i in range(rounds):
                spy = (profile(pid, Path(args.profile) / f"{key}.txt", seconds, args.profile_rate)
                       if args.profile and i == rounds - 1 else None)
                user, system = cpu_split(pid)
                kids = children_cpu(pid)
                sw = switches(pid)
                n = wrk(url, seconds, args.connections, headers)
                sw = switches(pid) - sw
                if spy is not None:
                    spy.wait(seconds + 30)
                user2, system2 = cpu_split(pid)
                figures.append(((user2 + system2 - user - system) / n * 1e6,
                                (system2 - system) / n * 1e6,
                                (children_cpu(pid) - kids) / n * 1e6, n / seconds, sw / n))
            figures.sort()
            mid = figures[len(figures) // 2]
            apart = f", {mid[2]:.0f} in its children" if mid[2] else ""
            print(f"  {name:36s} {mid[0]:6.0f} us CPU/request ({mid[1]:.0f} in the kernel"
                  f"{apart})  ({', '.join(f'{f[0]:.0f}' for f in figures)}; "
                  f"{mid[3]:,.0f} req/s, {mid[4]:.2f} context switches a request)")
    finally:
        bench_proxy.stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
