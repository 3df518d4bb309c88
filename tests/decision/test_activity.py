"""Activity clauses ($activity, $sequence, calendar windows): validation with paths, what
each shape means on hand-written event logs, and the declaration of what they read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from decision import Event, FilterError, Predicate, RulesetError, compile_filter, compile_ruleset
from decision.profile import rebuild, render
from decision.retention import DAY_US, HOUR_US, MAX_HISTORY_DAYS, TypeNeeds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

_counter = iter(range(10**9))


def ev(kind: str, when: datetime | timedelta, **properties: Any) -> Event:
    """An event at ``when`` (a moment, or a time before NOW)."""
    moment = NOW - when if isinstance(when, timedelta) else when
    return Event(f"e{next(_counter):07d}", "v", kind, moment, properties)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def document(events: list[Event], *predicates: Predicate) -> dict[str, Any]:
    """The profile document of ``events`` folded with what ``predicates`` read."""
    needs = predicates[0].activity
    for predicate in predicates[1:]:
        needs = needs.merge(predicate.activity)
    return render(rebuild(events, needs))


def matches(spec: dict[str, Any], events: list[Event], now: datetime = NOW) -> bool:
    """Whether ``spec`` matches the profile of ``events`` at ``now``."""
    predicate = compile_filter(spec)
    return predicate(document(events, predicate), now)


def error_of(spec: Any) -> str:
    """``"path: message"`` of the FilterError compiling ``spec`` raises."""
    with pytest.raises(FilterError) as caught:
        compile_filter(spec)
    return f"{caught.value.path}: {caught.value.message}"


SHOES_3_IN_7 = {
    "$activity": {
        "type": "product_view",
        "properties": {"category": "shoes"},
        "timestamp": {"$gte": {"$daysAgo": 7}},
        "count": {"$gte": 3},
    }
}
SPENT_1000_IN_365 = {
    "$activity": {
        "type": "purchase",
        "timestamp": {"$gte": {"$daysAgo": 365}},
        "sum": {"value": {"$gte": 1000}},
    }
}
SALE_VIEW_IN_14 = {
    "$activity": {
        "type": "product_view",
        "properties": {"on_sale": True},
        "timestamp": {"$gte": {"$daysAgo": 14}},
        "count": {"$gte": 1},
    }
}
NO_PURCHASE_IN_14 = {
    "$activity": {"type": "purchase", "timestamp": {"$gte": {"$daysAgo": 14}}, "count": 0}
}
CART_NOT_BOUGHT_IN_24H = {
    "$sequence": {
        "first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 7}}},
        "notFollowedBy": {"type": "purchase"},
        "within": {"hours": 24},
    }
}


class TestTheIssueShapes:
    def test_three_shoe_views_in_seven_days(self):
        """Three shoe views within 7 days match; bags and an 8-day-old view do not count."""
        events = [
            ev("product_view", days(1), sku="a", category="shoes"),
            ev("product_view", days(2), sku="b", category="shoes"),
            ev("product_view", days(3), sku="c", category="bags"),
            ev("product_view", days(8), sku="d", category="shoes"),
        ]
        expected = (False, True)

        actual = (
            matches(SHOES_3_IN_7, events),
            matches(
                SHOES_3_IN_7, [*events, ev("product_view", days(6.9), sku="e", category="shoes")]
            ),
        )

        assert expected == actual

    def test_spent_1000_in_a_year(self):
        """600 + 500 within 365 days match; an older order does not add."""
        events = [
            ev("purchase", days(10), order_id="a", value=600.0, articles=1),
            ev("purchase", days(400), order_id="b", value=900.0, articles=1),
        ]
        expected = (False, True)

        actual = (
            matches(SPENT_1000_IN_365, events),
            matches(
                SPENT_1000_IN_365,
                [*events, ev("purchase", days(364), order_id="c", value=400.0, articles=1)],
            ),
        )

        assert expected == actual

    def test_viewed_a_sale_item_in_14_days(self):
        """A product viewed on sale 13 days ago matches; one seen at full price, or on
        sale 15 days ago, does not."""
        expected = (True, False, False)

        actual = (
            matches(SALE_VIEW_IN_14, [ev("product_view", days(13), sku="a", on_sale=True)]),
            matches(SALE_VIEW_IN_14, [ev("product_view", days(1), sku="a", on_sale=False)]),
            matches(SALE_VIEW_IN_14, [ev("product_view", days(15), sku="a", on_sale=True)]),
        )

        assert expected == actual

    def test_a_property_the_type_lacks_is_refused(self):
        """A property product_view events do not have is refused, listing those they do."""
        expected = (
            "$activity.properties.discount: product_view events have no property 'discount' "
            "(sku, category, brand, price, on_sale)"
        )

        assert expected == error_of(
            {"$activity": {"type": "product_view", "properties": {"discount": 10},
                           "timestamp": {"$gte": {"$daysAgo": 14}}}}
        )  # fmt: skip

    def test_no_purchase_in_14_days(self):
        """count = 0 matches a visitor without purchases and one whose last is 15 days old."""
        expected = (True, True, False)

        actual = (
            matches(NO_PURCHASE_IN_14, [ev("page_view", days(1))]),
            matches(
                NO_PURCHASE_IN_14, [ev("purchase", days(15), order_id="a", value=1, articles=1)]
            ),
            matches(
                NO_PURCHASE_IN_14, [ev("purchase", days(13), order_id="a", value=1, articles=1)]
            ),
        )

        assert expected == actual

    def test_cart_then_no_purchase_within_24_hours(self):
        """A cart 2 days ago without a purchase within 24 h matches; bought after 3 h, or
        a cart only 5 hours old (the 24 h are not over), does not."""
        cart = ev("add_to_cart", days(2), sku="a")
        expected = (True, False, False)

        actual = (
            matches(CART_NOT_BOUGHT_IN_24H, [cart]),
            matches(
                CART_NOT_BOUGHT_IN_24H,
                [
                    cart,
                    ev("purchase", days(2) - timedelta(hours=3), order_id="o", value=1, articles=1),
                ],
            ),
            matches(CART_NOT_BOUGHT_IN_24H, [ev("add_to_cart", timedelta(hours=5), sku="a")]),
        )

        assert expected == actual


class TestWindows:
    @pytest.mark.parametrize(
        ("window", "expected"),
        [
            ({"$gte": {"$daysAgo": 2}}, 3),
            ({"$gt": {"$daysAgo": 2}}, 2),
            ({"$gte": {"$daysAgo": 2}, "$lt": {"$daysAgo": 1}}, 1),
            ({"$gte": {"$daysAgo": 2}, "$lte": {"$daysAgo": 1}}, 2),
            ({"$gte": {"$hoursAgo": 24}}, 2),
            (
                {
                    "$gte": {"$date": "2026-11-21T12:00:00Z"},
                    "$lt": {"$date": "2026-11-22T12:00:00Z"},
                },
                1,
            ),
        ],
        ids=["gte", "gt", "gte-lt", "gte-lte", "hours", "absolute"],
    )
    def test_bounds_are_exact_to_the_microsecond(self, window: dict[str, Any], expected: int):
        """Views at exactly 2 and 1 days ago and one now: inclusive and exclusive bounds."""
        events = [ev("page_view", days(2)), ev("page_view", days(1)), ev("page_view", days(0))]
        spec = {"$activity": {"type": "page_view", "timestamp": window, "count": expected}}

        assert matches(spec, events)

    def test_events_stamped_after_now_count_without_an_upper_bound(self):
        """A purchase stamped an hour ahead of the clock is a purchase in the last 14 days."""
        events = [ev("purchase", -timedelta(hours=1), order_id="a", value=5, articles=1)]

        actual = matches(NO_PURCHASE_IN_14, events)

        assert actual is False

    def test_time_passing_moves_the_window(self):
        """The same profile: in the window now, out of it 6 days later."""
        spec = {"$activity": {"type": "page_view", "timestamp": {"$gte": {"$daysAgo": 7}}}}
        predicate = compile_filter(spec)
        profile = document([ev("page_view", days(2))], predicate)
        expected = (True, False)

        actual = (predicate(profile, NOW), predicate(profile, NOW + days(6)))

        assert expected == actual

    def test_absolute_window_needs_no_now(self):
        """A window of fixed dates reads no clock: the filter works without now."""
        spec = {
            "$activity": {
                "type": "page_view",
                "timestamp": {
                    "$gte": {"$date": "2026-11-01T00:00:00Z"},
                    "$lt": {"$date": "2026-12-01T00:00:00Z"},
                },
            }
        }
        predicate = compile_filter(spec)

        actual = (predicate.uses_now, predicate(document([ev("page_view", days(2))], predicate)))

        assert (False, True) == actual


class TestCountAndSum:
    @pytest.mark.parametrize(
        ("condition", "expected"),
        [
            (2, True),
            ({"$eq": 3}, False),
            ({"$ne": 3}, True),
            ({"$gt": 1, "$lt": 3}, True),
            ({"$lte": 1}, False),
        ],
    )
    def test_count_operators(self, condition: Any, expected: bool):
        """Two views, compared with each count condition."""
        events = [ev("page_view", days(1)), ev("page_view", days(2))]
        spec = {
            "$activity": {
                "type": "page_view",
                "timestamp": {"$gte": {"$daysAgo": 3}},
                "count": condition,
            }
        }

        assert expected == matches(spec, events)

    def test_sum_with_a_property_filter(self):
        """Sum of EUR orders only: 10.25 + 20.5 = 30.75, the USD order aside."""
        events = [
            ev("purchase", days(1), order_id="a", value=10.25, articles=1, currency="EUR"),
            ev("purchase", days(2), order_id="b", value=20.5, articles=1, currency="EUR"),
            ev("purchase", days(3), order_id="c", value=500, articles=1, currency="USD"),
        ]
        spec = {
            "$activity": {
                "type": "purchase",
                "properties": {"currency": "EUR"},
                "timestamp": {"$gte": {"$daysAgo": 30}},
                "sum": {"value": 30.75},
            }
        }

        assert matches(spec, events)

    def test_sum_and_count_together(self):
        """Both conditions must hold: two orders summing to at least 100."""
        events = [
            ev("purchase", days(1), order_id="a", value=60, articles=1),
            ev("purchase", days(2), order_id="b", value=50, articles=1),
        ]
        spec = {
            "$activity": {
                "type": "purchase",
                "timestamp": {"$gte": {"$daysAgo": 30}},
                "count": {"$gte": 2},
                "sum": {"value": {"$gte": 100}},
            }
        }

        assert matches(spec, events)

    def test_no_count_means_at_least_one(self):
        """Without count or sum, one matching event is enough."""
        spec = {"$activity": {"type": "identify", "timestamp": {"$gte": {"$daysAgo": 30}}}}
        expected = (False, True)

        actual = (
            matches(spec, [ev("page_view", days(1))]),
            matches(spec, [ev("identify", days(1), customer_id="c")]),
        )

        assert expected == actual

    def test_custom_event_properties_by_dotted_path(self):
        """A custom event's nested properties are filtered and summed by dotted path."""
        events = [
            ev("custom", days(1), name="donation", properties={"amount": 5, "cause": "trees"}),
            ev("custom", days(2), name="donation", properties={"amount": 7, "cause": "trees"}),
            ev("custom", days(3), name="quiz", properties={"amount": 100}),
        ]
        spec = {
            "$activity": {
                "type": "custom",
                "properties": {"name": "donation", "properties.cause": "trees"},
                "timestamp": {"$gte": {"$daysAgo": 30}},
                "sum": {"properties.amount": 12},
            }
        }

        assert matches(spec, events)


