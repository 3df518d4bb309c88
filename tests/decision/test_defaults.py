"""The default and demo documents, their segments, and the JSON Schema for editors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import jsonschema
import pytest

from decision import (
    Event,
    RulesetError,
    compile_ruleset,
    default_document,
    demo_document,
    visitor_segments,
)
from decision.profile import rebuild, render

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
SCHEMA = json.loads(resources.files("decision").joinpath("rules.schema.json").read_text("utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

PREBUILT = [
    "everyone",
    "new_visitors",
    "returning_customers",
    "high_value_customers",
    "cart_abandoners",
    "browsers",
    "at_risk_customers",
    "holiday_shoppers",
    "sale_seekers",
]
JOURNEYS = PREBUILT[5:]
PARCELLAB = [
    "repeat_minimal_returns",
    "high_spending_recent_buyers",
    "lapsed_frequent_buyers",
    "high_return_risk",
    "premium_frequent_returners",
    "frequent_low_value_buyers",
]


def segments_of(profile: dict[str, Any], context: dict[str, Any] | None = None) -> set[str]:
    ruleset = compile_ruleset(demo_document())
    return set(visitor_segments(ruleset, profile, context or {}, NOW))


class TestDefaultDocument:
    def test_prebuilt_segments_only(self) -> None:
        """The default document holds the pre-built segments, no placements or campaigns."""
        document = default_document()
        expected = (PREBUILT, [], [], [])

        actual = (
            [s["id"] for s in document["segments"]],
            document["placements"],
            document["exclusion_groups"],
            document["campaigns"],
        )

        assert expected == actual

    def test_every_segment_is_described(self) -> None:
        """Each pre-built and demo segment states its definition."""
        for segment in demo_document()["segments"]:
            assert segment["description"], segment["id"]
            assert segment["name"], segment["id"]

    @pytest.mark.parametrize("make", [default_document, demo_document], ids=lambda f: f.__name__)
    def test_fresh_on_every_call(self, make: Any) -> None:
        """Callers may edit the returned document without affecting the next one."""
        first = make()
        expected = copy.deepcopy(first)

        first["segments"][1]["filter"]["visits"] = {"$gt": 99}
        first["segments"].clear()

        assert expected == make()


class TestPrebuiltSegments:
    @pytest.mark.parametrize(
        ("profile", "expected"),
        [
            ({}, {"everyone", "new_visitors"}),
            ({"visits": 1}, {"everyone", "new_visitors"}),
            ({"visits": 2}, {"everyone"}),
            ({"visits": 2, "customer_segment": {"outbounds_number_total": 1}}, {"everyone", "returning_customers"}),
            ({"visits": 1, "customer_segment": {"outbounds_number_total": 1}}, {"everyone", "new_visitors"}),
            ({"visits": 5, "customer_segment": {"outbounds_value_total": 999.99}}, {"everyone"}),
            ({"visits": 5, "customer_segment": {"outbounds_value_total": 1000}}, {"everyone", "high_value_customers"}),
        ],
        ids=repr,
    )
    def test_visit_and_value_segments(self, profile: dict[str, Any], expected: set[str]) -> None:
        """New, returning and high-value visitors follow their stated thresholds."""
        actual = segments_of(profile) & set(PREBUILT)

        assert expected == actual

    @pytest.mark.parametrize(
        ("cart", "abandoned"),
        [
            ({"items": [{"sku": "A"}], "updated_at": "2026-07-01T11:00:00Z"}, True),
            ({"items": [{"sku": "A"}], "updated_at": "2026-07-01T11:00:01Z"}, False),
            ({"items": [{"sku": "A"}], "updated_at": "2026-06-20"}, True),
            ({"items": [], "updated_at": "2026-06-20T00:00:00Z"}, False),
            ({"items": [{"sku": "A"}]}, False),
            ({"updated_at": "2026-06-20T00:00:00Z"}, False),
        ],
        ids=repr,
    )
    def test_cart_abandoners(self, cart: dict[str, Any], abandoned: bool) -> None:
        """A cart with items, unchanged for at least an hour, is abandoned."""
        actual = "cart_abandoners" in segments_of({"visits": 2, "cart": cart})

        assert abandoned == actual


def journeys_of(*events: tuple[str, float, dict[str, Any]]) -> set[str]:
    """The journey segments of the profile folded from ``(type, days before NOW,
    properties)`` events with the default document's activity declaration."""
    ruleset = compile_ruleset(default_document())
    log = [
        Event(f"e{i}", "v", kind, NOW - timedelta(days=days_ago), properties)
        for i, (kind, days_ago, properties) in enumerate(events)
    ]
    profile = render(rebuild(log, ruleset.activity))
    return set(visitor_segments(ruleset, profile, {}, NOW)) & set(JOURNEYS)


