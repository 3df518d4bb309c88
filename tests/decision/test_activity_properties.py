"""Property tests of activity clauses: for random event logs, windows and ``now``, a clause
evaluated on the folded profile agrees with a brute-force scan of the event log, whatever
order the events arrived in."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decision import Event, compile_filter
from decision.profile import apply, needs_rebuild, new_state, rebuild, render
from decision.retention import ActivityNeeds

BASE = datetime(2026, 3, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TYPES = ["product_view", "purchase", "add_to_cart", "page_view", "session_start"]
_PAGES = ("page_view", "product_view")


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _props(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(fields).map(
        lambda d: {key: value for key, value in d.items() if value is not None}
    )


_money = st.one_of(st.integers(0, 300), st.sampled_from([9.99, 0.1, 0.2, 49.5, 120.25]))
_PROPERTIES = {
    "product_view": _props(
        sku=st.sampled_from(["a", "b", "c"]),
        category=_maybe(st.sampled_from(["shoes", "bags"])),
        price=_maybe(_money),
    ),
    "purchase": _props(
        order_id=st.sampled_from(["o1", "o2", "o3", "o4"]), value=_money, articles=st.just(1)
    ),
    "add_to_cart": _props(sku=st.sampled_from(["a", "b"])),
    "page_view": _props(page_type=_maybe(st.sampled_from(["sale", "home"]))),
    "session_start": st.just({}),
}


@st.composite
def event_logs(draw: st.DrawFn, size: int = 50) -> list[Event]:
    """Events of a few types with distinct ids, dense or spread over up to 120 days,
    equal timestamps included."""
    span = draw(st.sampled_from([2 * 3600, 5 * 86400, 120 * 86400]))  # seconds
    events = []
    for index in range(draw(st.integers(0, size))):
        kind = draw(st.sampled_from(_TYPES))
        seconds = draw(st.integers(0, span))
        micros = draw(st.sampled_from([0, 0, 1, 999_999]))
        moment = BASE + timedelta(seconds=seconds, microseconds=micros)
        events.append(Event(f"e-{index}", "v", kind, moment, draw(_PROPERTIES[kind])))
    return events


_WHERE = {
    "product_view": st.sampled_from(
        [None, {"category": "shoes"}, {"price": {"$lt": 50}}, {"category": {"$ne": "bags"}}]
    ),
    "purchase": st.sampled_from(
        [None, {"value": {"$gte": 20}}, {"order_id": {"$in": ["o1", "o2"]}}]
    ),
    "add_to_cart": st.sampled_from([None, {"sku": "a"}]),
    "page_view": st.sampled_from([None, {"page_type": "sale"}]),
    "session_start": st.just(None),
    "session": st.sampled_from([None, {"pages": {"$gte": 1}}, {"duration": {"$gt": 0}}]),
}
_SUMMABLE = {"product_view": "price", "purchase": "value", "session": "duration"}
_OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]


@st.composite
def relative_windows(draw: st.DrawFn) -> dict[str, Any]:
    """``timestamp`` conditions from now: a lower bound and sometimes an upper one."""
    unit = draw(st.sampled_from(["$daysAgo", "$hoursAgo"]))
    most = 130 if unit == "$daysAgo" else 3000
    back = draw(st.one_of(st.integers(0, most), st.floats(0, most).map(lambda x: round(x, 2))))
    window: dict[str, Any] = {draw(st.sampled_from(["$gte", "$gt"])): {unit: back}}
    if draw(st.booleans()):
        nearer = draw(st.floats(0, back).map(lambda x: round(x, 2)))
        if nearer < back:  # else the window would be empty, which compiling refuses
            window[draw(st.sampled_from(["$lt", "$lte"]))] = {unit: nearer}
    return window


@st.composite
def absolute_windows(draw: st.DrawFn) -> dict[str, Any]:
    """``timestamp`` conditions between two fixed dates."""
    start = BASE + timedelta(seconds=draw(st.integers(-86400, 130 * 86400)))
    end = start + timedelta(seconds=draw(st.integers(1, 90 * 86400)))
    return {
        draw(st.sampled_from(["$gte", "$gt"])): {"$date": start.isoformat()},
        draw(st.sampled_from(["$lt", "$lte"])): {"$date": end.isoformat()},
    }


@st.composite
def selections(draw: st.DrawFn, kinds: list[str]) -> dict[str, Any]:
    """``type``, optional ``properties`` and a window of one kind or another."""
    kind = draw(st.sampled_from(kinds))
    spec: dict[str, Any] = {"type": kind}
    where = draw(_WHERE[kind])
    if where is not None:
        spec["properties"] = where
    choice = draw(st.sampled_from(["relative", "absolute", "months"]))
    if choice == "relative":
        spec["timestamp"] = draw(relative_windows())
    elif choice == "absolute":
        spec["timestamp"] = draw(absolute_windows())
    else:
        back = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True))
        spec["during"] = {"monthsAgo": back}
    return spec


@st.composite
def activity_clauses(draw: st.DrawFn) -> dict[str, Any]:
    """An ``$activity`` clause: a selection with a count and/or a sum condition."""
    spec = draw(selections([*_TYPES, "session"]))
    if spec.get("during") and draw(st.booleans()):
        spec["during"]["each"] = True
    aggregate = draw(st.sampled_from(["count", "sum", "both", "neither"]))
    if aggregate in ("count", "both"):
        spec["count"] = {draw(st.sampled_from(_OPS)): draw(st.integers(0, 4))}
    if aggregate in ("sum", "both") and spec["type"] in _SUMMABLE:
        spec["sum"] = {
            _SUMMABLE[spec["type"]]: {
                draw(st.sampled_from(_OPS)): draw(st.sampled_from([0, 0.3, 10, 50, 200]))
            }
        }
    return {"$activity": spec}


@st.composite
def sequence_clauses(draw: st.DrawFn) -> dict[str, Any]:
    """A ``$sequence`` clause, followed or not, with or without ``within``."""
    first = draw(selections(_TYPES))
    then_kind = draw(st.sampled_from(_TYPES))
    then: dict[str, Any] = {"type": then_kind}
    where = draw(_WHERE[then_kind])
    if where is not None:
        then["properties"] = where
    spec: dict[str, Any] = {
        "first": first,
        draw(st.sampled_from(["followedBy", "notFollowedBy"])): then,
    }
    if draw(st.booleans()):
        spec["within"] = {
            draw(st.sampled_from(["minutes", "hours", "days"])): draw(st.integers(1, 90))
        }
    return {"$sequence": spec}


# -- the brute-force scan ---------------------------------------------------------------


def _sessions_as_events(events: list[Event], sessionize: Any) -> list[Event]:
    """The log's sessions, as events of type "session" stamped at their start."""
    instants = [
        (_micros(e.timestamp), e.type == "session_start", int(e.type in _PAGES)) for e in events
    ]
    return [
        Event(
            f"session-{start}",
            "v",
            "session",
            _EPOCH + timedelta(microseconds=start),
            {"pages": pages, "duration": (end - start) / 1_000_000},
        )
        for start, end, pages in sessionize(instants)
    ]