class TestSessions:
    def test_two_sessions_in_30_days(self):
        """Sessions are an activity type: two in the last 30 days, a third 40 days ago."""
        events = [
            ev("session_start", days(40)),
            ev("session_start", days(20)),
            ev("page_view", days(20) - timedelta(minutes=5)),
            ev("session_start", days(2)),
        ]
        spec = {
            "$activity": {"type": "session", "timestamp": {"$gte": {"$daysAgo": 30}}, "count": 2}
        }

        assert matches(spec, events)

    def test_engaged_sessions_by_pages_and_duration(self):
        """Sessions with at least 2 pages: one of the two; their durations sum to 600 s."""
        events = [
            ev("page_view", days(3)),
            ev("page_view", days(3) - timedelta(minutes=10)),
            ev("page_view", days(1)),
        ]
        spec = {
            "$activity": {
                "type": "session",
                "properties": {"pages": {"$gte": 2}},
                "timestamp": {"$gte": {"$daysAgo": 30}},
                "count": 1,
                "sum": {"duration": 600},
            }
        }

        assert matches(spec, events)


class TestSequences:
    def test_viewed_then_bought(self):
        """A shoe view followed by a purchase 2 days later, within 7 days."""
        spec = {
            "$sequence": {
                "first": {
                    "type": "product_view",
                    "properties": {"category": "shoes"},
                    "timestamp": {"$gte": {"$daysAgo": 30}},
                },
                "followedBy": {"type": "purchase"},
                "within": {"days": 7},
            }
        }
        view = ev("product_view", days(10), sku="a", category="shoes")
        expected = (True, False, False)

        actual = (
            matches(spec, [view, ev("purchase", days(8), order_id="o", value=1, articles=1)]),
            matches(spec, [view, ev("purchase", days(1), order_id="o", value=1, articles=1)]),
            matches(spec, [view, ev("purchase", days(11), order_id="o", value=1, articles=1)]),
        )

        assert expected == actual

    def test_an_event_does_not_follow_itself(self):
        """Viewed twice: a second view must be another event, at or after the first."""
        spec = {
            "$sequence": {
                "first": {"type": "page_view", "timestamp": {"$gte": {"$daysAgo": 30}}},
                "followedBy": {"type": "page_view"},
                "within": {"hours": 1},
            }
        }
        expected = (False, True)

        actual = (
            matches(spec, [ev("page_view", days(1))]),
            matches(spec, [ev("page_view", days(1)), ev("page_view", days(1))]),
        )

        assert expected == actual

    def test_not_followed_at_all(self):
        """Without within, notFollowedBy means no such event after it up to now."""
        spec = {
            "$sequence": {
                "first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 30}}},
                "notFollowedBy": {"type": "purchase"},
            }
        }
        cart = ev("add_to_cart", days(20), sku="a")
        expected = (True, False, True)

        actual = (
            matches(spec, [cart]),
            matches(spec, [cart, ev("purchase", days(1), order_id="o", value=1, articles=1)]),
            matches(spec, [cart, ev("purchase", days(21), order_id="o", value=1, articles=1)]),
        )

        assert expected == actual


