"""Freed memory goes back to the system: the resident size of a server stays flat.

glibc serves a large allocation with its own ``mmap`` and unmaps it when freed, but
after the first such free it raises that threshold to the freed size (up to 32
MiB), so from then on blocks of that size come from the arenas and stay resident
when freed. Every password check (argon2id, ``gateway.passwords``) allocates 19
MiB in a thread of the pool: measured under a load run with sign-ins
(``bench/bench_load.py``, docs/BENCHMARKS.md), a server's resident memory climbed
from 127 MiB to 645 MiB and stayed there. With the threshold fixed, those blocks
are unmapped when the check ends and the server settled at 140 MiB after the same
run. Elsewhere than glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
LARGE_BLOCK_BYTES = 1024 * 1024


def return_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve allocations of ``threshold`` bytes or more by ``mmap`` from now on, and
    give them back when freed (setting it also stops glibc raising it). False where
    the C library has no ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
