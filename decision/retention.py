"""What a ruleset's activity clauses need kept per visitor, and keeping exactly that.

A compiled ruleset declares the activity it reads (``Ruleset.activity``, an
``ActivityNeeds``): per event type (or ``"session"``, the sessions derived from the
stream), the top-level properties its filters read, the longest relative window
(``horizon``) and the earliest start of an absolute window (``since``). The profile fold
takes that declaration as an argument and keeps, per declared type, the events that a
window of the rules can still reach, projected onto the properties read. An empty
declaration keeps nothing.

WHAT IS KEPT, for a type with horizon H and earliest absolute start S, when the
visitor's latest activity is L (``last_seen``): the newest ``MAX_EVENTS_PER_TYPE`` events
of the type whose timestamp is at or after ``threshold = min(L - H - CLOCK_SLACK, S)``.
That is exact for every evaluation at a ``now`` the service can see: ``now >= L -
CLOCK_SLACK`` (an event may be stamped up to 24 hours ahead of the clock, see
``decision.profile.MAX_FUTURE``), so a window reaching back H from ``now`` never reaches
before the threshold, and an absolute window never starts before S. The answers are
those of a scan of the event log as long as the visitor has at most
``MAX_EVENTS_PER_TYPE`` events of a type since the threshold; beyond that the oldest are
dropped first and a window reaching back to them counts only the kept ones.

ORDER INDEPENDENCE. The state holds a superset of that canonical set: an event is
dropped only when it is older than the threshold of the moment (the threshold only
rises with L) or when ``MAX_EVENTS_PER_TYPE`` newer events are kept (they qualify
whenever it does). ``render`` cuts the state down to the canonical set, so the rendered
activity does not depend on the order events arrived in. Events of equal timestamp are
ordered by their projected properties (as canonical JSON), so ties are canonical too.

THE RECORD. The state remembers the declaration it keeps events for (``"using"``) and
the one it is complete for (``"complete"``). When the fold is given another declaration
(after a publish), it re-projects what it keeps and stays complete only for the *meet*
of the two (types in both, properties in both, the shorter horizon, the later absolute
start): ``covers(state, needs)`` then says whether the state answers ``needs`` exactly
or needs a back-fill from the event log (``decision.profile.backfill``).

State (JSON, under ``"activity"`` in the profile state)::

    {"using": DECLARATION | null, "complete": DECLARATION | null,
     "events": {type: [[timestamp_us, ...], [properties, ...] | null]},
     "pruned": last_seen_us | null}

where a DECLARATION is ``[[type, [property, ...] | null, horizon_us, since_us | null],
...]`` (``ActivityNeeds.as_json``). ``using`` is null in a state that has folded nothing
yet (it is complete for any declaration); ``complete`` is null when it equals
``using`` (the usual case, so the declaration is stored once); the properties list is
null when the rules read no property of that type; ``pruned`` is when old events were
last dropped (at most hourly).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from decision.sessions import session_properties

__all__ = [
    "CLOCK_SLACK_US",
    "DAY_US",
    "MAX_EVENTS_PER_TYPE",
    "MAX_HISTORY_DAYS",
    "NO_ACTIVITY",
    "SESSION",
    "ActivityNeeds",
    "TypeNeeds",
    "covers",
    "new_activity",
    "prune",
    "render_activity",
    "retain",
    "use_needs",
]

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000

MAX_HISTORY_DAYS = 1100
"""Longest history a window may reach back: three years and a few days, enough for
"each of the last two years' Black Friday weeks" evaluated late in December."""

MAX_EVENTS_PER_TYPE = 1000
"""Most events of one declared type kept per visitor (the newest win)."""

CLOCK_SLACK_US = 24 * HOUR_US
"""How far ahead of the clock an event may be stamped (``decision.profile.MAX_FUTURE``,
repeated here because ``profile`` imports this module; a test keeps them equal)."""

SESSION = "session"
"""The activity type of the sessions derived from the stream (``decision.sessions``)."""


@dataclass(frozen=True, slots=True)
class TypeNeeds:
    """What the rules read of one activity type.

    ``properties``: top-level property names read (filters and sums); ``horizon``: the
    longest relative window, in microseconds (0: none); ``since``: the earliest start of
    an absolute window, in microseconds since 1970 (None: none).
    """

    properties: frozenset[str] = frozenset()
    horizon: int = 0
    since: int | None = None
    ordered: tuple[str, ...] = field(default=(), init=False, compare=False, repr=False)
    """``properties`` sorted: the order kept properties are written in."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ordered", tuple(sorted(self.properties)))

    def merge(self, other: TypeNeeds) -> TypeNeeds:
        """What both need: every property, the longer horizon, the earlier start."""
        since = self.since if other.since is None else other.since
        if self.since is not None and other.since is not None:
            since = min(self.since, other.since)
        return TypeNeeds(
            self.properties | other.properties, max(self.horizon, other.horizon), since
        )