class TestCalendar:
    def test_november_and_december_of_last_year(self):
        """Bought in Nov or Dec 2025 (evaluated in Nov 2026); October 2025 does not count."""
        spec = {"$activity": {"type": "purchase", "during": {"yearsAgo": 1, "months": [11, 12]}}}
        expected = (True, True, False, False)

        actual = tuple(
            matches(spec, [ev("purchase", moment, order_id="o", value=1, articles=1)])
            for moment in (
                datetime(2025, 11, 1, tzinfo=UTC),
                datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
                datetime(2025, 10, 31, 23, 59, tzinfo=UTC),
                datetime(2026, 11, 2, tzinfo=UTC),
            )
        )

        assert expected == actual

    def test_each_of_the_last_two_black_friday_weeks(self):
        """Black Friday weeks 2025 (Nov 24-30) and 2024 (Nov 25-Dec 1): both needed with
        each, either without."""
        each = {
            "$activity": {
                "type": "purchase",
                "during": {"yearsAgo": [1, 2], "period": "black_friday_week", "each": True},
            }
        }
        either = {
            "$activity": {
                "type": "purchase",
                "during": {"yearsAgo": [1, 2], "period": "black_friday_week"},
            }
        }
        in_2025 = ev(
            "purchase", datetime(2025, 11, 30, 23, tzinfo=UTC), order_id="a", value=1, articles=1
        )
        in_2024 = ev(
            "purchase", datetime(2024, 12, 1, 8, tzinfo=UTC), order_id="b", value=1, articles=1
        )
        after = ev("purchase", datetime(2025, 12, 1, tzinfo=UTC), order_id="c", value=1, articles=1)
        expected = (True, False, True, False)

        actual = (
            matches(each, [in_2025, in_2024]),
            matches(each, [in_2025, after]),
            matches(either, [in_2025]),
            matches(either, [after]),
        )

        assert expected == actual

    def test_dates_wrapping_the_year_end(self):
        """Dec 20 to Jan 6 of last year's holidays: Jan 3, 2026 is in it."""
        spec = {
            "$activity": {
                "type": "page_view",
                "during": {"yearsAgo": 1, "dates": ["12-20", "01-06"]},
            }
        }
        expected = (True, False)

        actual = (
            matches(spec, [ev("page_view", datetime(2026, 1, 6, 23, tzinfo=UTC))]),
            matches(spec, [ev("page_view", datetime(2026, 1, 7, tzinfo=UTC))]),
        )

        assert expected == actual

    def test_calendar_is_utc_whatever_the_offset_of_now(self):
        """now at 2026-12-01T01:00+02:00 is still November in UTC: November counts."""
        spec = {"$activity": {"type": "page_view", "during": {"monthsAgo": 0}}}
        predicate = compile_filter(spec)
        profile = document([ev("page_view", datetime(2026, 11, 20, tzinfo=UTC))], predicate)
        now = datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))

        assert predicate(profile, now)

    def test_this_month(self):
        """monthsAgo 0: engaged with campaign X twice this month (November 2026)."""
        spec = {
            "$activity": {
                "type": "campaign_click",
                "properties": {"campaign": "x"},
                "during": {"monthsAgo": 0},
                "count": {"$gte": 2},
            }
        }
        clicks = [
            ev("campaign_click", datetime(2026, 11, 1, tzinfo=UTC), campaign="x"),
            ev("campaign_click", datetime(2026, 10, 31, tzinfo=UTC), campaign="x"),
            ev("campaign_click", datetime(2026, 11, 20, tzinfo=UTC), campaign="y"),
        ]
        expected = (False, True)

        actual = (
            matches(spec, clicks),
            matches(spec, [*clicks, ev("campaign_click", days(1), campaign="x")]),
        )

        assert expected == actual


