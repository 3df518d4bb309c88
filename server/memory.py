"""Process-wide memory settings for long-running servers.

glibc's malloc serves blocks above ``M_MMAP_THRESHOLD`` with their own ``mmap`` and
gives them back on free, but by default it raises that threshold every time such a
block is freed (the "dynamic mmap threshold"). A server that keeps allocating short-lived
buffers of a few hundred KiB (SQLite statements over growing tables, batched exposure
rows, protobuf messages) then gets them from the heap instead, between long-lived
objects, and the heap grows without bound while the memory in use stays flat. Measured
on ``decide serve --demo`` under ``decide loadtest``: malloc's in-use bytes flat at
~17 MB, Python's traced heap flat at ~3 MB, SQLite's flat at ~5 MB, yet the main arena
grew 13 -> 50 MB in 4 minutes (free chunks it could not reuse); with the threshold
fixed at its default of 128 KiB the arena stayed at 26-28 MB.

The thread arenas fragment the same way: glibc gives up to eight per core, one for each
busy thread. Two arenas cut the remaining growth of ``decide serve --demo`` under
loadtest from ~2.9 to ~1 MB a minute over the same minutes (52 -> 55 MB anonymous in
3.5 minutes), with no measurable cost: the threads mostly wait for the GIL anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["ARENA_MAX", "MMAP_THRESHOLD", "tune_malloc"]

logger = logging.getLogger("decide.server")

MMAP_THRESHOLD = 128 * 1024
"""glibc's default threshold, kept fixed instead of rising."""

ARENA_MAX = 2
"""malloc arenas for the whole process (glibc's default: eight per core)."""

_M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
_M_ARENA_MAX = -8


def tune_malloc(environ: dict[str, str] | None = None) -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD`` and cap its arenas at
    ``ARENA_MAX``; True when anything was set. Call it before starting threads.

    Does nothing off Linux or on a C library without ``mallopt`` (musl); each setting
    is left alone when the operator chose it with glibc's own variable
    (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_ARENA_MAX``).
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    changed = False
    for variable, option, value in (
        ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_ARENA_MAX", _M_ARENA_MAX, ARENA_MAX),
    ):
        if variable in env:
            continue
        if mallopt(option, value) != 1:
            logger.warning("mallopt refused %s", variable, extra={"event": "mallopt_failed"})
            continue
        changed = True
    return changed
