"""Behavioural events: batch validation, and each profile aggregate on hand-written streams."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from decision import EVENT_TYPES, Event, InvalidRequestError, validate_events
from decision.profile import (
    MAX_CATEGORIES,
    MAX_PRODUCTS,
    apply,
    format_timestamp,
    new_state,
    rebuild,
    render,
)

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def raw(kind: str = "page_view", **fields: Any) -> dict[str, Any]:
    """A valid raw event of ``kind`` (with the properties it requires) updated by
    ``fields``; a field given as ``...`` is removed."""
    required: dict[str, dict[str, Any]] = {
        "product_view": {"sku": "SKU-1"},
        "add_to_cart": {"sku": "SKU-1", "quantity": 1, "price": 10},
        "remove_from_cart": {"sku": "SKU-1"},
        "purchase": {"order_id": "O-1", "value": 50, "articles": 2},
        "return": {"order_id": "O-1", "articles": 1},
        "campaign_impression": {"campaign": "c1"},
        "campaign_click": {"campaign": "c1"},
        "campaign_conversion": {"campaign": "c1"},
        "identify": {"customer_id": "customer-1"},
        "custom": {"name": "newsletter_signup"},
        "set_attributes": {"attributes": {"country": "DE"}},
    }
    event: dict[str, Any] = {
        "event_id": "e-1",
        "visitor_id": "v-1",
        "type": kind,
        "timestamp": "2026-06-30T10:00:00Z",
        "properties": dict(required.get(kind, {})),
    }
    for key, value in fields.items():
        if value is ...:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def problems_of(events: list[Any], **kwargs: Any) -> list[str]:
    """The problems validate_events reports, as "path: message" strings."""
    with pytest.raises(InvalidRequestError) as caught:
        validate_events(events, NOW, **kwargs)
    return [str(problem) for problem in caught.value.problems]


def paths_of(events: list[Any], **kwargs: Any) -> list[str]:
    """The paths of the problems validate_events reports."""
    return [text.split(": ", 1)[0] for text in problems_of(events, **kwargs)]


_counter = iter(range(1_000_000))


def ev(kind: str, when: str, event_id: str | None = None, **properties: Any) -> Event:
    """An Event at ``when`` (ISO-8601, UTC assumed), built without validation."""
    moment = datetime.fromisoformat(when)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Event(event_id or f"e{next(_counter):06d}", "v", kind, moment, properties)


def profile(*events: Event) -> dict[str, Any]:
    """The rendered profile of ``events`` folded in the order given."""
    state = new_state()
    for event in events:
        apply(state, event)
    return render(state)


def without_engagement(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` less its ``engagement`` field (tested in test_sessions.py)."""
    return {key: value for key, value in document.items() if key != "engagement"}


