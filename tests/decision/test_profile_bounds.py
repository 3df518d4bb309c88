"""Bounds of events and of the per-visitor state: the poison batch of issue 12, numbers
and characters refused with a path, legacy events folded without raising."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from decision import Event, InvalidRequestError, validate_events
from decision import profile as profile_module
from decision.model import MAX_EXACT_INTEGER
from decision.profile import (
    MAX_AMOUNT,
    MAX_ATTRIBUTES,
    MAX_CART_EVENTS,
    MAX_COUNT,
    MAX_ORDERS,
    MAX_RETURNS,
    apply,
    new_state,
    rebuild,
    render,
)

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
START = datetime(2026, 6, 1, tzinfo=UTC)


def raw(kind: str, event_id: str = "e-1", visitor_id: str = "v-1", **properties: Any) -> dict:
    """A raw event of ``kind`` with ``properties`` as given."""
    return {
        "event_id": event_id,
        "visitor_id": visitor_id,
        "type": kind,
        "timestamp": "2026-06-30T10:00:00Z",
        "properties": properties,
    }


def problems_of(events: list[Any], **kwargs: Any) -> list[str]:
    """The problems validate_events reports, as "path: message" strings."""
    with pytest.raises(InvalidRequestError) as caught:
        validate_events(events, NOW, **kwargs)
    return [str(problem) for problem in caught.value.problems]


def legacy(kind: str, minute: int, event_id: str | None = None, **properties: Any) -> Event:
    """An event as an older version stored it: built without today's validation."""
    return Event(
        event_id or f"e-{minute:04d}", "v", kind, START + timedelta(minutes=minute), properties
    )


def fold(events: list[Event]) -> dict[str, Any]:
    """The rendered profile of ``events`` applied one by one in the order given, the state
    stored as JSON in between (as the store does)."""
    state = new_state()
    for event in events:
        apply(state, event)
        state = json.loads(json.dumps(state))
    return render(state)


class TestPoisonBatch:
    def test_two_huge_purchases_are_refused_not_folded(self):
        """Issue 12: value 1e308 is refused at validation with its path, so it never
        reaches the fold where two of them overflowed math.fsum."""
        batch = [
            raw("purchase", "p1", order_id="o1", value=1e308, articles=1),
            raw("purchase", "p2", order_id="o2", value=1e308, articles=1),
        ]
        expected = [
            f"events[0].properties.value: must be <= {MAX_AMOUNT}",
            f"events[1].properties.value: must be <= {MAX_AMOUNT}",
        ]

        assert expected == problems_of(batch)

    def test_stored_huge_purchases_fold_without_raising(self):
        """Two purchases of 1e308 already in an event log (from an older version) fold and
        render: each value counts as MAX_AMOUNT."""
        events = [
            legacy("purchase", 1, order_id="o1", value=1e308, articles=1),
            legacy("purchase", 2, order_id="o2", value=1e308, articles=1),
        ]
        expected = 2 * MAX_AMOUNT

        actual = render(rebuild(events))["customer_segment"]["outbounds_value_total"]

        assert expected == actual

    def test_huge_cart_quantities_are_refused(self):
        """Three add_to_cart of 2**63-1 (which summed to 27670116110564327421) are refused."""
        batch = [
            raw("add_to_cart", f"c{i}", sku="S", quantity=2**63 - 1, price=1) for i in range(3)
        ]
        expected = [f"events[{i}].properties.quantity: must be <= {MAX_COUNT}" for i in range(3)]

        assert expected == problems_of(batch)

    def test_stored_huge_quantities_render_bounded_json(self):
        """Stored cart changes of 2**63-1 render as MAX_COUNT each: a number every JSON
        reader reads exactly."""
        events = [legacy("add_to_cart", i, sku="S", quantity=2**63 - 1, price=1) for i in range(3)]
        expected = [{"sku": "S", "quantity": 3 * MAX_COUNT, "price": 1}]

        actual = fold(events)["cart"]["items"]

        assert expected == actual


