"""The pre-built and the six parcelLab segments select exactly the visitors their
event streams say they should, on profiles built by the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from decision import compile_ruleset, demo_document, validate_events, visitor_segments
from server.profiles.sqlite import SQLiteProfileStore

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
RULESET = compile_ruleset(demo_document())


def purchases(days_ago: list[float], value: float, articles: int) -> list[tuple[Any, ...]]:
    """One purchase per entry of ``days_ago``, each with its own order id."""
    return [
        ("purchase", days, {"order_id": f"O{i}", "value": value, "articles": articles})
        for i, days in enumerate(days_ago)
    ]


def sessions(*days_ago: float) -> list[tuple[Any, ...]]:
    """A session start per entry of ``days_ago``."""
    return [("session_start", days, {}) for days in days_ago]


# visitor -> (event specs (type, days before NOW, properties), expected segments)
STREAMS: dict[str, tuple[list[tuple[Any, ...]], set[str]]] = {
    "first_timer": (sessions(0.01), {"new_visitors"}),
    "browser": (
        sessions(9, 3, 0.1)
        + [("product_view", 0.1, {"sku": "A", "category": "shoes", "price": 80})],
        set(),
    ),
    "returning": (
        sessions(30, 1) + purchases([30], value=80, articles=2),
        {"returning_customers"},
    ),
    "bought_on_first_visit": (
        sessions(0.2) + purchases([0.1], value=80, articles=2),
        {"new_visitors"},
    ),
    "big_spender": (
        sessions(20, 5) + purchases([20, 5], value=600, articles=3),
        {"returning_customers", "high_value_customers", "high_spending_recent_buyers"},
    ),
    "cart_abandoner": (
        sessions(0.2) + [("add_to_cart", 3 / 24, {"sku": "A", "quantity": 1, "price": 30})],
        {"new_visitors", "cart_abandoners"},
    ),
    "cart_just_filled": (
        sessions(0.01) + [("add_to_cart", 10 / 1440, {"sku": "A", "quantity": 1, "price": 30})],
        {"new_visitors"},
    ),
    "checked_out": (
        sessions(0.2)
        + [("add_to_cart", 3 / 24, {"sku": "A", "quantity": 1, "price": 30})]
        + purchases([2 / 24], value=30, articles=1),
        {"new_visitors"},
    ),
    "emptied_cart": (
        sessions(0.2)
        + [
            ("add_to_cart", 3 / 24, {"sku": "A", "quantity": 2, "price": 30}),
            ("remove_from_cart", 2 / 24, {"sku": "A"}),
        ],
        {"new_visitors"},
    ),
    "repeat_minimal_returns": (
        sessions(21, 1)
        + purchases([21, 14, 7, 0.5], value=50, articles=5)
        + [("return", 3, {"order_id": "O1", "articles": 1})],  # 1 of 20 articles: 5 %
        {"returning_customers", "repeat_minimal_returns"},
    ),
    "lapsed_frequent_buyer": (
        sessions(100, 70) + purchases([100, 90, 80, 70], value=40, articles=3),
        {"returning_customers", "repeat_minimal_returns", "lapsed_frequent_buyers"},
    ),
    "high_return_risk": (
        sessions(40, 10)
        + purchases([40], value=300, articles=10)
        + [("return", 30, {"order_id": "O0", "articles": 5})],
        {"returning_customers", "high_return_risk"},
    ),
    "premium_returner": (
        sessions(40, 20)
        + purchases([40, 20], value=700, articles=5)
        + [("return", 15, {"order_id": "O1", "articles": 3})],  # 3 of 10: 30 %
        {"returning_customers", "high_value_customers", "premium_frequent_returners"},
    ),
    "frequent_low_value": (
        sessions(183, 3) + purchases([3 + 20 * i for i in range(10)], value=15, articles=1),
        {"returning_customers", "frequent_low_value_buyers"},
    ),
    "nine_small_orders": (
        sessions(163, 3) + purchases([3 + 20 * i for i in range(9)], value=15, articles=1),
        {"returning_customers"},
    ),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteProfileStore]:
    """A store holding every visitor of STREAMS, each tracked in one batch."""
    path: Path = tmp_path_factory.mktemp("segments") / "profiles.db"
    with SQLiteProfileStore(path) as opened:
        for visitor, (specs, _) in STREAMS.items():
            raw = [
                {
                    "event_id": f"{visitor}-{index}",
                    "visitor_id": visitor,
                    "type": kind,
                    "timestamp": NOW - timedelta(days=days),
                    "properties": properties,
                }
                for index, (kind, days, properties) in enumerate(specs)
            ]
            opened.track(validate_events(raw, NOW))
        yield opened


def segments_of(store: SQLiteProfileStore, visitor: str) -> set[str]:
    """The demo segments the stored profile of ``visitor`` is in, besides everyone."""
    profile = store.get(visitor) or {}
    return set(visitor_segments(RULESET, profile, {}, NOW)) - {"everyone"}


class TestSegments:
    @pytest.mark.parametrize("visitor", list(STREAMS))
    def test_stream_selects_its_segments(self, store: SQLiteProfileStore, visitor: str):
        """Each hand-written stream lands in exactly the segments it was written for."""
        expected = STREAMS[visitor][1]

        actual = segments_of(store, visitor)

        assert expected == actual

    def test_unknown_visitor_is_new(self, store: SQLiteProfileStore):
        """A visitor without any event is only a new visitor."""
        assert {"new_visitors"} == segments_of(store, "never-seen")

    def test_every_segment_is_exercised(self):
        """The streams above cover every segment of the demo document, but those reading
        the visitor's activity: the store keeps none until it is given the ruleset's
        declaration (decision/test_defaults.py covers them on folded profiles)."""
        covered = set().union(*(expected for _, expected in STREAMS.values())) | {"everyone"}
        reading_activity = {
            segment_id
            for segment_id, predicate in RULESET.segment_filters.items()
            if "activity" in (predicate.fields or ())
        }

        assert set(RULESET.segment_filters) - reading_activity == covered

    def test_identify_brings_the_customer_segments(self, tmp_path: Path):
        """An anonymous visitor who logs in is in the customer's segments, under both ids."""
        raw = [
            {
                "event_id": "a1",
                "visitor_id": "anon",
                "type": "session_start",
                "timestamp": NOW - timedelta(hours=1),
            },
            {
                "event_id": "c1",
                "visitor_id": "cust",
                "type": "session_start",
                "timestamp": NOW - timedelta(days=30),
            },
            {
                "event_id": "c2",
                "visitor_id": "cust",
                "type": "purchase",
                "timestamp": NOW - timedelta(days=30),
                "properties": {"order_id": "O", "value": 1200, "articles": 2},
            },
        ]
        identify = {
            "event_id": "i",
            "visitor_id": "anon",
            "type": "identify",
            "timestamp": NOW - timedelta(minutes=50),
            "properties": {"customer_id": "cust"},
        }
        with SQLiteProfileStore(tmp_path / "p.db") as store:
            store.track(validate_events(raw, NOW))
            assert {"new_visitors"} == segments_of(store, "anon")

            store.track(validate_events([identify], NOW))

            expected = {"returning_customers", "high_value_customers"}
            assert expected == segments_of(store, "anon") == segments_of(store, "cust")