class TestValidEvents:
    def test_every_public_type_validates(self):
        """A minimal event of every trackable type passes and keeps its fields."""
        batch = [raw(kind, event_id=f"e-{i}") for i, kind in enumerate(EVENT_TYPES)]
        expected = list(EVENT_TYPES)

        actual = [event.type for event in validate_events(batch, NOW)]

        assert expected == actual

    def test_timestamps_become_aware_utc(self):
        """Offsets are converted to UTC; a datetime is accepted as well as a string."""
        batch = [
            raw(timestamp="2026-06-30T12:00:00+02:00"),
            raw(event_id="e-2", timestamp=datetime(2026, 6, 30, 10, tzinfo=UTC)),
        ]
        expected = [datetime(2026, 6, 30, 10, tzinfo=UTC)] * 2

        actual = [event.timestamp for event in validate_events(batch, NOW)]

        assert expected == actual
        assert all(event.timestamp.tzinfo is UTC for event in validate_events(batch, NOW))

    def test_integral_float_counts_become_ints(self):
        """Protobuf Structs carry numbers as doubles: articles 2.0 is the integer 2."""
        [event] = validate_events(
            [
                raw(
                    "purchase",
                    properties={
                        "order_id": "O-1",
                        "value": 9.5,
                        "articles": 2.0,
                        "currency": "eur",
                    },
                )
            ],
            NOW,
        )
        expected = {"order_id": "O-1", "value": 9.5, "articles": 2, "currency": "EUR"}

        assert expected == event.properties
        assert type(event.properties["articles"]) is int

    def test_null_optional_property_is_absent(self):
        """An explicit null is an unset optional property, not an error."""
        [event] = validate_events(
            [raw("product_view", properties={"sku": "A", "brand": None})], NOW
        )

        assert {"sku": "A"} == event.properties

    def test_missing_properties_is_an_empty_object(self):
        """Session starts and page views may carry no properties at all."""
        [event] = validate_events([raw("session_start", properties=...)], NOW)

        assert {} == event.properties

    @pytest.mark.parametrize(
        "timestamp",
        [NOW + timedelta(hours=24), datetime(2000, 1, 1, tzinfo=UTC)],
        ids=["24h-ahead", "2000-01-01"],
    )
    def test_timestamp_bounds_are_inclusive(self, timestamp: datetime):
        """Exactly 24 hours ahead of now, and 2000-01-01, are still accepted."""
        [event] = validate_events([raw(timestamp=timestamp)], NOW)

        assert timestamp == event.timestamp

    def test_repeated_identical_event_is_kept(self):
        """The same event twice in a batch is valid; the store counts the repeat."""
        expected = 2

        actual = len(validate_events([raw(), raw()], NOW))

        assert expected == actual

    def test_set_attributes_is_internal(self):
        """set_attributes validates only when the caller allows internal types."""
        [event] = validate_events([raw("set_attributes")], NOW, allow_internal=True)

        assert "set_attributes" not in EVENT_TYPES
        assert {"attributes": {"country": "DE"}} == event.properties

    def test_naive_now_is_a_programming_error(self):
        """``now`` must be aware: it bounds timestamps that are all UTC."""
        with pytest.raises(ValueError, match="timezone-aware"):
            validate_events([raw()], datetime(2026, 7, 1))

    def test_as_dict_round_trips(self):
        """An event's raw form validates back to an equal event."""
        [event] = validate_events([raw("purchase")], NOW)

        assert [event] == validate_events([event.as_dict()], NOW)


_DEEP = {"a": {"b": {"c": {"d": {"e": 1}}}}}  # 5 objects deep, counting the outer one


