"""Issue 12, finding 1, at the server: the poison batch, Timestamps protobuf does not
define, control characters in ids, and a store that already holds out-of-bound events."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from decision import Event, InvalidRequestError, Problem
from decision.profile import MAX_AMOUNT, MAX_COUNT
from protos import decisioning_pb2 as pb
from server import limits
from server.api import event_messages as events
from server.profiles.sqlite import SQLiteProfileStore

NOW = datetime.now(UTC).replace(microsecond=0)


def event(event_id: str, kind: int, visitor: str = "v-1", **oneof: object) -> pb.Event:
    """A proto Event an hour before the test started; ``oneof`` sets its properties."""
    message = pb.Event(event_id=event_id, visitor_id=visitor, type=kind, **oneof)
    message.timestamp.FromDatetime(NOW - timedelta(hours=1))
    return message


def session(event_id: str, visitor: str = "v-1") -> pb.Event:
    return event(event_id, pb.EVENT_TYPE_SESSION_START, visitor)


def _problems(*messages: pb.Event) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequestError) as caught:
        events.convert_batch(list(messages), NOW, max_events=10)
    return [(p.path, p.message) for p in caught.value.problems]


class TestPoisonBatch:
    def test_huge_cart_quantity_is_refused_on_both_paths(self):
        """quantity 2**63-1 is refused with its path (the fast path leaves it to the engine)."""
        cart = pb.CartChange(sku="S", quantity=2**63 - 1, price=1.0)

        assert [("events[0].properties.quantity", f"must be <= {MAX_COUNT}")] == _problems(
            event("c1", pb.EVENT_TYPE_ADD_TO_CART, cart=cart)
        )

    def test_huge_purchase_is_refused_on_both_paths(self):
        """value 1e308 is refused with its path."""
        order = pb.Purchase(order_id="o", value=1e308, articles=1)

        assert [("events[0].properties.value", f"must be <= {MAX_AMOUNT}")] == _problems(
            event("p1", pb.EVENT_TYPE_PURCHASE, purchase=order)
        )


class TestTimestamps:
    @pytest.mark.parametrize(
        ("nanos", "seconds", "path", "message"),
        [
            (2_000_000_000, None, "events[0].timestamp.nanos", "must be from 0 to 999999999"),
            (-1, None, "events[0].timestamp.nanos", "must be from 0 to 999999999"),
            (
                0,
                253_402_300_800,
                "events[0].timestamp.seconds",
                "must be from -62135596800 to 253402300799 (years 1 to 9999)",
            ),
            (
                0,
                -(2**62),
                "events[0].timestamp.seconds",
                "must be from -62135596800 to 253402300799 (years 1 to 9999)",
            ),
        ],
        ids=["nanos-2e9", "nanos-negative", "year-10000", "seconds-huge"],
    )
    def test_out_of_range_parts_are_problems(self, nanos, seconds, path, message):
        """A Timestamp protobuf does not define is a problem at its part, not a moment
        shifted by whole seconds, and never an exception."""
        message_ = session("e1")
        message_.timestamp.nanos = nanos
        if seconds is not None:
            message_.timestamp.seconds = seconds

        assert [(path, message)] == _problems(message_)

    def test_largest_nanos_is_accepted(self):
        """nanos 999,999,999 is the last valid value: the event keeps its microseconds."""
        message = session("e1")
        message.timestamp.nanos = 999_999_999

        [converted] = events.convert_batch([message], NOW, max_events=10)

        assert 999_999 == converted.timestamp.microsecond


class TestControlCharacters:
    def test_in_event_and_visitor_ids(self):
        """NUL in an event id and an escape in a visitor id are problems with their paths."""
        expected = [
            ("events[0].event_id", "must not contain control characters ('\\x00' at 1)"),
            ("events[1].visitor_id", "must not contain control characters ('\\x1b' at 1)"),
        ]

        assert expected == _problems(session("e\x00"), session("e2", visitor="v\x1b"))

    def test_in_sku_and_order_id(self):
        """Id properties of typed messages follow the same rule."""
        view = pb.ProductView(sku="S\x00")
        order = pb.Purchase(order_id="o\n1", value=1.0, articles=1)
        expected = [
            ("events[0].properties.sku", "must not contain control characters ('\\x00' at 1)"),
            ("events[1].properties.order_id", "must not contain control characters ('\\n' at 1)"),
        ]

        actual = _problems(
            event("e1", pb.EVENT_TYPE_PRODUCT_VIEW, product_view=view),
            event("e2", pb.EVENT_TYPE_PURCHASE, purchase=order),
        )

        assert expected == actual

    def test_in_custom_property_keys(self):
        """A custom Struct key holding NUL is refused at its object's path."""
        custom = pb.Custom(name="quiz")
        custom.properties.update({"bad\x00key": 1})

        assert [
            (
                "events[0].properties.properties",
                "key 'bad\\x00key' must not contain control characters",
            )
        ] == _problems(event("e1", pb.EVENT_TYPE_CUSTOM, custom=custom))

    def test_decide_visitor_id_and_placements(self):
        """Decide's visitor id and placement ids follow the rule of event ids."""
        problems: list[Problem] = []

        limits.check_visitor_id("alice\x00", problems)
        limits.check_placements(["home_hero", "pop\x7fup"], 32, problems)

        assert [
            ("visitor_id", "must not contain control characters ('\\x00' at 5)"),
            ("placements[1]", "must not contain control characters ('\\x7f' at 3)"),
        ] == [(p.path, p.message) for p in problems]


