"""What the profile keeps of a visitor's events for activity clauses: only what the
declaration reads, within its bounds, and what a change of declaration leaves."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from decision import Event, compile_filter, compile_ruleset
from decision import profile as fold
from decision.profile import apply, backfill, covers, new_state, rebuild, render
from decision.retention import (
    CLOCK_SLACK_US,
    DAY_US,
    MAX_EVENTS_PER_TYPE,
    NO_ACTIVITY,
    ActivityNeeds,
    TypeNeeds,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_counter = iter(range(10**9))


def ev(kind: str, days_ago: float, **properties: Any) -> Event:
    """An event ``days_ago`` days before NOW."""
    return Event(f"e{next(_counter):07d}", "v", kind, NOW - timedelta(days=days_ago), properties)


def micros(days_ago: float) -> int:
    return (NOW - timedelta(days=days_ago) - _EPOCH) // timedelta(microseconds=1)


def needs_of(**types: TypeNeeds) -> ActivityNeeds:
    return ActivityNeeds.of(types)


VIEWS_7D = needs_of(product_view=TypeNeeds(frozenset({"category"}), 7 * DAY_US))
VIEWS_30D_PRICE = needs_of(product_view=TypeNeeds(frozenset({"category", "price"}), 30 * DAY_US))


def view(days_ago: float, category: str = "shoes") -> Event:
    return ev("product_view", days_ago, sku="s", category=category, brand="b", price=10.0)


class TestWhatIsKept:
    def test_no_declaration_keeps_nothing(self):
        """Rules without activity clauses: no activity in the state or the profile."""
        state = rebuild([view(1), ev("purchase", 2, order_id="o", value=5, articles=1)])

        assert ({}, None) == (state["activity"]["events"], render(state).get("activity"))

    def test_only_the_properties_read(self):
        """A clause reading category keeps category, not sku, brand or price."""
        expected = {"product_view": {"t": [micros(1)], "p": [{"category": "shoes"}]}}

        actual = render(rebuild([view(1), ev("page_view", 0)], VIEWS_7D))["activity"]

        assert expected == actual

    def test_only_timestamps_when_no_property_is_read(self):
        """A count without a property filter keeps timestamps alone."""
        needs = needs_of(purchase=TypeNeeds(frozenset(), 14 * DAY_US))
        expected = {"purchase": {"t": [micros(3)], "p": None}}

        actual = render(rebuild([ev("purchase", 3, order_id="o", value=5, articles=1)], needs))[
            "activity"
        ]

        assert expected == actual

    def test_threshold_is_horizon_plus_a_day_behind_the_latest_event(self):
        """Kept: 7 days + 24 hours behind the latest event, to the microsecond."""
        older = Event(
            "older", "v", "product_view", NOW - timedelta(days=8, microseconds=1), {"sku": "s"}
        )
        events = [view(0), view(8, "at-threshold"), older]
        state = rebuild(events, VIEWS_7D)
        threshold = micros(0) - 7 * DAY_US - CLOCK_SLACK_US

        actual = render(state)["activity"]["product_view"]["t"]

        assert [threshold, micros(0)] == actual

    def test_the_newest_events_up_to_the_bound(self):
        """1,005 views in a day: the newest 1,000 are kept, in the state too."""
        events = [view(i / 2000) for i in range(MAX_EVENTS_PER_TYPE + 5)]
        state = rebuild(events, VIEWS_7D)
        expected = sorted(micros(i / 2000) for i in range(MAX_EVENTS_PER_TYPE))

        assert expected == render(state)["activity"]["product_view"]["t"]
        assert MAX_EVENTS_PER_TYPE == len(state["activity"]["events"]["product_view"][0])

    def test_absolute_window_keeps_its_events_beyond_the_horizon(self):
        """A window of fixed dates keeps events since its start whatever the horizon."""
        spec = {
            "$activity": {
                "type": "page_view",
                "timestamp": {
                    "$gte": {"$date": (NOW - timedelta(days=400)).isoformat()},
                    "$lt": {"$date": (NOW - timedelta(days=300)).isoformat()},
                },
            }
        }
        predicate = compile_filter(spec)
        events = [ev("page_view", 500), ev("page_view", 350), ev("page_view", 0)]

        actual = render(rebuild(events, predicate.activity))["activity"]["page_view"]["t"]

        assert [micros(350), micros(0)] == actual

    def test_equal_timestamps_are_ordered_by_content(self):
        """Two views stamped alike render in one order whichever arrived first."""
        first = view(1, "a")
        second = Event("other", "v", "product_view", first.timestamp, {"sku": "s", "category": "b"})
        one, other = new_state(), new_state()
        for state, order in ((one, (first, second)), (other, (second, first))):
            for event in order:
                apply(state, event, VIEWS_7D)

        assert render(one) == render(other)

    def test_clock_slack_is_the_events_future_bound(self):
        """The slack kept behind the latest event is how far ahead events may be stamped."""
        expected = fold.MAX_FUTURE // timedelta(microseconds=1)

        assert expected == CLOCK_SLACK_US


class TestDeclarationChanges:
    def test_a_fresh_state_covers_anything(self):
        """Nothing folded yet: nothing missing, whatever the rules read."""
        assert covers(new_state(), VIEWS_30D_PRICE)

    def test_a_state_covers_its_declaration_and_less(self):
        """Built for 30 days of category and price: covers 7 days of category."""
        state = rebuild([view(1)], VIEWS_30D_PRICE)

        assert (True, True) == (covers(state, VIEWS_30D_PRICE), covers(state, VIEWS_7D))

    def test_more_than_was_kept_is_not_covered(self):
        """Folded without a declaration, then with one: the earlier views are missing."""
        state = new_state()
        apply(state, view(2))
        apply(state, view(1), VIEWS_7D)

        assert not covers(state, VIEWS_7D)

    def test_a_longer_window_or_another_property_is_not_covered(self):
        """After a publish that needs 30 days and price, a 7-day state is not enough, and
        stays not enough while it folds under the new declaration."""
        state = rebuild([view(20), view(1)], VIEWS_7D)
        apply(state, view(0.5), VIEWS_30D_PRICE)

        assert not covers(state, VIEWS_30D_PRICE)

    def test_backfill_gives_what_a_rebuild_holds(self):
        """Back-filled from the whole log, the state renders like a rebuild with the new
        declaration (the 20-day-old view is back)."""
        events = [view(20), view(1), ev("page_view", 0.5)]
        state = rebuild(events, VIEWS_7D)
        expected = render(rebuild(events, VIEWS_30D_PRICE))

        backfill(state, events, VIEWS_30D_PRICE)

        assert expected == render(state)

    def test_backfilled_state_covers_and_keeps_folding(self):
        """After a back-fill the state covers the declaration, and later events fold
        into it as into a rebuild."""
        events = [view(20), view(1)]
        state = rebuild(events, VIEWS_7D)
        backfill(state, events, VIEWS_30D_PRICE)
        latest = view(0.1, "bags")
        expected = render(rebuild([*events, latest], VIEWS_30D_PRICE))

        apply(state, latest, VIEWS_30D_PRICE)

        assert covers(state, VIEWS_30D_PRICE)
        assert expected == render(state)

    def test_a_smaller_declaration_cuts_what_is_kept(self):
        """From 30 days of category and price to 7 days of category: the state is cut
        to what a rebuild with the smaller declaration keeps."""
        events = [view(20), view(3), view(1)]
        state = rebuild(events, VIEWS_30D_PRICE)
        latest = view(0)
        expected = render(rebuild([*events, latest], VIEWS_7D))

        apply(state, latest, VIEWS_7D)

        assert expected == render(state)
        assert covers(state, VIEWS_7D)

    def test_no_declaration_after_one_drops_everything(self):
        """Publishing rules without activity clauses empties what was kept."""
        state = rebuild([view(1)], VIEWS_7D)

        apply(state, view(0), NO_ACTIVITY)

        assert ({}, None) == (state["activity"]["events"], render(state).get("activity"))


class TestRuleset:
    def test_declaration_survives_json(self):
        """A state kept under a ruleset's declaration round-trips through JSON and still
        matches it (the store keeps states as JSON)."""
        ruleset = compile_ruleset(
            {
                "segments": [
                    {
                        "id": "s",
                        "filter": {
                            "$activity": {
                                "type": "session",
                                "properties": {"pages": {"$gte": 3}},
                                "timestamp": {"$gte": {"$daysAgo": 30}},
                            }
                        },
                    }
                ]
            }
        )
        rng = random.Random(1)
        events = [
            ev(rng.choice(["page_view", "session_start"]), rng.random() * 40) for _ in range(50)
        ]
        state = json.loads(json.dumps(rebuild(events, ruleset.activity)))
        latest = ev("page_view", 0)
        expected = render(rebuild([*events, latest], ruleset.activity))

        apply(state, latest, ruleset.activity)

        assert covers(state, ruleset.activity)
        assert expected == render(state)