class TestInvalidEvents:
    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            (raw(type="page_veiw"), "events[0].type: unknown event type 'page_veiw'"),
            (raw(type=...), "events[0].type: is required"),
            (raw(type=3), "events[0].type: must be a string, got int"),
            (raw(visitor_id=...), "events[0].visitor_id: is required"),
            (raw(visitor_id=""), "events[0].visitor_id: is required"),
            (raw(visitor_id="  "), "events[0].visitor_id: is required"),
            (raw(visitor_id=42), "events[0].visitor_id: must be a string, got int"),
            (raw(visitor_id="v" * 257), "events[0].visitor_id: must be at most 256 characters"),
            (raw(event_id=...), "events[0].event_id: is required"),
            (raw(event_id="e" * 257), "events[0].event_id: must be at most 256 characters"),
            (raw(timestamp=...), "events[0].timestamp: is required"),
            (raw(timestamp="yesterday"), "events[0].timestamp: is not an ISO-8601 timestamp"),
            (raw(timestamp=1751364000), "events[0].timestamp: must be an ISO-8601 string"),
            (raw(timestamp="2026-06-30T10:00:00"), "events[0].timestamp: must carry a UTC offset"),
            (
                raw(timestamp=datetime(2026, 6, 30)),
                "events[0].timestamp: must carry a UTC offset",
            ),
            (
                raw(timestamp="2026-07-02T12:00:01Z"),
                "events[0].timestamp: is more than 24 hours in the future",
            ),
            (raw(timestamp="1999-12-31T23:59:59Z"), "events[0].timestamp: is before 2000-01-01"),
            (raw(surprise=1), "events[0].surprise: unknown field"),
            (raw(properties=[1]), "events[0].properties: must be an object"),
            (
                raw("product_view", properties={"sku": "A", "price": -1}),
                "events[0].properties.price: must be >= 0",
            ),
            (
                raw("product_view", properties={"sku": "A", "price": "9.99"}),
                "events[0].properties.price: must be a number, got str",
            ),
            (
                raw("product_view", properties={"sku": "A", "price": True}),
                "events[0].properties.price: must be a number, got bool",
            ),
            (
                raw("product_view", properties={"sku": "A", "price": float("inf")}),
                "events[0].properties.price: must be a finite number",
            ),
            (
                raw("product_view", properties={"sku": "A", "colour": "red"}),
                (
                    "events[0].properties.colour: unknown property (expected: sku, category, "
                    "brand, price, on_sale)"
                ),
            ),
            (
                raw("product_view", properties={"sku": "A", "on_sale": "yes"}),
                "events[0].properties.on_sale: must be true or false, got str",
            ),
            (
                raw("product_view", properties={"sku": "A", "on_sale": 1}),
                "events[0].properties.on_sale: must be true or false, got int",
            ),
            (raw("product_view", properties={}), "events[0].properties.sku: is required"),
            (
                raw("add_to_cart", properties={"sku": "A", "quantity": -2}),
                "events[0].properties.quantity: must be >= 0",
            ),
            (
                raw("add_to_cart", properties={"sku": "A", "quantity": 1.5}),
                "events[0].properties.quantity: must be an integer",
            ),
            (
                raw("purchase", properties={"order_id": "O", "value": -5, "articles": 1}),
                "events[0].properties.value: must be >= 0",
            ),
            (
                raw("purchase", properties={"order_id": "O", "value": 5, "articles": -1}),
                "events[0].properties.articles: must be >= 0",
            ),
            (
                raw("purchase", properties={"order_id": "O", "value": 5}),
                "events[0].properties.articles: is required",
            ),
            (
                raw("purchase", properties={"value": 5, "articles": 1}),
                "events[0].properties.order_id: is required",
            ),
            (
                raw("purchase", properties={"order_id": "O", "articles": 1}),
                "events[0].properties.value: is required",
            ),
            (
                raw(
                    "purchase",
                    properties={"order_id": "O", "value": 5, "articles": 1, "currency": "EURO"},
                ),
                "events[0].properties.currency: must be a three-letter currency code",
            ),
            (
                raw("return", properties={"order_id": "O", "articles": 0.5}),
                "events[0].properties.articles: must be an integer",
            ),
            (
                raw("return", properties={"order_id": "O"}),
                "events[0].properties.articles: is required",
            ),
            (
                raw("campaign_click", properties={"variant": "a"}),
                "events[0].properties.campaign: is required",
            ),
            (
                raw("campaign_conversion", properties={"campaign": "c", "value": -1}),
                "events[0].properties.value: must be >= 0",
            ),
            (raw("identify", properties={}), "events[0].properties.customer_id: is required"),
            (
                raw("identify", properties={"customer_id": "v-1"}),
                "events[0].properties.customer_id: must differ from visitor_id",
            ),
            (raw("custom", properties={}), "events[0].properties.name: is required"),
            (
                raw(
                    "custom",
                    properties={"name": "n", "properties": {f"k{i}": i for i in range(65)}},
                ),
                "events[0].properties.properties: must have at most 64 keys",
            ),
            (
                raw("custom", properties={"name": "n", "properties": {"blob": "x" * 9000}}),
                "events[0].properties.properties: must be at most 8192 bytes as JSON",
            ),
            (
                raw("custom", properties={"name": "n", "properties": _DEEP}),
                "events[0].properties.properties.a.b.c.d: nests deeper than 4 levels",
            ),
            (
                raw("custom", properties={"name": "n", "properties": {"when": NOW}}),
                "events[0].properties.properties.when: is not a JSON value (datetime)",
            ),
            (
                raw("custom", properties={"name": "n", "properties": "flat"}),
                "events[0].properties.properties: must be an object, got str",
            ),
            (raw("set_attributes"), "events[0].type: unknown event type 'set_attributes'"),
        ],
        ids=lambda value: "" if isinstance(value, dict) else value.split(": ", 1)[0],
    )
    def test_each_rule_names_index_and_field(self, event: dict[str, Any], expected: str):
        """Each bad event is reported with its index, its field and what is wrong."""
        [actual] = problems_of([event])

        assert actual.startswith(expected), actual

    def test_attribute_names_must_be_addressable(self):
        """An attribute name with a dot or a leading $ could not be named by a filter."""
        event = raw("set_attributes", properties={"attributes": {"a.b": 1, "ok": {"$x": 2}}})
        expected = [
            "events[0].properties.attributes.a.b",
            "events[0].properties.attributes.ok.$x",
        ]

        assert expected == paths_of([event], allow_internal=True)

    def test_every_bad_event_is_named(self):
        """Problems of every event are reported in one error, in index order."""
        batch = [
            raw(event_id="a"),
            raw(event_id="b", visitor_id=""),
            raw(event_id="c"),
            raw(
                "purchase",
                event_id="d",
                timestamp="soon",
                properties={"order_id": "O", "value": -1, "articles": 1},
            ),
            "not an event",
        ]
        expected = [
            "events[1].visitor_id",
            "events[3].timestamp",
            "events[3].properties.value",
            "events[4]",
        ]

        assert expected == paths_of(batch)

    def test_repeated_event_id_with_other_content(self):
        """Reusing an event_id for a different event names the later one."""
        batch = [raw(), raw(timestamp="2026-06-30T11:00:00Z")]
        expected = ["events[1].event_id: repeats events[0] with different content"]

        assert expected == problems_of(batch)