def _order(days_ago: float, order_id: str = "o1") -> tuple[str, float, dict[str, Any]]:
    return ("purchase", days_ago, {"order_id": order_id, "value": 80.0, "articles": 1})


class TestJourneySegments:
    def test_browsers_visit_without_carts(self):
        """Two sessions in 30 days and no cart: a browser; a cart add ends that."""
        visits = [("session_start", 20, {}), ("page_view", 20, {}), ("session_start", 2, {})]
        expected = ({"browsers"}, set())

        actual = (
            journeys_of(*visits),
            journeys_of(*visits, ("add_to_cart", 1, {"sku": "A"})),
        )

        assert expected == actual

    def test_at_risk_customers_bought_before_and_visit_less(self):
        """An order 70 days ago, three sessions 30-90 days ago, one since: at risk; a
        second session in the last 30 days means they are still coming (browsing)."""
        history = [
            _order(70),
            ("session_start", 80, {}),
            ("session_start", 60, {}),
            ("session_start", 40, {}),
            ("session_start", 10, {}),
        ]
        expected = ({"at_risk_customers"}, {"browsers"})

        actual = (journeys_of(*history), journeys_of(*history, ("session_start", 5, {})))

        assert expected == actual

    def test_holiday_shoppers_bought_in_last_years_holidays(self):
        """NOW is July 2026: an order on 2025-12-20 makes a holiday shopper, one on
        2026-01-02 does not."""
        expected = ({"holiday_shoppers"}, set())

        actual = (
            journeys_of(_order((NOW - datetime(2025, 12, 20, tzinfo=UTC)).days)),
            journeys_of(_order((NOW - datetime(2026, 1, 2, tzinfo=UTC)).days)),
        )

        assert expected == actual

    def test_sale_seekers_view_sale_items_or_bought_on_black_friday(self):
        """Two sale items viewed in 30 days, or an order in Black Friday week 2025."""
        sale = ("product_view", 3, {"sku": "A", "on_sale": True})
        black_friday = _order((NOW - datetime(2025, 11, 28, tzinfo=UTC)).days)
        expected = (
            {"sale_seekers", "browsers"},
            {"browsers"},
            {"sale_seekers", "holiday_shoppers"},
        )

        actual = (
            journeys_of(sale, ("product_view", 5, {"sku": "B", "on_sale": True})),
            journeys_of(sale, ("product_view", 5, {"sku": "B", "on_sale": False})),
            journeys_of(black_friday),
        )

        assert expected == actual

    def test_the_default_document_declares_what_they_read(self):
        """Sessions for 90 days, carts and product views for 30, purchases for two years."""
        expected = {"session": 90, "add_to_cart": 30, "product_view": 30, "purchase": 732}

        actual = {
            kind: need.horizon // 86_400_000_000
            for kind, need in compile_ruleset(default_document()).activity.types.items()
        }

        assert expected == actual