class TestValidation:
    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            (
                {"$activity": {"type": "product_vew", "timestamp": {"$gte": {"$daysAgo": 1}}}},
                "$activity.type: unknown activity type 'product_vew'",
            ),
            ({"$activity": {"type": "page_view"}}, "$activity: needs a window"),
            (
                {"$activity": {"type": "page_view", "timestamp": {"$lt": {"$daysAgo": 1}}}},
                "$activity.timestamp: needs a lower bound",
            ),
            (
                {"$activity": {"type": "page_view", "timestamp": {"$gte": {"$daysAgo": 1101}}}},
                "$activity.timestamp.$gte.$daysAgo: reaches back more than the 1100 days",
            ),
            (
                {
                    "$activity": {
                        "type": "page_view",
                        "timestamp": {"$gte": {"$date": "2025-01-01"}},
                    }
                },
                "$activity.timestamp: a window from a fixed date needs a fixed end",
            ),
            (
                {
                    "$activity": {
                        "type": "page_view",
                        "timestamp": {
                            "$gte": {"$date": "2020-01-01"},
                            "$lt": {"$date": "2026-01-01"},
                        },
                    }
                },
                "$activity.timestamp: spans more than the 1100 days",
            ),
            (
                {
                    "$activity": {
                        "type": "page_view",
                        "timestamp": {"$gte": {"$daysAgo": 1}, "$lt": {"$daysAgo": 2}},
                    }
                },
                "$activity.timestamp: the window is empty",
            ),
            (
                {"$activity": {"type": "page_view", "timestamp": {"$gte": {"$weeksAgo": 1}}}},
                "$activity.timestamp.$gte: unknown date operand '$weeksAgo'",
            ),
            (
                {
                    "$activity": {
                        "type": "product_view",
                        "properties": {"price": {"$lt2": 5}},
                        "timestamp": {"$gte": {"$daysAgo": 1}},
                    }
                },
                "$activity.properties.price: unknown operator '$lt2'",
            ),
            (
                {
                    "$activity": {
                        "type": "product_view",
                        "properties": {"$segment": "x"},
                        "timestamp": {"$gte": {"$daysAgo": 1}},
                    }
                },
                "$activity.properties: $segment is not allowed",
            ),
            (
                {
                    "$activity": {
                        "type": "product_view",
                        "timestamp": {"$gte": {"$daysAgo": 1}},
                        "sum": {"sku": {"$gte": 1}},
                    }
                },
                "$activity.sum.sku: is not a number; product_view events can sum price",
            ),
            (
                {
                    "$activity": {
                        "type": "page_view",
                        "timestamp": {"$gte": {"$daysAgo": 1}},
                        "count": {"$in": [1]},
                    }
                },
                "$activity.count.$in: unknown operator",
            ),
            (
                {
                    "$activity": {
                        "type": "page_view",
                        "timestamp": {"$gte": {"$daysAgo": 1}},
                        "count": {"$gte": "3"},
                    }
                },
                "$activity.count.$gte: needs a number",
            ),
            (
                {
                    "$activity": {
                        "type": "page_view",
                        "timestamp": {"$gte": {"$daysAgo": 1}},
                        "limit": 3,
                    }
                },
                "$activity.limit: unknown key",
            ),
            (
                {"$activity": {"type": "purchase", "during": {"yearsAgo": 3, "months": [11]}}},
                "$activity.during.yearsAgo: must be a whole number from 0 to 2",
            ),
            (
                {"$activity": {"type": "purchase", "during": {"yearsAgo": 1, "months": [13]}}},
                "$activity.during.months[0]: must be a month from 1 to 12",
            ),
            (
                {"$activity": {"type": "purchase", "during": {"yearsAgo": 1, "period": "easter"}}},
                "$activity.during.period: unknown period 'easter'",
            ),
            (
                {
                    "$activity": {
                        "type": "purchase",
                        "during": {"yearsAgo": 1, "dates": ["02-29", "03-01"]},
                    }
                },
                "$activity.during.dates[0]: must be a day as MM-DD",
            ),
            (
                {"$activity": {"type": "purchase", "during": {"monthsAgo": 1, "months": [1]}}},
                "$activity.during.months: goes with yearsAgo",
            ),
            (
                {"$sequence": {"followedBy": {"type": "purchase"}}},
                "$sequence.first: is required",
            ),
            (
                {
                    "$sequence": {
                        "first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 1}}},
                        "followedBy": {"type": "purchase"},
                        "notFollowedBy": {"type": "purchase"},
                    }
                },
                "$sequence: needs either 'followedBy' or 'notFollowedBy'",
            ),
            (
                {
                    "$sequence": {
                        "first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 1}}},
                        "followedBy": {"type": "purchase", "timestamp": {"$gte": {"$daysAgo": 1}}},
                    }
                },
                "$sequence.followedBy.timestamp: unknown key",
            ),
            (
                {
                    "$sequence": {
                        "first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 1}}},
                        "followedBy": {"type": "purchase"},
                        "within": {"weeks": 1},
                    }
                },
                "$sequence.within.weeks: unknown unit",
            ),
            (
                {"$and": [{"visits": 1}, {"$activity": {"type": "page_view", "timestamp": {}}}]},
                "$and[1].$activity.timestamp: needs an operator object",
            ),
            (
                {"cart.items": {"$elemMatch": {"$activity": {"type": "page_view"}}}},
                "cart.items.$elemMatch: $activity is not allowed inside $elemMatch",
            ),
        ],
        ids=lambda value: value.split(":")[0] if isinstance(value, str) else "",
    )
    def test_problem_and_path(self, spec: dict[str, Any], expected: str):
        """Each malformed clause is refused at compile time, naming its place."""
        actual = error_of(spec)

        assert actual.startswith(expected), actual

    def test_ruleset_path_names_the_segment(self):
        """compile_ruleset reports a window beyond the kept history under the segment."""
        document = {
            "segments": [
                {
                    "id": "old",
                    "filter": {
                        "$activity": {"type": "purchase", "timestamp": {"$gte": {"$daysAgo": 5000}}}
                    },
                }
            ]
        }
        with pytest.raises(RulesetError) as caught:
            compile_ruleset(document)

        assert ["segments[0].filter.$activity.timestamp.$gte.$daysAgo"] == [
            problem.path for problem in caught.value.problems
        ]