def _in_window(moment: datetime, selection: dict[str, Any], now: datetime) -> list[int]:
    """The window groups ``moment`` is in: [0] or [] for a timestamp window, the
    indexes of the months of ``during.monthsAgo`` otherwise."""
    if "during" in selection:
        back = selection["during"]["monthsAgo"]
        index = (now.year * 12 + now.month - 1) - (moment.year * 12 + moment.month - 1)
        return [back.index(index)] if index in back else []
    for op, operand in selection["timestamp"].items():
        ((key, amount),) = operand.items()
        if key == "$date":
            bound = datetime.fromisoformat(amount)
        else:
            bound = now - (timedelta(days=amount) if key == "$daysAgo" else timedelta(hours=amount))
        passes = {
            "$gte": moment >= bound,
            "$gt": moment > bound,
            "$lt": moment < bound,
            "$lte": moment <= bound,
        }[op]
        if not passes:
            return []
    return [0]


def _selected(events: list[Event], selection: dict[str, Any]) -> list[Event]:
    """Events of the selection's type whose properties match (window aside)."""
    where = compile_filter(selection.get("properties", {}))
    return [e for e in events if e.type == selection["type"] and where(dict(e.properties))]


def _compare(op: str, left: float, right: float) -> bool:
    return {
        "$eq": left == right,
        "$ne": left != right,
        "$gt": left > right,
        "$gte": left >= right,
        "$lt": left < right,
        "$lte": left <= right,
    }[op]


def scan_activity(spec: dict[str, Any], events: list[Event], now: datetime) -> bool:
    """What ``$activity`` means, read straight off the whole event log."""
    selection = spec["$activity"]
    groups: dict[int, list[Event]] = {}
    for event in _selected(events, selection):
        for group in _in_window(event.timestamp, selection, now):
            groups.setdefault(group, []).append(event)
    each = selection.get("during", {}).get("each", False)
    names = range(len(selection["during"]["monthsAgo"])) if each else [0]
    if not each:
        groups = {0: [e for group in groups.values() for e in group]}
    for name in names:
        found = groups.get(name, [])
        ok = True
        for op, operand in selection.get("count", {}).items():
            ok = ok and _compare(op, len(found), operand)
        for prop, condition in selection.get("sum", {}).items():
            values = [e.properties[prop] for e in found if prop in e.properties]
            total = math.fsum(values)
            for op, operand in condition.items():
                ok = ok and _compare(op, total, operand)
        if "count" not in selection and "sum" not in selection:
            ok = len(found) >= 1
        if not ok:
            return False
    return True


def scan_sequence(spec: dict[str, Any], events: list[Event], now: datetime) -> bool:
    """What ``$sequence`` means, read straight off the whole event log."""
    clause = spec["$sequence"]
    negated = "notFollowedBy" in clause
    then = clause["notFollowedBy" if negated else "followedBy"]
    within = None
    if "within" in clause:
        ((unit, amount),) = clause["within"].items()
        within = timedelta(**{unit: amount})
    followers = _selected(events, then)
    for first in _selected(events, clause["first"]):
        if not _in_window(first.timestamp, clause["first"], now):
            continue
        if negated and within is not None and first.timestamp + within > now:
            continue
        found = any(
            other.event_id != first.event_id
            and other.timestamp >= first.timestamp
            and (within is None or other.timestamp <= first.timestamp + within)
            for other in followers
        )
        if found != negated:
            return True
    return False