class TestNumberBounds:
    @pytest.mark.parametrize(
        ("kind", "properties", "path", "message"),
        [
            (
                "purchase",
                {"order_id": "o", "value": MAX_AMOUNT * 10, "articles": 1},
                "value",
                f"must be <= {MAX_AMOUNT}",
            ),
            (
                "purchase",
                {"order_id": "o", "value": 1, "articles": MAX_COUNT + 1},
                "articles",
                f"must be <= {MAX_COUNT}",
            ),
            (
                "return",
                {"order_id": "o", "articles": 10**30},
                "articles",
                f"must be <= {MAX_COUNT}",
            ),
            ("product_view", {"sku": "S", "price": 1e300}, "price", f"must be <= {MAX_AMOUNT}"),
            (
                "remove_from_cart",
                {"sku": "S", "quantity": 2**53},
                "quantity",
                f"must be <= {MAX_COUNT}",
            ),
            (
                "campaign_conversion",
                {"campaign": "c", "value": 1e13},
                "value",
                f"must be <= {MAX_AMOUNT}",
            ),
        ],
        ids=[
            "purchase-value",
            "articles",
            "return-articles",
            "price",
            "quantity",
            "campaign-value",
        ],
    )
    def test_over_the_bound_is_refused_with_its_path(self, kind, properties, path, message):
        """Every amount and count has an upper bound, named with the property's path."""
        expected = [f"events[0].properties.{path}: {message}"]

        assert expected == problems_of([raw(kind, **properties)])

    def test_the_bounds_themselves_are_accepted(self):
        """MAX_AMOUNT and MAX_COUNT are valid values."""
        batch = [
            raw("purchase", "p", order_id="o", value=MAX_AMOUNT, articles=MAX_COUNT),
            raw("add_to_cart", "c", sku="S", quantity=MAX_COUNT, price=float(MAX_AMOUNT)),
        ]

        assert 2 == len(validate_events(batch, NOW))

    @pytest.mark.parametrize(
        ("value", "path"),
        [
            (2**53 + 1, "events[0].properties.properties.n"),
            (-(2**53) - 1, "events[0].properties.properties.n"),
            ([1, 2**70], "events[0].properties.properties.n[1]"),
            ({"deep": 10**20}, "events[0].properties.properties.n.deep"),
        ],
        ids=["above", "below", "in-list", "in-object"],
    )
    def test_custom_integers_stay_within_2_53(self, value, path):
        """Integers inside a custom object stay within +-2**53, so JSON readers in every
        language read them exactly."""
        expected = [f"{path}: must be an integer from {-MAX_EXACT_INTEGER} to {MAX_EXACT_INTEGER}"]

        actual = problems_of([raw("custom", name="quiz", properties={"n": value})])

        assert expected == actual

    def test_attribute_integers_stay_within_2_53(self):
        """set_attributes follows the same rule as custom objects."""
        batch = [raw("set_attributes", attributes={"points": 2**60})]
        bound = MAX_EXACT_INTEGER
        expected = [
            f"events[0].properties.attributes.points: must be an integer from {-bound} to {bound}"
        ]

        assert expected == problems_of(batch, allow_internal=True)

    def test_large_floats_and_exact_integers_are_accepted(self):
        """A finite float of any size is JSON every language reads; so is 2**53."""
        batch = [raw("custom", name="q", properties={"f": 1e300, "i": MAX_EXACT_INTEGER})]

        [event] = validate_events(batch, NOW)

        assert {"f": 1e300, "i": MAX_EXACT_INTEGER} == event.properties["properties"]


class TestControlCharacters:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("event_id", "e\x001"),
            ("visitor_id", "v\n1"),
            ("visitor_id", "v\x7f"),
            ("visitor_id", "v\x85"),
        ],
        ids=["nul-event-id", "newline-visitor", "del", "c1"],
    )
    def test_in_event_ids(self, field, value):
        """NUL, newlines and other C0/C1 control characters are refused in ids."""
        event = raw("session_start")
        event[field] = value
        expected = [f"events[0].{field}: must not contain control characters ({value[1]!r} at 1)"]

        assert expected == problems_of([event])

    @pytest.mark.parametrize(
        ("kind", "properties", "path"),
        [
            ("product_view", {"sku": "S\x00"}, "sku"),
            ("purchase", {"order_id": "o\x01", "value": 1, "articles": 1}, "order_id"),
            ("campaign_click", {"campaign": "c\x1b"}, "campaign"),
            ("identify", {"customer_id": "c\x00"}, "customer_id"),
            ("page_view", {"category": "shoes\x00"}, "category"),
        ],
        ids=["sku", "order", "campaign", "customer", "category"],
    )
    def test_in_id_properties(self, kind, properties, path):
        """Id properties follow the same rule, each named by its path."""
        [text] = problems_of([raw(kind, **properties)])

        assert text.startswith(f"events[0].properties.{path}: must not contain control characters")

    def test_unpaired_surrogate_is_refused(self):
        """A lone surrogate cannot be stored as UTF-8: refused like a control character."""
        [text] = problems_of([raw("product_view", sku="S\ud800")])

        assert (
            "events[0].properties.sku: must not contain control characters ('\\ud800' at 1)" == text
        )

    def test_in_object_keys(self):
        """A key of a custom object holding a control character is named by its object's
        path, the key shown escaped."""
        event = raw("custom", name="quiz", properties={"ok": {"bad\x00key": 1}})
        path = "events[0].properties.properties.ok"
        expected = [f"{path}: key 'bad\\x00key' must not contain control characters"]

        assert expected == problems_of([event])

    def test_tabs_in_free_text_stay_allowed(self):
        """Free text (title, url, referrer) is not an id: a tab in a title is fine."""
        [event] = validate_events([raw("page_view", title="Shoes\tSale")], NOW)

        assert "Shoes\tSale" == event.properties["title"]


