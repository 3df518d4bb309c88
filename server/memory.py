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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["MMAP_THRESHOLD", "fix_mmap_threshold"]

logger = logging.getLogger("decide.server")

MMAP_THRESHOLD = 128 * 1024
"""glibc's default threshold, kept fixed instead of rising."""

_M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>


def fix_mmap_threshold(environ: dict[str, str] | None = None) -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD``; True when it was set.

    Does nothing off Linux, on a C library without ``mallopt`` (musl), or when the
    operator chose a threshold with glibc's own ``MALLOC_MMAP_THRESHOLD_`` variable.
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in env:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        logger.warning("could not fix malloc's mmap threshold", extra={"event": "mallopt_failed"})
        return False
    return True