class TestVisits:
    def test_empty_state_renders_nothing(self):
        """No events: no fields at all (absent, not zero)."""
        assert {} == render(new_state())

    def test_sessions_count_and_seen_span(self):
        """visits counts session starts; first/last seen span every event."""
        expected = {
            "visits": 2,
            "first_seen": "2026-06-01T08:00:00.000000Z",
            "last_seen": "2026-06-03T09:30:00.000000Z",
        }

        actual = without_engagement(
            profile(
                ev("session_start", "2026-06-02T10:00:00"),
                ev("page_view", "2026-06-03T09:30:00"),
                ev("custom", "2026-06-01T08:00:00", name="x"),
                ev("session_start", "2026-06-03T09:00:00"),
            )
        )

        assert expected == actual

    def test_set_attributes_is_not_activity(self):
        """A shop writing attributes does not move first_seen or last_seen."""
        expected = {
            "first_seen": "2026-06-01T00:00:00.000000Z",
            "last_seen": "2026-06-01T00:00:00.000000Z",
            "engagement": {
                "sessions": 1,
                "page_views": 0,
                "time_on_site": 0.0,
                "pages_per_session": 0.0,
                "last_session": {"pages": 0, "duration": 0.0},
            },
            "attributes": {"tier": "gold"},
        }

        actual = profile(
            ev("identify", "2026-06-01T00:00:00", customer_id="c"),
            ev("set_attributes", "2026-06-20T00:00:00", attributes={"tier": "gold"}),
        )

        assert expected == actual