class TestParcelLabSegments:
    @pytest.mark.parametrize(
        ("metrics", "expected"),
        [
            (
                {"outbounds_avg_time_delta": 10, "returns_articles_ratio": 5},
                {"repeat_minimal_returns"},
            ),
            ({"outbounds_avg_time_delta": 15, "returns_articles_ratio": 1}, set()),
            (
                {"last_purchase_date": "2026-06-20", "outbounds_value_total": 1000},
                {"high_spending_recent_buyers"},
            ),
            ({"last_purchase_date": "2026-06-01", "outbounds_value_total": 5000}, set()),
            (
                {"outbounds_avg_time_delta": 7, "last_purchase_date": "2026-05-02T12:00:00Z"},
                {"lapsed_frequent_buyers"},
            ),
            ({"outbounds_avg_time_delta": 7, "last_purchase_date": "2026-05-03"}, set()),
            ({"returns_articles_ratio": 40}, {"high_return_risk"}),
            (
                {"outbounds_value_total": 1200, "returns_articles_ratio": 30},
                {"premium_frequent_returners"},
            ),
            (
                {"outbounds_avg_basket_size": 1.5, "outbounds_number_total": 10},
                {"frequent_low_value_buyers"},
            ),
            ({"outbounds_avg_basket_size": 2.5, "outbounds_number_total": 30}, set()),
        ],
        ids=repr,
    )
    def test_use_cases(self, metrics: dict[str, Any], expected: set[str]) -> None:
        """parcelLab's six use cases match on their stated thresholds (now: 2026-07-01)."""
        actual = segments_of({"customer_segment": metrics}) & set(PARCELLAB)

        assert expected == actual


INVALID_DOCUMENTS = {
    "unknown-top-level-key": {"campaign": []},
    "bad-id": {"segments": [{"id": "has space", "filter": {}}]},
    "segment-without-filter": {"segments": [{"id": "s"}]},
    "unknown-campaign-key": {
        "placements": [{"id": "p"}],
        "campaigns": [
            {"id": "c", "placements": ["p"], "prio": 1, "variants": [{"id": "v", "content": 1}]}
        ],
    },
    "negative-weight": {
        "placements": [{"id": "p"}],
        "campaigns": [
            {"id": "c", "placements": ["p"], "variants": [{"id": "v", "weight": -1, "content": 1}]}
        ],
    },
    "status": {
        "placements": [{"id": "p"}],
        "campaigns": [
            {
                "id": "c",
                "placements": ["p"],
                "status": "on",
                "variants": [{"id": "v", "content": 1}],
            }
        ],
    },
    "traffic-over-100": {
        "placements": [{"id": "p"}],
        "campaigns": [
            {
                "id": "c",
                "placements": ["p"],
                "traffic_allocation": 120,
                "variants": [{"id": "v", "content": 1}],
            }
        ],
    },
    "no-content": {
        "placements": [{"id": "p"}],
        "campaigns": [{"id": "c", "placements": ["p"], "variants": [{"id": "v"}]}],
    },
    "priority-string": {
        "placements": [{"id": "p"}],
        "campaigns": [
            {
                "id": "c",
                "placements": ["p"],
                "priority": "1",
                "variants": [{"id": "v", "content": 1}],
            }
        ],
    },
    "naive-schedule": {
        "placements": [{"id": "p"}],
        "campaigns": [
            {
                "id": "c",
                "placements": ["p"],
                "schedule": {"start": "2026-06-01T00:00:00"},
                "variants": [{"id": "v", "content": 1}],
            }
        ],
    },
}


class TestSchema:
    def test_schema_is_valid_draft_2020_12(self) -> None:
        """rules.schema.json is itself a valid draft 2020-12 schema."""
        jsonschema.Draft202012Validator.check_schema(SCHEMA)

        assert "https://json-schema.org/draft/2020-12/schema" == SCHEMA["$schema"]

    @pytest.mark.parametrize("make", [default_document, demo_document], ids=lambda f: f.__name__)
    def test_shipped_documents_pass(self, make: Any) -> None:
        """The default and demo documents validate against the schema."""
        expected: list[str] = []

        actual = [e.message for e in VALIDATOR.iter_errors(make())]

        assert expected == actual

    def test_schema_key_allowed(self) -> None:
        """A top-level $schema pointer passes both the schema and the compiler."""
        document = {**default_document(), "$schema": "./rules.schema.json"}

        assert VALIDATOR.is_valid(document)
        compile_ruleset(document)

    @pytest.mark.parametrize(
        "document", list(INVALID_DOCUMENTS.values()), ids=list(INVALID_DOCUMENTS)
    )
    def test_invalid_documents_fail_both(self, document: dict[str, Any]) -> None:
        """A document the schema rejects is rejected by compile_ruleset too."""
        assert not VALIDATOR.is_valid(document)
        with pytest.raises(RulesetError):
            compile_ruleset(document)