class TestStoredLegacyEvents:
    def test_store_holding_huge_purchases_keeps_accepting(self, tmp_path):
        """Events an older version stored (value 1e308, quantity 2**63-1) no longer poison
        the visitor: later batches fold, and the profile counts them within the bounds."""
        moment = NOW - timedelta(hours=1)
        legacy = [
            Event("p1", "v", "purchase", moment, {"order_id": "o1", "value": 1e308, "articles": 1}),
            Event(
                "c1",
                "v",
                "add_to_cart",
                moment + timedelta(seconds=1),
                {"sku": "S", "quantity": 2**63 - 1},
            ),
        ]
        later = Event(
            "p2",
            "v",
            "purchase",
            moment + timedelta(seconds=2),
            {"order_id": "o2", "value": 1e308, "articles": 1},
        )

        with SQLiteProfileStore(tmp_path / "profiles.db") as store:
            store.track(legacy)
            result = store.track([later])
            profile = store.get("v")

        assert 1 == result.accepted
        assert 2 * MAX_AMOUNT == profile["customer_segment"]["outbounds_value_total"]

    def test_poisoned_state_of_the_previous_version_heals(self, tmp_path):
        """A profile an older version stored with 1e308 in its state (state version 1) is
        rebuilt from the event log on the visitor's next event, within the bounds."""
        moment = NOW - timedelta(hours=1)
        path = tmp_path / "profiles.db"
        first = Event(
            "p1", "v", "purchase", moment, {"order_id": "o1", "value": 1e308, "articles": 1}
        )
        with SQLiteProfileStore(path) as store:
            store.track([first])
        state = {"v": 1, "orders": {"o1": [0, "p1", 1e308, 1]}}
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE profiles SET state = ?", (json.dumps(state),))
        second = Event(
            "p2",
            "v",
            "purchase",
            moment + timedelta(seconds=1),
            {"order_id": "o2", "value": 5, "articles": 1},
        )

        with SQLiteProfileStore(path) as store:
            store.track([second])
            profile = store.get("v")

        assert MAX_AMOUNT + 5 == profile["customer_segment"]["outbounds_value_total"]

    def test_profiles_rebuild_heals_a_store(self, tmp_path):
        """``decide profiles rebuild`` (``rebuild_all``) rewrites a profile whose document
        an older version rendered from a purchase of 1e308."""
        moment = NOW - timedelta(hours=1)
        path = tmp_path / "profiles.db"
        with SQLiteProfileStore(path) as store:
            store.track(
                [
                    Event(
                        "p1",
                        "v",
                        "purchase",
                        moment,
                        {"order_id": "o1", "value": 1e308, "articles": 1},
                    )
                ]
            )
        poisoned = {"customer_segment": {"outbounds_value_total": 1e308}}
        with sqlite3.connect(path) as conn:
            conn.execute(
                "UPDATE profiles SET document = ?, state = ?",
                (json.dumps(poisoned), json.dumps({"v": 1})),
            )

        with SQLiteProfileStore(path, cache_size=0) as store:
            rebuilt = store.rebuild_all()
            profile = store.get("v")

        assert 1 == rebuilt
        assert MAX_AMOUNT == profile["customer_segment"]["outbounds_value_total"]