@dataclass(frozen=True, slots=True)
class ActivityNeeds:
    """The activity a ruleset reads, per type (an event type or ``"session"``).

    Immutable; ``record`` is a canonical form (types sorted), ``as_json`` the form a
    profile state stores.
    """

    types: Mapping[str, TypeNeeds] = field(default_factory=lambda: MappingProxyType({}))
    record: tuple[tuple[str, tuple[str, ...] | None, int, int | None], ...] = ()
    _json: list[list[Any]] = field(default_factory=list, compare=False, repr=False)

    @staticmethod
    def of(types: Mapping[str, TypeNeeds]) -> ActivityNeeds:
        """The declaration of ``types`` (copied; sorted for a canonical record)."""
        ordered = {name: types[name] for name in sorted(types)}
        record = tuple(
            (name, tuple(sorted(need.properties)) or None, need.horizon, need.since)
            for name, need in ordered.items()
        )
        as_json = [
            [name, None if props is None else list(props), horizon, since]
            for name, props, horizon, since in record
        ]
        return ActivityNeeds(MappingProxyType(ordered), record, as_json)

    def merge(self, other: ActivityNeeds) -> ActivityNeeds:
        """A declaration that needs everything either of the two needs."""
        if not other.types:
            return self
        if not self.types:
            return other
        merged = dict(self.types)
        for name, need in other.types.items():
            merged[name] = merged[name].merge(need) if name in merged else need
        return ActivityNeeds.of(merged)

    def __bool__(self) -> bool:
        return bool(self.types)

    @property
    def longest_days(self) -> float:
        """The longest relative window of any type, in days."""
        return max((need.horizon for need in self.types.values()), default=0) / DAY_US

    def as_json(self) -> list[list[Any]]:
        """The declaration as plain JSON lists (a fresh copy, as a state stores it)."""
        return [
            [name, None if props is None else list(props), horizon, since]
            for name, props, horizon, since in self._json
        ]

    def is_stored_as(self, value: Any) -> bool:
        """Whether ``value`` is this declaration as a state stores it (cheap: no copy)."""
        return bool(value == self._json)


NO_ACTIVITY = ActivityNeeds()
"""The empty declaration: nothing is kept."""


def _from_record(record: list[list[Any]]) -> dict[str, TypeNeeds]:
    return {
        name: TypeNeeds(frozenset(props or ()), horizon, since)
        for name, props, horizon, since in record
    }


# -- the state -------------------------------------------------------------------------


def new_activity() -> dict[str, Any]:
    """The activity part of an empty profile state."""
    return {"using": None, "complete": None, "events": {}, "pruned": None}


def use_needs(activity: dict[str, Any], needs: ActivityNeeds, last_seen: int | None) -> None:
    """Make ``needs`` the declaration the state keeps events for (before ``retain``).

    A fresh state takes it as is and is complete for it. Otherwise what is kept is cut
    to ``needs`` (types, properties, threshold), and the state stays complete only for
    the meet of what it was complete for and ``needs``.
    """
    using = activity["using"]
    if needs.is_stored_as(using):
        return
    activity["using"] = needs.as_json()
    if using is None:
        return  # fresh: complete for what it now keeps
    complete = activity["complete"] if activity["complete"] is not None else using
    events: dict[str, list[Any]] = activity["events"]
    for name in [name for name in events if name not in needs.types]:
        del events[name]
    for name, entries in events.items():
        need = needs.types[name]
        if not need.properties:
            entries[1] = None
        elif entries[1] is None:
            entries[1] = [{} for _ in entries[0]]
        else:
            entries[1] = [_project(props, need.ordered) for props in entries[1]]
        if last_seen is not None:
            _drop_before(entries, _threshold(need, last_seen))
    had = _from_record(complete)
    meet: dict[str, TypeNeeds] = {}
    for name, need in needs.types.items():
        old = had.get(name)
        if old is None:
            continue
        # An absolute window's events are all there only if both kept them all along.
        since = None
        if old.since is not None and need.since is not None:
            since = max(old.since, need.since)
        meet[name] = TypeNeeds(
            old.properties & need.properties, min(old.horizon, need.horizon), since
        )
    met = ActivityNeeds.of(meet)
    activity["complete"] = None if met.record == needs.record else met.as_json()


def covers(activity: Mapping[str, Any], needs: ActivityNeeds) -> bool:
    """Whether the state holds every event ``needs`` can read, so that its answers are
    exact without a back-fill from the event log."""
    if activity["using"] is None:
        return True  # it has folded nothing yet
    complete = activity["complete"]
    have = _from_record(complete if complete is not None else activity["using"])
    for name, need in needs.types.items():
        had = have.get(name)
        if had is None or not need.properties <= had.properties or need.horizon > had.horizon:
            return False
        if need.since is not None and (had.since is None or need.since < had.since):
            return False
    return True