class TestDeclaration:
    def test_clause_declares_type_properties_and_window(self):
        """The shoe clause reads product_view's category, 7 days back."""
        expected = {"product_view": TypeNeeds(frozenset({"category"}), 7 * DAY_US, None)}

        actual = dict(compile_filter(SHOES_3_IN_7).activity.types)

        assert expected == actual

    def test_ruleset_merges_every_filter(self):
        """Segments and inline audience filters together: the longest window and every
        property per type; a sequence declares both of its types."""
        document = {
            "segments": [
                {"id": "shoes", "filter": SHOES_3_IN_7},
                {"id": "spent", "filter": SPENT_1000_IN_365},
                {"id": "carts", "filter": CART_NOT_BOUGHT_IN_24H},
            ],
            "placements": [{"id": "p"}],
            "campaigns": [
                {
                    "id": "c",
                    "placements": ["p"],
                    "audience": {
                        "filter": {
                            "$activity": {
                                "type": "product_view",
                                "properties": {"price": {"$lt": 500}},
                                "timestamp": {"$gte": {"$hoursAgo": 240}},
                            }
                        }
                    },
                    "variants": [{"id": "v", "content": None}],
                }
            ],
        }
        expected = {
            "add_to_cart": TypeNeeds(frozenset(), 7 * DAY_US, None),
            "product_view": TypeNeeds(frozenset({"category", "price"}), 240 * HOUR_US, None),
            "purchase": TypeNeeds(frozenset({"value"}), 365 * DAY_US, None),
        }

        actual = dict(compile_ruleset(document).activity.types)

        assert expected == actual

    def test_absolute_window_declares_its_start(self):
        """A window of fixed dates declares since = its start, no horizon."""
        spec = {
            "$activity": {
                "type": "page_view",
                "timestamp": {
                    "$gte": {"$date": "2025-11-01T00:00:00Z"},
                    "$lt": {"$date": "2026-01-01T00:00:00Z"},
                },
            }
        }
        start = datetime(2025, 11, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        expected = TypeNeeds(frozenset(), 0, start // timedelta(microseconds=1))

        actual = compile_filter(spec).activity.types["page_view"]

        assert expected == actual

    def test_calendar_window_declares_whole_years(self):
        """yearsAgo 2 reaches back at most three years: 3 * 366 days."""
        spec = {"$activity": {"type": "purchase", "during": {"yearsAgo": [1, 2], "months": [1]}}}
        expected = 3 * 366 * DAY_US

        actual = compile_filter(spec).activity.types["purchase"].horizon

        assert expected == actual
        assert expected <= MAX_HISTORY_DAYS * DAY_US

    def test_rules_without_activity_declare_nothing(self):
        """A plain filter declares nothing, so the profile keeps nothing extra."""
        actual = compile_ruleset({"segments": [{"id": "a", "filter": {"visits": 2}}]}).activity

        assert not actual

    def test_relative_windows_are_not_profile_only(self):
        """A segment with a relative window depends on now: decide never memoizes it."""
        ruleset = compile_ruleset(
            {
                "segments": [
                    {"id": "shoes", "filter": SHOES_3_IN_7},
                    {"id": "plain", "filter": {"visits": 1}},
                ]
            }
        )

        assert frozenset({"plain"}) == ruleset.profile_segments


class TestMalformedDocuments:
    @pytest.mark.parametrize(
        "activity",
        [
            "x",
            {"page_view": []},
            {"page_view": {"t": "x"}},
            {"page_view": {"t": ["a", 1], "p": None}},
            {"page_view": {"t": [1, 2], "p": [{}]}},
            {"page_view": {"t": [1, None], "p": [None, 3]}},
        ],
    )
    def test_evaluation_never_raises(self, activity: Any):
        """Garbage under activity (e.g. from profile overrides) is no events, never an error."""
        counted = compile_filter(NO_PURCHASE_IN_14 | {})
        sequence = compile_filter(
            {
                "$sequence": {
                    "first": {"type": "page_view", "timestamp": {"$gte": {"$daysAgo": 1}}},
                    "followedBy": {"type": "page_view", "properties": {"url": "/"}},
                }
            }
        )

        counted({"activity": activity}, NOW)
        sequence({"activity": activity}, NOW)

    def test_relative_window_without_now_raises(self):
        """Like a relative date, a relative window needs now."""
        with pytest.raises(ValueError, match="now"):
            compile_filter(SHOES_3_IN_7)({})