class TestOrders:
    def test_customer_segment_of_three_orders(self):
        """Count, value, basket size, mean days between orders and last purchase date."""
        expected = {
            "outbounds_number_total": 3,
            "outbounds_value_total": 0.6,
            "outbounds_avg_basket_size": 2.0,
            "outbounds_avg_time_delta": 5.0,
            "last_purchase_date": "2026-06-11",
            "returns_articles_ratio": 0.0,
        }

        actual = profile(
            ev("purchase", "2026-06-11T20:00:00", order_id="c", value=0.1, articles=1),
            ev("purchase", "2026-06-01T20:00:00", order_id="a", value=0.2, articles=2),
            ev("purchase", "2026-06-06T08:00:00", order_id="b", value=0.3, articles=3),
        )["customer_segment"]

        assert expected == actual

    def test_one_order_has_no_time_delta(self):
        """Below two orders the mean time between orders is absent."""
        segment = profile(ev("purchase", "2026-06-01T00:00:00", order_id="a", value=5, articles=1))[
            "customer_segment"
        ]

        assert "outbounds_avg_time_delta" not in segment

    def test_never_ordered_has_no_customer_segment(self):
        """A visitor without orders has no customer_segment fields at all."""
        document = profile(ev("session_start", "2026-06-01T00:00:00"))

        assert "customer_segment" not in document

    @pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
    def test_known_order_id_keeps_the_latest(self, reverse: bool):
        """A repeated order_id counts once: the latest purchase wins (a corrected order),
        whatever arrives first."""
        events = [
            ev("purchase", "2026-06-01T00:00:00", "p1", order_id="a", value=10, articles=1),
            ev("purchase", "2026-06-05T00:00:00", "p2", order_id="a", value=99, articles=9),
        ]
        expected = {
            "outbounds_number_total": 1,
            "outbounds_value_total": 99.0,
            "outbounds_avg_basket_size": 9.0,
            "last_purchase_date": "2026-06-05",
            "returns_articles_ratio": 0.0,
        }

        actual = profile(*(reversed(events) if reverse else events))["customer_segment"]

        assert expected == actual

    def test_returns_ratio_is_percent_of_purchased_articles(self):
        """Returned over purchased articles of known orders, in %; other returns just count."""
        expected = (25.0, 3)

        segment = profile(
            ev("purchase", "2026-06-01T00:00:00", order_id="a", value=10, articles=6),
            ev("purchase", "2026-06-02T00:00:00", order_id="b", value=10, articles=2),
            ev("return", "2026-06-03T00:00:00", order_id="a", articles=1),
            ev("return", "2026-06-04T00:00:00", order_id="b", articles=1),
            ev("return", "2026-06-04T00:00:00", order_id="unknown", articles=5),
        )["customer_segment"]

        assert expected == (segment["returns_articles_ratio"], segment["returns_number_total"])

    def test_returns_ratio_caps_each_order(self):
        """An order cannot return more articles than it had: the ratio stays <= 100."""
        segment = profile(
            ev("purchase", "2026-06-01T00:00:00", order_id="a", value=10, articles=2),
            ev("return", "2026-06-03T00:00:00", order_id="a", articles=2),
            ev("return", "2026-06-04T00:00:00", order_id="a", articles=2),
        )["customer_segment"]

        assert 100.0 == segment["returns_articles_ratio"]