def retain(
    activity: dict[str, Any],
    kind: str,
    ts: int,
    properties: Mapping[str, Any],
    needs: ActivityNeeds,
    last_seen: int,
) -> None:
    """Keep one event of ``kind`` at ``ts`` if ``needs`` reads that type (``needs`` is
    the declaration last given to ``use_needs``)."""
    need = needs.types.get(kind)
    if need is None:
        return
    threshold = _threshold(need, last_seen)
    if ts < threshold:
        return
    events: dict[str, list[Any]] = activity["events"]
    entries = events.get(kind)
    if entries is None:
        entries = events[kind] = [[], [] if need.properties else None]
    times: list[int] = entries[0]
    kept: list[Any] | None = entries[1]
    props = _project(properties, need.ordered) if need.properties else None
    if not times or ts > times[-1]:  # the usual case: newer than everything kept
        times.append(ts)
        if kept is not None:
            kept.append(props)
        if times[0] < threshold:
            _drop_before(entries, threshold)
        if len(times) > MAX_EVENTS_PER_TYPE:
            _drop_oldest(entries)
        return
    at = bisect.bisect_right(times, ts)
    if at and times[at - 1] == ts and kept is not None:
        # Equal timestamps: order by the properties' canonical JSON, not by arrival.
        key = _key(props)
        start = bisect.bisect_left(times, ts)
        at = start
        while at < len(times) and times[at] == ts and _key(kept[at]) <= key:
            at += 1
    times.insert(at, ts)
    if kept is not None:
        kept.insert(at, props)
    _drop_before(entries, threshold)
    if len(times) > MAX_EVENTS_PER_TYPE:
        _drop_oldest(entries)


def _drop_oldest(entries: list[Any]) -> None:
    excess = len(entries[0]) - MAX_EVENTS_PER_TYPE
    del entries[0][:excess]
    if entries[1] is not None:
        del entries[1][:excess]


def prune(activity: dict[str, Any], needs: ActivityNeeds, last_seen: int) -> None:
    """Drop what no window can reach any more. Memory only (``render`` cuts anyway), so
    done at most once an hour of the visitor's time."""
    pruned = activity["pruned"]
    if pruned is not None and last_seen - pruned < HOUR_US:
        return
    activity["pruned"] = last_seen
    for name, entries in activity["events"].items():
        need = needs.types.get(name)
        if need is not None:
            _drop_before(entries, _threshold(need, last_seen))


def render_activity(
    activity: Mapping[str, Any],
    last_seen: int | None,
    sessions: Sequence[Sequence[int]] = (),
) -> dict[str, Any]:
    """The canonical kept events, as the profile document's ``activity`` field:
    ``{type: {"t": [timestamp_us, ...], "p": [properties, ...] | null}}``.

    ``sessions`` are the ``(start, end, pages)`` sessions not closed yet (in
    ``decision.sessions``' state), newer than the kept ones.
    """
    using = activity["using"]
    if not using or last_seen is None:
        return {}
    rendered: dict[str, Any] = {}
    stored: Mapping[str, list[Any]] = activity["events"]
    for name, names, horizon, since in using:
        entries = stored.get(name)
        if entries is None and not (sessions and name == SESSION):
            continue
        threshold = last_seen - horizon - CLOCK_SLACK_US
        if since is not None and since < threshold:
            threshold = since
        times: list[int] = entries[0] if entries is not None else []
        kept: list[Any] = entries[1] if entries is not None and names else []
        if name == SESSION and sessions:
            times = times + [session[0] for session in sessions]
            if names:
                kept = kept + [_project(session_properties(*s), names) for s in sessions]
        start = max(bisect.bisect_left(times, threshold), len(times) - MAX_EVENTS_PER_TYPE)
        if start < len(times):
            rendered[name] = {"t": times[start:], "p": kept[start:] if names else None}
    return rendered


def _threshold(need: TypeNeeds, last_seen: int) -> int:
    threshold = last_seen - need.horizon - CLOCK_SLACK_US
    if need.since is not None and need.since < threshold:
        return need.since
    return threshold


def _drop_before(entries: list[Any], threshold: int) -> None:
    times: list[int] = entries[0]
    if times and times[0] < threshold:
        cut = bisect.bisect_left(times, threshold)
        del times[:cut]
        if entries[1] is not None:
            del entries[1][:cut]


def _project(properties: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    # ``names`` sorted: the same keys in the same order in every process.
    return {name: properties[name] for name in names if name in properties}


def _key(properties: Any) -> str:
    return json.dumps(properties, sort_keys=True, separators=(",", ":"))
