"""Sessions and engagement: hand-written streams, and any arrival order against a brute-force
sessionizer over the sorted log."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decision import Event
from decision import sessions as sessions_module
from decision.profile import apply, needs_rebuild, new_state, rebuild, render
from decision.sessions import (
    DETAIL_WINDOW_US,
    new_engagement,
    observe,
    render_engagement,
    sessions_of,
)

START = datetime(2026, 6, 1, tzinfo=UTC)
MINUTE = 60_000_000

_counter = iter(range(10**9))


def ev(kind: str, minutes: float, **properties: Any) -> Event:
    """An event ``minutes`` after START."""
    moment = START + timedelta(minutes=minutes)
    return Event(f"e{next(_counter):07d}", "v", kind, moment, properties)


def engagement(*events: Event) -> dict[str, Any] | None:
    """The rendered ``engagement`` of ``events`` folded in the order given."""
    state = new_state()
    for event in events:
        apply(state, event)
    return render(state).get("engagement")


def figures(found: list[tuple[int, int, int]]) -> dict[str, Any] | None:
    """The rendered figures (times in microseconds) of brute-force sessions."""
    if not found:
        return None
    pages = sum(session[2] for session in found)
    start, end, last_pages = found[-1]
    return {
        "sessions": len(found),
        "page_views": pages,
        "time_on_site": sum(end - start for start, end, _ in found) / 1_000_000,
        "pages_per_session": pages / len(found),
        "last_session": {"pages": last_pages, "duration": (end - start) / 1_000_000},
    }


class TestDefinition:
    def test_no_activity_no_field(self):
        """A visitor with only returns and attribute writes has no engagement field."""
        expected = None

        actual = engagement(
            ev("return", 0, order_id="o", articles=1),
            ev("set_attributes", 5, attributes={"tier": "gold"}),
        )

        assert expected == actual

    def test_inactivity_gap_splits_sessions(self):
        """Exactly 30 minutes apart is one session; a second more begins another."""
        expected = {
            "sessions": 2,
            "page_views": 3,
            "time_on_site": 1800.0,
            "pages_per_session": 1.5,
            "last_session": {"pages": 1, "duration": 0.0},
        }

        actual = engagement(
            ev("page_view", 0),
            ev("product_view", 30, sku="a"),
            ev("page_view", 60 + 1 / 60),
        )

        assert expected == actual

    def test_session_start_begins_a_session_without_a_gap(self):
        """A session_start five minutes after a page view starts the second session."""
        expected = (2, 600.0)

        actual = engagement(
            ev("page_view", 0),
            ev("page_view", 5),
            ev("session_start", 10),
            ev("page_view", 15),
        )

        assert actual is not None
        assert expected == (actual["sessions"], actual["time_on_site"])

    def test_events_of_one_instant_share_a_session(self):
        """Two session starts and a page view stamped alike make one session of one page."""
        expected = (1, 1)

        actual = engagement(ev("page_view", 0), ev("session_start", 0), ev("session_start", 0))

        assert actual is not None
        assert expected == (actual["sessions"], actual["last_session"]["pages"])

    def test_late_session_start_splits_a_known_session(self):
        """A session_start arriving last for 00:20 splits 00:00-00:40 into two sessions; the
        page view stamped like it belongs to the second."""
        expected = {
            "sessions": 2,
            "page_views": 5,
            "time_on_site": 1800.0,
            "pages_per_session": 2.5,
            "last_session": {"pages": 3, "duration": 1200.0},
        }

        actual = engagement(
            *[ev("page_view", minute) for minute in (0, 10, 20, 30, 40)],
            ev("session_start", 20),
        )
        actual_reversed = engagement(
            ev("session_start", 20),
            *[ev("page_view", minute) for minute in (40, 30, 20, 10, 0)],
        )

        assert expected == actual
        assert expected == actual_reversed

    def test_returns_are_not_activity(self):
        """A return between two views does not bridge the gap between them."""
        expected = 2

        actual = engagement(
            ev("page_view", 0),
            ev("return", 25, order_id="o", articles=1),
            ev("page_view", 50),
        )

        assert actual is not None
        assert expected == actual["sessions"]


class TestCompaction:
    def test_old_instants_are_compacted_and_render_the_same(self):
        """Activity over ten days keeps at most three days in detail, same figures."""
        events = [ev("page_view", day * 1440 + minute) for day in range(10) for minute in (0, 5)]
        state = new_state()
        for event in events:
            apply(state, event)
        kept = state["engagement"]["t"]
        expected = render(rebuild(reversed(events)))["engagement"]

        actual = render(state)["engagement"]

        assert expected == actual
        assert 7 == len(kept)
        assert kept[0] >= state["last_seen"] - DETAIL_WINDOW_US

    def test_event_before_a_compacted_instant_asks_for_a_rebuild(self):
        """Days 0 and 2 are compacted once day 10 arrives: a late view on day 1 cannot be
        placed (rebuild needed), one on day 5 can."""
        state = new_state()
        for day in (0, 2, 10):
            apply(state, ev("page_view", day * 1440))
        apply(state, ev("page_view", 5 * 1440))
        assert not needs_rebuild(state)

        apply(state, ev("page_view", 1 * 1440))

        assert needs_rebuild(state)

    def test_sorted_rebuild_never_asks(self):
        """Folding in timestamp order never compacts the instant being folded."""
        events = [ev("page_view", day * 1440) for day in range(30)]

        actual = needs_rebuild(rebuild(events))

        assert not actual


def _instants(draw: st.DrawFn, size: int) -> list[tuple[int, bool, int]]:
    spread = draw(st.sampled_from([60, 600, 6000]))  # minutes: dense to sparse
    entries = []
    for _ in range(draw(st.integers(0, size))):
        minute = draw(st.integers(0, spread))
        starts = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False
        pages = draw(st.integers(0, 2))
        entries.append((minute * MINUTE, starts, pages))
    return entries


@st.composite
def instant_streams(draw: st.DrawFn, size: int = 60) -> list[tuple[int, bool, int]]:
    """``(ts, session_start, page_views)`` entries with ties, gaps and late arrivals."""
    return _instants(draw, size)


def _fold(
    entries: list[tuple[int, bool, int]], window: int, most: int
) -> tuple[dict[str, Any], int]:
    """Fold in the order given, rebuilding (sorted) whenever ``observe`` cannot place an
    entry, as a store does; returns the state and how many rebuilds there were."""
    state = new_engagement()
    seen: list[tuple[int, bool, int]] = []
    last_seen = None
    rebuilds = 0
    for entry in entries:
        seen.append(entry)
        last_seen = entry[0] if last_seen is None else max(last_seen, entry[0])
        placed = observe(
            state, entry[0], entry[1], entry[2], last_seen, detail_window=window, max_instants=most
        )
        if placed is None:
            rebuilds += 1
            state = new_engagement()
            running = None
            for ts, starts, pages in sorted(seen):
                running = ts if running is None else max(running, ts)
                again = observe(
                    state, ts, starts, pages, running, detail_window=window, max_instants=most
                )
                assert again is not None
        state = json.loads(json.dumps(state))  # as the store keeps it between batches
    return state, rebuilds


class TestAgainstBruteForce:
    @settings(max_examples=400, deadline=None)
    @given(
        entries=instant_streams(),
        seed=st.randoms(use_true_random=False),
        window=st.sampled_from([0, 10 * MINUTE, 120 * MINUTE, DETAIL_WINDOW_US]),
        most=st.sampled_from([1, 3, 10, 1000]),
    )
    def test_any_order_any_bounds_gives_the_sorted_sessions(
        self,
        entries: list[tuple[int, bool, int]],
        seed: random.Random,
        window: int,
        most: int,
        brute_sessions: Any,
    ):
        """Shuffled, with tiny or default bounds, the figures are the brute-force ones."""
        shuffled = list(entries)
        seed.shuffle(shuffled)
        expected = figures(brute_sessions(entries))

        state, _ = _fold(shuffled, window, most)
        actual = render_engagement(state)

        assert expected == actual

    @settings(max_examples=300, deadline=None)
    @given(
        entries=instant_streams(),
        seed=st.randoms(use_true_random=False),
        most=st.sampled_from([2, 1000]),
    )
    def test_kept_sessions_are_the_timelines(
        self, entries: list[tuple[int, bool, int]], seed: random.Random, most: int
    ):
        """The sessions kept for rendering are always those the timeline gives."""
        shuffled = list(entries)
        seed.shuffle(shuffled)

        state, _ = _fold(shuffled, 120 * MINUTE, most)

        assert [list(session) for session in sessions_of(state)] == state["s"]

    @settings(max_examples=200, deadline=None)
    @given(entries=instant_streams(size=120), most=st.sampled_from([1, 5, 1000]))
    def test_keeps_at_most_the_bound(self, entries: list[tuple[int, bool, int]], most: int):
        """However many instants arrive, at most ``max_instants`` stay in detail."""
        state, _ = _fold(entries, DETAIL_WINDOW_US, most)

        assert len(state["t"]) <= most

    @settings(max_examples=200, deadline=None)
    @given(entries=instant_streams(), seed=st.randoms(use_true_random=False))
    def test_less_than_the_window_late_never_rebuilds(
        self, entries: list[tuple[int, bool, int]], seed: random.Random
    ):
        """Entries spanning less than the detail window fold in any order without rebuilds."""
        shuffled = list(entries)
        seed.shuffle(shuffled)

        _, rebuilds = _fold(shuffled, 7000 * MINUTE, 1000)

        assert 0 == rebuilds


_KINDS = ["session_start", "page_view", "product_view", "purchase", "return", "custom"]


@st.composite
def event_logs(draw: st.DrawFn, size: int = 60) -> list[Event]:
    """Events over up to ten days, so that the default three-day window compacts."""
    events = []
    for index in range(draw(st.integers(0, size))):
        kind = draw(st.sampled_from(_KINDS))
        minute = draw(st.integers(0, draw(st.sampled_from([90, 14_400]))))
        properties: dict[str, Any] = {
            "product_view": {"sku": "a"},
            "purchase": {"order_id": f"o{index % 3}", "value": 10, "articles": 1},
            "return": {"order_id": "o1", "articles": 1},
            "custom": {"name": "quiz"},
        }.get(kind, {})
        events.append(Event(f"e-{index}", "v", kind, START + timedelta(minutes=minute), properties))
    return events


class TestProfileFold:
    @settings(max_examples=300, deadline=None)
    @given(events=event_logs(), data=st.data())
    def test_any_order_with_repeats_renders_like_rebuild(
        self, events: list[Event], data: st.DataObject
    ):
        """Shuffled, some delivered twice (the store drops repeated ids), rebuilt when the
        fold asks: the profile of the sorted rebuild."""
        delivered = list(events) + (
            data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
        )
        data.draw(st.randoms(use_true_random=False)).shuffle(delivered)
        expected = render(rebuild(events))

        state = new_state()
        stored: dict[str, Event] = {}
        for event in delivered:
            if event.event_id in stored:
                continue
            stored[event.event_id] = event
            apply(state, event)
            if needs_rebuild(state):
                state = rebuild(stored.values())
            state = json.loads(json.dumps(state))
        actual = render(state)

        assert expected == actual

    def test_brute_force_figures_of_a_profile(self, brute_sessions: Any):
        """The profile's engagement equals the brute-force sessionizer's over its log."""
        rng = random.Random(5)
        events = [ev(rng.choice(_KINDS[:3]), rng.randrange(20_000), sku="a") for _ in range(300)]
        instants = [
            (
                (event.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
                event.type == "session_start",
                int(event.type in ("page_view", "product_view")),
            )
            for event in events
        ]
        found = figures(brute_sessions(instants))
        assert found is not None
        expected = {key: found[key] for key in ("sessions", "page_views", "time_on_site")}

        document = render(rebuild(events))["engagement"]
        actual = {key: document[key] for key in expected}

        assert expected == actual


def test_bounds_are_documented_values():
    """The README's bounds: 30-minute gap, three days in detail, 1000 instants."""
    expected = (30 * MINUTE, 3 * 1440 * MINUTE, 1000)

    actual = (
        sessions_module.SESSION_GAP_US,
        sessions_module.DETAIL_WINDOW_US,
        sessions_module.MAX_INSTANTS,
    )

    assert expected == actual