class TestLegacyEvents:
    def test_every_out_of_bound_number_folds(self):
        """Whatever an older version let through (huge, infinite, NaN, negative, a string)
        folds and renders finite JSON: numbers are clamped into their bounds, others are 0."""
        events = [
            legacy("purchase", 1, order_id="a", value=math.inf, articles=10**40),
            legacy("purchase", 2, order_id="b", value=math.nan, articles=-3),
            legacy("purchase", 3, order_id="c", value="12", articles=2.5),
            legacy("add_to_cart", 4, sku="S", quantity=10**30, price=-1e308),
            legacy("add_to_cart", 5, sku="T", quantity=1, price=math.inf),
            legacy("return", 6, order_id="a", articles=math.inf),
            legacy("campaign_conversion", 7, campaign="c", value=math.nan),
        ]
        expected_segment = {
            "outbounds_number_total": 3,
            "outbounds_value_total": float(MAX_AMOUNT),
            "outbounds_avg_basket_size": (MAX_COUNT + 0 + 2) / 3,
            "outbounds_avg_time_delta": 1 / 1440,
            "last_purchase_date": "2026-06-01",
            "returns_articles_ratio": 100 * MAX_COUNT / (MAX_COUNT + 2),
            "returns_number_total": 1,
        }
        expected_cart = [
            {"sku": "S", "quantity": MAX_COUNT, "price": 0},
            {"sku": "T", "quantity": 1, "price": MAX_AMOUNT},
        ]

        document = render(rebuild(events))

        assert expected_segment == document["customer_segment"]
        assert expected_cart == document["cart"]["items"]
        assert document == json.loads(json.dumps(document, allow_nan=False))

    def test_state_of_the_previous_version_is_not_current(self):
        """The bounded fold has its own STATE_VERSION: stores rebuild older states from
        the event log, which heals a profile that holds 1e308."""
        assert 2 <= new_state()["v"] == profile_module.STATE_VERSION


class TestBoundedState:
    def test_orders_keep_the_most_recent(self):
        """Past MAX_ORDERS orders the oldest are forgotten; the totals cover the kept ones."""
        events = [
            legacy("purchase", i, order_id=f"o{i}", value=1, articles=1)
            for i in range(MAX_ORDERS + 5)
        ]

        state = rebuild(events)

        assert MAX_ORDERS == len(state["orders"])
        assert {f"o{i}" for i in range(5, MAX_ORDERS + 5)} == set(state["orders"])

    def test_returns_keep_the_most_recent(self):
        """Past MAX_RETURNS returns the oldest are forgotten."""
        events = [legacy("return", i, order_id="o", articles=1) for i in range(MAX_RETURNS + 3)]

        assert MAX_RETURNS == render(rebuild(events))["customer_segment"]["returns_number_total"]

    def test_cart_keeps_the_most_recent_changes(self):
        """Past MAX_CART_EVENTS changes since the last purchase the oldest are forgotten."""
        events = [legacy("add_to_cart", i, sku="S", quantity=1) for i in range(MAX_CART_EVENTS + 7)]

        state = rebuild(events)

        assert MAX_CART_EVENTS == len(state["cart"])
        assert [{"sku": "S", "quantity": MAX_CART_EVENTS}] == render(state)["cart"]["items"]

    def test_attributes_keep_the_most_recently_written(self):
        """Past MAX_ATTRIBUTES names (removed ones included) the least recently written
        is forgotten; names written by one event are ordered by name."""
        events = [
            legacy("set_attributes", i, attributes={f"a{i:04d}": i}) for i in range(MAX_ATTRIBUTES)
        ]
        events.append(legacy("set_attributes", 10_000, attributes={"z1": 1, "z2": 2}))

        attributes = render(rebuild(events))["attributes"]

        assert MAX_ATTRIBUTES == len(attributes)
        assert "a0000" not in attributes and "a0001" not in attributes
        assert {"a0002", "z1", "z2"} <= set(attributes)
