"""Brute-force references shared by the engine's property tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from decision.sessions import SESSION_GAP_US

Instant = tuple[int, bool, int]
"""``(timestamp_us, session_start, page_views)`` of one event."""

Sessionizer = Callable[[Iterable[Instant]], list[tuple[int, int, int]]]


def sessionize(instants: Iterable[Instant]) -> list[tuple[int, int, int]]:
    """Sessions ``(start, end, pages)`` by the README's definition, straight from the
    sorted distinct instants of the whole log."""
    by_instant: dict[int, list[int]] = {}
    for ts, starts, pages in instants:
        entry = by_instant.setdefault(ts, [0, 0])
        entry[0] |= starts
        entry[1] += pages
    found: list[list[int]] = []
    previous = None
    for ts in sorted(by_instant):
        starts, pages = by_instant[ts]
        if previous is None or starts or ts - previous > SESSION_GAP_US:
            found.append([ts, ts, pages])
        else:
            found[-1][1] = ts
            found[-1][2] += pages
        previous = ts
    return [(start, end, pages) for start, end, pages in found]


@pytest.fixture(scope="session")
def brute_sessions() -> Sessionizer:
    """The brute-force sessionizer (session-scoped: Hypothesis tests may use it)."""
    return sessionize