class TestViews:
    def test_most_recent_first_and_distinct(self):
        """Products, categories and brands: distinct, latest view first."""
        expected = {
            "products_viewed": ["A", "B"],
            "categories_viewed": ["bags", "shoes"],
            "brands_viewed": ["acme"],
        }

        document = profile(
            ev("product_view", "2026-06-01T00:00:00", sku="A", category="shoes", brand="acme"),
            ev("product_view", "2026-06-02T00:00:00", sku="B", category="shoes"),
            ev("product_view", "2026-06-03T00:00:00", sku="A", brand="acme"),
            ev("page_view", "2026-06-04T00:00:00", category="bags"),
        )

        assert expected == {key: document[key] for key in expected}

    def test_lists_are_bounded(self):
        """Only the most recent MAX_PRODUCTS products and MAX_CATEGORIES categories stay."""
        start = datetime(2026, 6, 1, tzinfo=UTC)
        events = [
            ev(
                "product_view",
                (start + timedelta(minutes=i)).isoformat(),
                sku=f"P{i:03d}",
                category=f"C{i:03d}",
            )
            for i in range(80)
        ]
        expected = (
            [f"P{i:03d}" for i in range(79, 79 - MAX_PRODUCTS, -1)],
            [f"C{i:03d}" for i in range(79, 79 - MAX_CATEGORIES, -1)],
        )

        document = profile(*reversed(events))

        assert expected == (document["products_viewed"], document["categories_viewed"])

    def test_old_view_of_an_evicted_value_does_not_return(self):
        """A late, old view of a product outside the top N leaves the list alone."""
        start = datetime(2026, 6, 1, tzinfo=UTC)
        events = [
            ev("product_view", (start + timedelta(minutes=i)).isoformat(), sku=f"P{i:03d}")
            for i in range(MAX_PRODUCTS)
        ]
        late = ev("product_view", "2026-05-01T00:00:00", sku="OLD")

        expected = without_engagement(profile(*events)) | {
            "first_seen": "2026-05-01T00:00:00.000000Z"
        }

        assert expected == without_engagement(profile(*events, late))


class TestCart:
    def test_adds_and_removes(self):
        """Lines add up per sku, a bare remove drops the line, value uses the latest price."""
        expected = {
            "items": [{"sku": "A", "quantity": 3, "price": 12}, {"sku": "C", "quantity": 1}],
            "value": 36.0,
            "updated_at": "2026-06-01T10:05:00.000000Z",
        }

        actual = profile(
            ev("add_to_cart", "2026-06-01T10:00:00", sku="A", quantity=2, price=10),
            ev("add_to_cart", "2026-06-01T10:01:00", sku="B", quantity=1, price=5),
            ev("add_to_cart", "2026-06-01T10:02:00", sku="A", quantity=2, price=12),
            ev("remove_from_cart", "2026-06-01T10:03:00", sku="A", quantity=1),
            ev("remove_from_cart", "2026-06-01T10:04:00", sku="B"),
            ev("add_to_cart", "2026-06-01T10:05:00", sku="C"),
        )["cart"]

        assert expected == actual

    def test_purchase_empties_the_cart(self):
        """A purchase later than the cart events empties it: no cart field."""
        document = profile(
            ev("add_to_cart", "2026-06-01T10:00:00", sku="A", quantity=1, price=10),
            ev("purchase", "2026-06-01T10:10:00", order_id="o", value=10, articles=1),
        )

        assert "cart" not in document

    @pytest.mark.parametrize("late", [False, True], ids=["in-order", "cart-event-late"])
    def test_cart_after_purchase_is_kept(self, late: bool):
        """Cart events after the latest purchase form the cart; late earlier ones are ignored."""
        before = ev("add_to_cart", "2026-06-01T10:00:00", sku="A", quantity=1, price=10)
        purchase = ev("purchase", "2026-06-01T10:10:00", order_id="o", value=10, articles=1)
        after = ev("add_to_cart", "2026-06-01T11:00:00", sku="B", quantity=1, price=4)
        events = [purchase, after, before] if late else [before, purchase, after]
        expected = {
            "items": [{"sku": "B", "quantity": 1, "price": 4}],
            "value": 4.0,
            "updated_at": "2026-06-01T11:00:00.000000Z",
        }

        assert expected == profile(*events)["cart"]

    def test_cart_that_cancels_out_is_empty_not_absent(self):
        """Cart events after the last purchase that net to nothing: an empty cart."""
        expected = {"items": [], "value": 0.0, "updated_at": "2026-06-01T10:01:00.000000Z"}

        actual = profile(
            ev("add_to_cart", "2026-06-01T10:00:00", sku="A", quantity=1, price=10),
            ev("remove_from_cart", "2026-06-01T10:01:00", sku="A", quantity=5),
        )["cart"]

        assert expected == actual


