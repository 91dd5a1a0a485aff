"""Benchmark for keys/: JWT sign and verify per second (ES256, RS256, EdDSA, SM2SM3) and
seal/open of 1 KiB per second (standard: AES-256-GCM, gm: SM4-GCM).

Run: ``python -m bench.bench_keys`` (``--seconds S`` per measurement, default 1).
Goes through the public KeyService API on a temporary SQLite database, so the
numbers include the ring lookup a real request pays.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from keys import GM, STANDARD, EnvMasterKey, KeyService
from keys.master import generate_master_key_text
from keys.tables import metadata


def _rate(fn: Callable[[], Any], seconds: float) -> float:
    fn()  # warm caches
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def run(seconds: float = 1.0) -> dict[str, dict[str, float]]:
    """Operations per second, keyed by case then operation."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        master = EnvMasterKey("MK", {"MK": generate_master_key_text()})
        for alg in ("ES256", "RS256", "EdDSA", "SM2SM3"):
            engine = sa.create_engine(f"sqlite:///{os.path.join(tmp, alg + '.db')}")
            metadata.create_all(engine)
            profile = GM if alg == "SM2SM3" else STANDARD  # SM2: the gm profile only
            svc = KeyService(engine, master, profile, default_alg=alg)
            use = "token"
            svc.bootstrap()
            assert svc.list_keys()[0].alg == alg
            claims = {"iss": "https://gw.example", "sub": "zhang.san", "aud": "vehicles",
                      "exp": 2_000_000_000, "iat": 1_900_000_000, "scope": "openid"}
            token = svc.sign_jwt(use, claims)
            kid, sig = svc.sign(use, b"x" * 64)
            results[f"JWT {alg}"] = {
                "sign/s": _rate(functools.partial(svc.sign_jwt, use, claims), seconds),
                "verify/s": _rate(functools.partial(svc.verify_jwt, use, token), seconds),
            }
            results[f"raw {alg}"] = {
                "sign/s": _rate(functools.partial(svc.sign, use, b"x" * 64), seconds),
                "verify/s": _rate(
                    functools.partial(svc.verify, use, kid, b"x" * 64, sig), seconds
                ),
            }
            engine.dispose()
        engine = sa.create_engine(f"sqlite:///{os.path.join(tmp, 'seal.db')}")
        metadata.create_all(engine)
        payload = os.urandom(1024)
        for profile in (STANDARD, GM):
            svc = KeyService(engine, master, profile)
            svc.bootstrap()
            blob = svc.seal(payload, "bench:1")
            results[f"1 KiB {profile.name} ({profile.cipher})"] = {
                "sign/s": _rate(functools.partial(svc.seal, payload, "bench:1"), seconds),
                "verify/s": _rate(functools.partial(svc.open, blob, "bench:1"), seconds),
            }
        engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    results = run(args.seconds)
    print(f"keys benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, single thread")
    print(f"{'case':<36} {'sign|seal /s':>14} {'verify|open /s':>15}")
    for case, r in results.items():
        print(f"{case:<36} {r['sign/s']:>14,.0f} {r['verify/s']:>15,.0f}")


if __name__ == "__main__":
    main()