# -- folding ---------------------------------------------------------------------------


def fold_in_order(events: list[Event], needs: ActivityNeeds) -> dict[str, Any]:
    """The profile from ``events`` in the order given, as a store builds it: the state
    kept as JSON between events, rebuilt from the events so far when the fold asks."""
    state = new_state()
    so_far: list[Event] = []
    for event in events:
        so_far.append(event)
        apply(state, event, needs)
        if needs_rebuild(state):
            state = rebuild(so_far, needs)
        state = json.loads(json.dumps(state))
    return render(state)


def _now(draw: st.DrawFn, events: list[Event]) -> datetime:
    """A moment the service could decide at: at most a day before the latest event
    (clocks may run ahead by 24 hours), up to 130 days after."""
    latest = max((e.timestamp for e in events), default=BASE)
    return latest + timedelta(seconds=draw(st.integers(-86400, 130 * 86400)))


class TestAgainstTheEventLog:
    @settings(max_examples=500, deadline=None)
    @given(events=event_logs(), clause=activity_clauses(), data=st.data())
    def test_activity_clause_agrees_with_a_scan(
        self, events: list[Event], clause: dict[str, Any], data: st.DataObject, brute_sessions: Any
    ):
        """Count and sum in random windows at a random now: the folded profile answers as
        a scan of the log does, rebuilt or folded in a random order."""
        now = _now(data.draw, events)
        log = events + (
            _sessions_as_events(events, brute_sessions) if "session" in json.dumps(clause) else []
        )
        predicate = compile_filter(clause)
        shuffled = list(events)
        data.draw(st.randoms(use_true_random=False)).shuffle(shuffled)
        expected = scan_activity(clause, log, now)

        actual = (
            predicate(render(rebuild(events, predicate.activity)), now),
            predicate(fold_in_order(shuffled, predicate.activity), now),
        )

        assert (expected, expected) == actual

    @settings(max_examples=500, deadline=None)
    @given(events=event_logs(), clause=sequence_clauses(), data=st.data())
    def test_sequence_clause_agrees_with_a_scan(
        self, events: list[Event], clause: dict[str, Any], data: st.DataObject
    ):
        """A then (no) B within T: the folded profile answers as a scan of the log does."""
        now = _now(data.draw, events)
        predicate = compile_filter(clause)
        shuffled = list(events)
        data.draw(st.randoms(use_true_random=False)).shuffle(shuffled)
        expected = scan_sequence(clause, events, now)

        actual = (
            predicate(render(rebuild(events, predicate.activity)), now),
            predicate(fold_in_order(shuffled, predicate.activity), now),
        )

        assert (expected, expected) == actual


class TestOrderIndependence:
    @settings(max_examples=300, deadline=None)
    @given(
        events=event_logs(),
        clauses=st.lists(st.one_of(activity_clauses(), sequence_clauses()), min_size=1, max_size=4),
        data=st.data(),
    )
    def test_incremental_with_repeats_renders_like_rebuild(
        self, events: list[Event], clauses: list[dict[str, Any]], data: st.DataObject
    ):
        """Any arrival order, some events delivered twice (the store keeps the first):
        the profile, kept activity included, is the rebuild's."""
        needs = compile_filter({"$and": clauses}).activity
        delivered = list(events) + (
            data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
        )
        data.draw(st.randoms(use_true_random=False)).shuffle(delivered)
        unique = list({event.event_id: event for event in delivered}.values())
        expected = render(rebuild(events, needs))

        actual = fold_in_order(unique, needs)

        assert expected == actual


def test_the_scan_is_not_trivially_constant():
    """A check of the reference itself: on a seeded log, short and long windows give
    both answers, and the counts match a plain count of the log."""
    rng = random.Random(3)
    events = [
        Event(
            f"e{i}",
            "v",
            rng.choice(_TYPES),
            BASE + timedelta(hours=rng.randrange(2000)),
            {"sku": "a", "category": "shoes", "order_id": "o1", "value": 30, "articles": 1},
        )
        for i in range(200)
    ]
    now = BASE + timedelta(days=90)
    expected = {
        (kind, back): sum(
            1 for e in events if e.type == kind and e.timestamp >= now - timedelta(days=back)
        )
        >= 5
        for kind in _TYPES
        for back in (1, 10, 40)
    }

    actual = {
        (kind, back): scan_activity(
            {
                "$activity": {
                    "type": kind,
                    "timestamp": {"$gte": {"$daysAgo": back}},
                    "count": {"$gte": 5},
                }
            },
            events,
            now,
        )
        for kind in _TYPES
        for back in (1, 10, 40)
    }

    assert expected == actual
    assert {True, False} == set(actual.values())