class TestCampaigns:
    def test_seen_clicked_converted(self):
        """Campaign ids per interaction kind, most recent first; absent kinds absent."""
        expected = {"seen": ["b", "a"], "clicked": ["a"]}

        actual = profile(
            ev("campaign_impression", "2026-06-01T00:00:00", campaign="a", variant="x"),
            ev("campaign_impression", "2026-06-02T00:00:00", campaign="b"),
            ev("campaign_click", "2026-06-02T00:01:00", campaign="a", decision_id="d"),
        )["campaigns"]

        assert expected == actual


class TestAttributes:
    @pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
    def test_last_writer_wins_by_timestamp(self, reverse: bool):
        """Latest write wins in any order; null removes and an older write cannot revive it."""
        events = [
            ev("set_attributes", "2026-06-01T00:00:00", attributes={"tier": "silver", "x": 1}),
            ev("set_attributes", "2026-06-02T00:00:00", attributes={"tier": "gold"}),
            ev("set_attributes", "2026-06-03T00:00:00", attributes={"x": None}),
        ]
        expected = {"tier": "gold"}

        actual = profile(*(reversed(events) if reverse else events))["attributes"]

        assert expected == actual

    def test_same_timestamp_breaks_ties_by_event_id(self):
        """Two writes at the same moment: the larger event_id wins, in any order."""
        first = ev("set_attributes", "2026-06-01T00:00:00", "a", attributes={"t": 1})
        second = ev("set_attributes", "2026-06-01T00:00:00", "b", attributes={"t": 2})

        assert (
            {"t": 2} == profile(first, second)["attributes"] == profile(second, first)["attributes"]
        )


class TestRebuild:
    def test_rebuild_drops_repeated_event_ids(self):
        """The same event twice in a log counts once."""
        session = ev("session_start", "2026-06-01T00:00:00")

        assert {"visits": 1} == {"visits": render(rebuild([session, session]))["visits"]}

    def test_out_of_order_equals_rebuild(self):
        """A stream folded in arrival order renders like the sorted rebuild."""
        events = [
            ev("add_to_cart", "2026-06-01T10:00:00", sku="A", quantity=1, price=10),
            ev("purchase", "2026-06-02T00:00:00", order_id="o2", value=30, articles=3),
            ev("add_to_cart", "2026-06-02T10:00:00", sku="B", quantity=2, price=3),
            ev("purchase", "2026-06-01T11:00:00", order_id="o1", value=10, articles=1),
            ev("return", "2026-06-03T00:00:00", order_id="o2", articles=1),
            ev("session_start", "2026-05-31T00:00:00"),
        ]

        assert render(rebuild(events)) == profile(*reversed(events)) == profile(*events)

    def test_state_survives_json(self):
        """A state stored as JSON and loaded again folds on exactly as before."""
        events = [
            ev("purchase", "2026-06-02T00:00:00", order_id="o2", value=30, articles=3),
            ev("add_to_cart", "2026-06-02T10:00:00", sku="B", quantity=2, price=3),
            ev("set_attributes", "2026-06-02T10:00:00", attributes={"a": [1, {"b": 2}]}),
        ]
        state = new_state()
        apply(state, events[0])
        copied = json.loads(json.dumps(state))
        for event in events[1:]:
            apply(state, event)
            apply(copied, event)

        assert render(state) == render(copied)

    def test_apply_leaves_the_event_alone(self):
        """Folding an event does not mutate its properties."""
        event = ev("set_attributes", "2026-06-02T10:00:00", attributes={"a": {"b": 1}})
        before = copy.deepcopy(dict(event.properties))

        apply(new_state(), event)

        assert before == event.properties


def test_format_timestamp_is_fixed_width_utc():
    """Timestamps are stored fixed-width in UTC, so string order is time order."""
    moment = datetime(2026, 6, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))

    assert "2026-06-01T00:03:04.000000Z" == format_timestamp(moment)
