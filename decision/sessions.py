"""Sessions and engagement derived from the event stream, folded in any arrival order.

DEFINITION. A visitor's *activity* is every event except ``return`` (sent by a
warehouse, not done on the site) and ``set_attributes`` (a shop's write). Its distinct
timestamps, the *instants*, are split into sessions: a session begins at the first
instant, at an instant more than ``SESSION_GAP_US`` (30 minutes) after the previous
one, and at an instant holding a ``session_start`` event. Events of one instant share a
session, so two ``session_start`` events stamped alike begin one session, and a
``page_view`` stamped like its ``session_start`` belongs to the session it starts. A
session lasts from its first instant to its last (a single instant: 0). Page views are
``page_view`` and ``product_view`` events (send one of the two per page).

Rendered under ``engagement``: ``sessions``, ``page_views``, ``time_on_site`` (the sum
of the sessions' durations, seconds), ``pages_per_session`` and ``last_session``
(``pages``, its depth, and ``duration``). The last session's start and end are left out:
formatting two more timestamps would cost a tenth of the whole fold, and ``last_seen``
already says when the visitor was last active.

THE STATE. Exactness in any order needs the instants themselves: a ``session_start``
that arrives late for an instant inside a known session splits it, and where the first
part ends and how many pages each part holds depend on the instants in between. So the
state keeps the recent instants in full, the *timeline* (per instant: page views, and
whether a session starts there), and compacts older ones:

- an instant is compacted once it is more than ``DETAIL_WINDOW_US`` (3 days) older
  than the visitor's latest event, or when more than ``MAX_INSTANTS`` (1000) instants
  are kept; the oldest goes first;
- compacting folds the instant into the *open* session (start, pages; its end is the
  *cut*, the latest compacted instant), first closing the open session into the totals
  (sessions, duration, pages) when the instant begins a new session.

Rendering sessionizes the timeline after the open session; the figures do not depend on
where the cut is, so compacting earlier or later gives the same profile.

THE BOUND. An event at or before the cut cannot be placed exactly: its neighbouring
instants are gone. ``observe`` then returns None and the profile asks for a rebuild from
the event log (``decision.profile.needs_rebuild``). Every compacted instant is more than
3 days older than the visitor's latest event (or older than 1000 later instants), so an
event at most 3 days older than the visitor's latest event is always folded exactly,
and an older one too unless some activity between it and the 3-day line arrived before
it did. A sorted rebuild never compacts the instant it is folding, so it never asks.
Memory: at most 1000 instants (two integers each) and seven numbers per visitor.

Rendering needs only the sessions, not the instants, so the state also keeps the
sessions not yet closed (``sessions_of``) as a list: an event after every other, the
usual case, extends or appends the last one; anything else recounts them from the
timeline.

State (JSON, under ``"engagement"`` in the profile state)::

    {"t": [instant_us, ...], "c": [2 * page_views + starts_session, ...],
     "cut": instant_us | null, "open": [start_us, pages] | null,
     "done": [sessions, duration_us, pages], "s": [[start_us, end_us, pages], ...]}
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "DETAIL_WINDOW_US",
    "MAX_INSTANTS",
    "NOT_ACTIVITY",
    "PAGE_TYPES",
    "SESSION_GAP_US",
    "Session",
    "new_engagement",
    "observe",
    "render_engagement",
    "session_properties",
    "sessions_of",
]

SESSION_GAP_US = 30 * 60 * 1_000_000
"""Inactivity after which the next event begins a new session: 30 minutes."""

DETAIL_WINDOW_US = 3 * 86_400_000_000
"""How long instants stay in full detail behind the visitor's latest event: 3 days.
An event later than that (by the visitor's own clock) asks for a rebuild."""

MAX_INSTANTS = 1000
"""Most instants kept in full detail per visitor."""

NOT_ACTIVITY = frozenset({"return", "set_attributes", "campaign_served"})
"""Event types that are not the visitor's activity on the site."""

PAGE_TYPES = frozenset({"page_view", "product_view"})
"""Event types that count as a page view."""

Session = tuple[int, int, int]
"""``(start_us, end_us, pages)``."""

_NOTHING_CLOSED: tuple[Session, ...] = ()


def new_engagement() -> dict[str, Any]:
    """The engagement part of an empty profile state."""
    return {"t": [], "c": [], "cut": None, "open": None, "done": [0, 0, 0], "s": []}


def observe(
    engagement: dict[str, Any],
    ts: int,
    starts_session: bool,
    page_views: int,
    last_seen: int,
    *,
    detail_window: int = DETAIL_WINDOW_US,
    max_instants: int = MAX_INSTANTS,
) -> tuple[Session, ...] | None:
    """Fold one activity event at ``ts`` (microseconds); ``last_seen`` is the visitor's
    latest event including this one.

    Returns the sessions that compaction closed (oldest first), or None when ``ts`` is at
    or before the cut: the event cannot be placed and the state needs a rebuild.
    ``detail_window`` and ``max_instants`` are the bounds (tests make them small).
    """
    cut = engagement["cut"]
    if cut is not None and ts <= cut:
        return None
    times: list[int] = engagement["t"]
    codes: list[int] = engagement["c"]
    recent: list[list[int]] = engagement["s"]
    at = bisect.bisect_left(times, ts)
    if at < len(times) and times[at] == ts:
        known = codes[at]
        codes[at] = known + 2 * page_views + (starts_session and not known & 1)
        if starts_session and not known & 1:
            _recount(engagement)  # a new session start inside the timeline: rare
        else:
            for session in reversed(recent):
                if session[0] <= ts:
                    session[2] += page_views
                    break
    else:
        times.insert(at, ts)
        codes.insert(at, 2 * page_views + starts_session)
        if at == len(times) - 1:
            # The usual case, an event after all others: extend or begin the last session.
            last = recent[-1] if recent else None
            if last is None or starts_session or ts - last[1] > SESSION_GAP_US:
                recent.append([ts, ts, page_views])
            else:
                last[1] = ts
                last[2] += page_views
        else:
            _recount(engagement)
    oldest = last_seen - detail_window
    if times[0] >= oldest and len(times) <= max_instants:
        return _NOTHING_CLOSED
    return _compact(engagement, oldest, max_instants)


def _recount(engagement: dict[str, Any]) -> None:
    engagement["s"] = [list(session) for session in sessions_of(engagement)]


def _compact(engagement: dict[str, Any], oldest: int, max_instants: int) -> tuple[Session, ...]:
    times: list[int] = engagement["t"]
    codes: list[int] = engagement["c"]
    count = bisect.bisect_left(times, oldest)
    count = max(count, len(times) - max_instants)
    closed: list[Session] = []
    opened = engagement["open"]
    cut = engagement["cut"]
    done = engagement["done"]
    for ts, code in zip(times[:count], codes[:count], strict=True):
        pages = code >> 1
        if opened is None or code & 1 or ts - cut > SESSION_GAP_US:
            if opened is not None:
                done[0] += 1
                done[1] += cut - opened[0]
                done[2] += opened[1]
                closed.append((opened[0], cut, opened[1]))
            opened = [ts, pages]
        else:
            opened[1] += pages
        cut = ts
    del times[:count]
    del codes[:count]
    engagement["open"] = opened
    engagement["cut"] = cut
    # Compacting changes no session, it closes the oldest: they leave the recent list.
    del engagement["s"][: len(closed)]
    return tuple(closed)


def sessions_of(engagement: Mapping[str, Any]) -> Iterator[Session]:
    """The sessions not yet closed into the totals: the open one (continued by the
    timeline if it goes on there) and the timeline's, oldest first."""
    current: list[int] | None = None
    opened = engagement["open"]
    if opened is not None:
        current = [opened[0], engagement["cut"], opened[1]]
    for ts, code in zip(engagement["t"], engagement["c"], strict=True):
        if current is None or code & 1 or ts - current[1] > SESSION_GAP_US:
            if current is not None:
                yield current[0], current[1], current[2]
            current = [ts, ts, code >> 1]
        else:
            current[1] = ts
            current[2] += code >> 1
    if current is not None:
        yield current[0], current[1], current[2]


def session_properties(start: int, end: int, pages: int) -> dict[str, Any]:
    """A session's properties as activity clauses see them: ``pages``, ``duration``."""
    return {"duration": (end - start) / 1_000_000, "pages": pages}


def render_engagement(engagement: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``engagement`` field of the profile document (None: no activity)."""
    recent = engagement["s"]
    if not recent:
        return None
    sessions, duration, pages = engagement["done"]
    sessions += len(recent)
    for start, end, count in recent:
        duration += end - start
        pages += count
    start, end, count = recent[-1]
    return {
        "sessions": sessions,
        "page_views": pages,
        "time_on_site": duration / 1_000_000,
        "pages_per_session": pages / sessions,
        "last_session": {"pages": count, "duration": (end - start) / 1_000_000},
    }
