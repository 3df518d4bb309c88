"""The default rules document (pre-built segments) and a demo document built on it.

Both are plain rules documents, returned fresh on every call so callers may edit them.
The pre-built segments are ordinary segments: their descriptions state the definition
and their thresholds are meant to be changed.

Profile fields they read (send what you have; a missing field never matches a
comparison):

- ``visits``: number of visits including the current one;
- ``customer_segment.outbounds_number_total``: number of orders placed;
- ``customer_segment.outbounds_value_total``: total spend, in the store's currency;
- ``cart.items``: the cart's items; ``cart.updated_at``: ISO-8601 time of the last change;
- ``customer_segment.*``: the other order and return metrics (the parcelLab segments);
- ``context.*``: the request context, e.g. ``context.device`` (``"mobile"``, ``"desktop"``);
- the visitor's events, through ``$activity`` (the journey segments): sessions,
  ``add_to_cart``, ``purchase`` and ``product_view`` events with their ``on_sale``.

The default document has no placements: the placement catalogue is storefront-specific,
and asking about a placement nobody defined should say so (``UNKNOWN_PLACEMENT``)
rather than quietly serve nothing.
"""

from __future__ import annotations

from typing import Any

_CDN = "https://cdn.example.com"


def default_document() -> dict[str, Any]:
    """The pre-built segments, no placements and no campaigns."""
    return {
        "segments": _default_segments(),
        "placements": [],
        "exclusion_groups": [],
        "campaigns": [],
    }


def demo_document() -> dict[str, Any]:
    """A storefront example: pre-built and parcelLab segments, four placements, and
    campaigns that show priorities, A/B tests, a control, an exclusion group, a paused
    and a scheduled campaign, a holdout and an audience with exclude and a context filter."""
    return {
        "segments": _default_segments() + _parcellab_segments(),
        "placements": _demo_placements(),
        "exclusion_groups": [
            {
                "id": "popup_tests",
                "name": "Popup experiments",
                "salt": "popup_tests_2026",
            }
        ],
        "campaigns": _demo_campaigns(),
    }


def _default_segments() -> list[dict[str, Any]]:
    return [
        {
            "id": "everyone",
            "name": "Everyone",
            "description": "Every visitor (an empty filter matches any profile).",
            "filter": {},
        },
        {
            "id": "new_visitors",
            "name": "New visitors",
            "description": (
                "First visit: `visits` is at most 1, or missing. Raise the 1 to treat the "
                "first few visits as new."
            ),
            "filter": {"visits": {"$not": {"$gt": 1}}},
        },
        {
            "id": "returning_customers",
            "name": "Returning customers",
            "description": (
                "Has ordered before (`customer_segment.outbounds_number_total` >= 1) and is "
                "visiting again (`visits` > 1)."
            ),
            "filter": {
                "customer_segment.outbounds_number_total": {"$gte": 1},
                "visits": {"$gt": 1},
            },
        },
        {
            "id": "high_value_customers",
            "name": "High-value customers",
            "description": (
                "Lifetime spend (`customer_segment.outbounds_value_total`) of at least 1000."
            ),
            "filter": {"customer_segment.outbounds_value_total": {"$gte": 1000}},
        },
        {
            "id": "cart_abandoners",
            "name": "Cart abandoners",
            "description": (
                "The cart has items (`cart.items` is not empty) and was last changed "
                "(`cart.updated_at`) at least 1 hour ago."
            ),
            "filter": {
                "cart.items.0": {"$exists": True},
                "cart.updated_at": {"$lte": {"$hoursAgo": 1}},
            },
        },
        *_journey_segments(),
    ]


def _journey_segments() -> list[dict[str, Any]]:
    # Journey stages from the visitor's events (README, "Extensions to MongoDB's
    # language"): what the profile keeps for them is declared by the ruleset.
    return [
        {
            "id": "browsers",
            "name": "Browsers",
            "description": (
                "Visiting but not shopping: at least 2 sessions in the last 30 days and no "
                "`add_to_cart` in those 30 days."
            ),
            "filter": {
                "$and": [
                    {"$activity": _sessions({"$gte": {"$daysAgo": 30}}, {"$gte": 2})},
                    {
                        "$activity": {
                            "type": "add_to_cart",
                            "timestamp": {"$gte": {"$daysAgo": 30}},
                            "count": 0,
                        }
                    },
                ]
            },
        },
        {
            "id": "at_risk_customers",
            "name": "At-risk customers",
            "description": (
                "Bought before, not in the last 60 days (`customer_segment."
                "last_purchase_date`), and visiting less: at least 3 sessions 30 to 90 days "
                "ago, at most 1 in the last 30 days."
            ),
            "filter": {
                "$and": [
                    {"customer_segment.last_purchase_date": {"$lte": {"$daysAgo": 60}}},
                    {
                        "$activity": _sessions(
                            {"$gte": {"$daysAgo": 90}, "$lt": {"$daysAgo": 30}}, {"$gte": 3}
                        )
                    },
                    {"$activity": _sessions({"$gte": {"$daysAgo": 30}}, {"$lte": 1})},
                ]
            },
        },
        {
            "id": "holiday_shoppers",
            "name": "Holiday shoppers",
            "description": "Bought in November or December of last year (UTC).",
            "filter": {
                "$activity": {"type": "purchase", "during": {"yearsAgo": 1, "months": [11, 12]}}
            },
        },
        {
            "id": "sale_seekers",
            "name": "Sale seekers",
            "description": (
                "Viewed products on sale (`product_view` with `on_sale` true) at least twice "
                "in the last 30 days, or bought in last year's Black Friday week."
            ),
            "filter": {
                "$or": [
                    {
                        "$activity": {
                            "type": "product_view",
                            "properties": {"on_sale": True},
                            "timestamp": {"$gte": {"$daysAgo": 30}},
                            "count": {"$gte": 2},
                        }
                    },
                    {
                        "$activity": {
                            "type": "purchase",
                            "during": {"yearsAgo": 1, "period": "black_friday_week"},
                        }
                    },
                ]
            },
        },
    ]


def _sessions(window: dict[str, Any], count: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session", "timestamp": window, "count": count}


def _parcellab_segments() -> list[dict[str, Any]]:
    # parcelLab's six smart-segmentation examples, with relative dates in place of
    # their "yyyy-mm-dd" placeholders.
    return [
        {
            "id": "repeat_minimal_returns",
            "name": "Repeat customers with minimal returns",
            "description": "Orders every 14 days or more often, article return rate <= 5 %.",
            "filter": {
                "$and": [
                    {"customer_segment.outbounds_avg_time_delta": {"$lte": 14}},
                    {"customer_segment.returns_articles_ratio": {"$lte": 5}},
                ]
            },
        },
        {
            "id": "high_spending_recent_buyers",
            "name": "High-spending recent buyers",
            "description": (
                "Last purchase within the last 14 days, total purchase value >= 1000. "
                "(parcelLab's example writes `$lte` against a date placeholder; a recent "
                "buyer's last purchase is on or after 14 days ago, hence `$gte`.)"
            ),
            "filter": {
                "$and": [
                    {"customer_segment.last_purchase_date": {"$gte": {"$daysAgo": 14}}},
                    {"customer_segment.outbounds_value_total": {"$gte": 1000}},
                ]
            },
        },
        {
            "id": "lapsed_frequent_buyers",
            "name": "Lapsed frequent buyers",
            "description": (
                "Used to order every 14 days or more often, last purchase 60 or more days ago."
            ),
            "filter": {
                "$and": [
                    {"customer_segment.outbounds_avg_time_delta": {"$lte": 14}},
                    {"customer_segment.last_purchase_date": {"$lte": {"$daysAgo": 60}}},
                ]
            },
        },
        {
            "id": "high_return_risk",
            "name": "Customers with high return risk",
            "description": "Article return rate >= 40 %.",
            "filter": {"customer_segment.returns_articles_ratio": {"$gte": 40}},
        },
        {
            "id": "premium_frequent_returners",
            "name": "Premium customers, frequent returners",
            "description": "Total purchase value >= 1000 and article return rate >= 30 %.",
            "filter": {
                "$and": [
                    {"customer_segment.outbounds_value_total": {"$gte": 1000}},
                    {"customer_segment.returns_articles_ratio": {"$gte": 30}},
                ]
            },
        },
        {
            "id": "frequent_low_value_buyers",
            "name": "Frequent low-value buyers",
            "description": "Average basket size <= 2 articles and 10 or more orders in total.",
            "filter": {
                "$and": [
                    {"customer_segment.outbounds_avg_basket_size": {"$lte": 2}},
                    {"customer_segment.outbounds_number_total": {"$gte": 10}},
                ]
            },
        },
    ]


def _demo_placements() -> list[dict[str, Any]]:
    return [
        {
            "id": "home_hero",
            "name": "Home page hero banner",
            "fallback": {
                "headline": "The autumn edit is here",
                "image": f"{_CDN}/hero/autumn-edit.jpg",
                "cta": {"label": "Shop new in", "url": "/new-in"},
            },
        },
        {
            "id": "product_recommendations",
            "name": "Product page recommendations",
            "fallback": {"title": "Bestsellers", "strategy": "bestsellers", "limit": 8},
        },
        {
            "id": "popup",
            "name": "Site-wide popup",
            "fallback": None,
        },
        {
            "id": "email_block",
            "name": "Personalized email block",
            "fallback": {
                "headline": "Picked for you",
                "strategy": "recently_viewed",
                "limit": 4,
            },
        },
    ]


def _demo_campaigns() -> list[dict[str, Any]]:
    return [
        # home_hero: VIPs first, then new visitors, then whatever seasonal banner runs.
        {
            "id": "vip_early_access",
            "name": "VIP early access",
            "placements": ["home_hero"],
            "priority": 30,
            "audience": {
                "segments": ["high_value_customers"],
                "exclude": ["high_return_risk"],
            },
            "variants": [
                {
                    "id": "early_access",
                    "weight": 1,
                    "content": {
                        "headline": "Shop the new collection 48 hours early",
                        "image": f"{_CDN}/hero/vip-early-access.jpg",
                        "cta": {"label": "Enter early access", "url": "/vip/early-access"},
                    },
                },
                {
                    "id": "free_express",
                    "weight": 1,
                    "content": {
                        "headline": "Free express delivery, always",
                        "image": f"{_CDN}/hero/vip-express.jpg",
                        "cta": {"label": "See your benefits", "url": "/vip"},
                    },
                },
            ],
        },
        {
            "id": "welcome_offer",
            "name": "Welcome offer for first visits",
            "placements": ["home_hero"],
            "priority": 20,
            "audience": {"segments": ["new_visitors"]},
            "variants": [
                {"id": "control", "weight": 1, "control": True},
                {
                    "id": "welcome_10",
                    "weight": 1,
                    "content": {
                        "headline": "10% off your first order",
                        "image": f"{_CDN}/hero/welcome.jpg",
                        "cta": {"label": "Start shopping", "url": "/new-in"},
                        "discount_code": "WELCOME10",
                    },
                },
            ],
        },
        {
            "id": "summer_sale",
            "name": "Summer sale 2026",
            "placements": ["home_hero"],
            "priority": 10,
            "schedule": {"start": "2026-06-01T00:00:00Z", "end": "2026-09-01T00:00:00Z"},
            "variants": [
                {
                    "id": "default",
                    "content": {
                        "headline": "Summer sale: up to 50% off",
                        "image": f"{_CDN}/hero/summer-sale.jpg",
                        "cta": {"label": "Shop the sale", "url": "/sale"},
                        "discount_code": "SUMMER26",
                    },
                }
            ],
        },
        {
            "id": "black_friday_teaser",
            "name": "Black Friday teaser",
            "placements": ["home_hero"],
            "status": "paused",
            "priority": 10,
            "variants": [
                {
                    "id": "default",
                    "content": {
                        "headline": "Black Friday starts soon",
                        "image": f"{_CDN}/hero/black-friday.jpg",
                        "cta": {"label": "Get notified", "url": "/black-friday"},
                    },
                }
            ],
        },
        # product_recommendations: an A/B/C strategy test with a control and a holdout.
        {
            "id": "bundle_recommendations",
            "name": "Bundles for frequent small baskets",
            "placements": ["product_recommendations"],
            "priority": 20,
            "audience": {"segments": ["frequent_low_value_buyers"]},
            "variants": [
                {
                    "id": "bundles",
                    "content": {
                        "title": "Bundle and save",
                        "strategy": "bundles",
                        "limit": 6,
                        "free_shipping_threshold": 50,
                    },
                }
            ],
        },
        {
            "id": "recs_strategy_test",
            "name": "Recommendation strategy test",
            "placements": ["product_recommendations"],
            "priority": 10,
            "audience": {"segments": ["returning_customers"]},
            "traffic_allocation": 80,
            "holdout": 5,
            "variants": [
                {"id": "control", "weight": 2, "control": True},
                {
                    "id": "personalized",
                    "weight": 1,
                    "content": {"title": "Picked for you", "strategy": "personalized", "limit": 8},
                },
                {
                    "id": "bought_together",
                    "weight": 1,
                    "content": {
                        "title": "Frequently bought together",
                        "strategy": "frequently_bought_together",
                        "limit": 4,
                    },
                },
            ],
        },
        # popup: cart rescue on mobile wins; otherwise two experiments share the visitors.
        {
            "id": "cart_rescue_mobile",
            "name": "Cart rescue on mobile",
            "placements": ["popup"],
            "priority": 50,
            "audience": {
                "segments": ["cart_abandoners"],
                "exclude": ["high_return_risk"],
                "filter": {"context.device": "mobile"},
            },
            "variants": [
                {
                    "id": "free_shipping",
                    "content": {
                        "headline": "Your cart is waiting",
                        "body": "Complete your order today and shipping is on us.",
                        "cta": {"label": "Back to cart", "url": "/cart"},
                        "discount_code": "FREESHIP",
                    },
                }
            ],
        },
        {
            "id": "exit_intent_discount",
            "name": "Exit-intent discount test",
            "placements": ["popup"],
            "priority": 10,
            "exclusion_group": "popup_tests",
            "traffic_allocation": 50,
            "variants": [
                {
                    "id": "ten_percent",
                    "weight": 1,
                    "content": {
                        "headline": "Wait! Take 10% off",
                        "cta": {"label": "Apply code", "url": "/cart?code=STAY10"},
                        "discount_code": "STAY10",
                    },
                },
                {
                    "id": "free_gift",
                    "weight": 1,
                    "content": {
                        "headline": "A free gift with your order",
                        "cta": {"label": "Claim gift", "url": "/cart?gift=tote"},
                        "discount_code": "FREETOTE",
                    },
                },
            ],
        },
        {
            "id": "newsletter_signup",
            "name": "Newsletter signup test",
            "placements": ["popup"],
            "priority": 10,
            "exclusion_group": "popup_tests",
            "traffic_allocation": 50,
            "audience": {"exclude": ["returning_customers"]},
            "variants": [
                {
                    "id": "plain",
                    "weight": 1,
                    "content": {
                        "headline": "Get 5% off with our newsletter",
                        "cta": {"label": "Sign up", "url": "/newsletter"},
                    },
                },
                {
                    "id": "style_quiz",
                    "weight": 1,
                    "content": {
                        "headline": "Find your style in 60 seconds",
                        "cta": {"label": "Take the quiz", "url": "/style-quiz"},
                    },
                },
            ],
        },
        # email_block: service first for returners, then win-back with a holdout.
        {
            "id": "fit_service_email",
            "name": "Fit advice for frequent returners",
            "placements": ["email_block"],
            "priority": 30,
            "audience": {"segments": ["premium_frequent_returners", "high_return_risk"]},
            "variants": [
                {
                    "id": "fit_advice",
                    "content": {
                        "headline": "Find your perfect fit",
                        "body": "Book a free video fitting with our stylists.",
                        "cta": {"label": "Book a fitting", "url": "/fit-service"},
                    },
                }
            ],
        },
        {
            "id": "winback_email",
            "name": "Win back lapsed frequent buyers",
            "placements": ["email_block"],
            "priority": 20,
            "audience": {"segments": ["lapsed_frequent_buyers"]},
            "holdout": 10,
            "variants": [
                {
                    "id": "come_back_15",
                    "content": {
                        "headline": "We miss you: 15% off your next order",
                        "strategy": "recently_viewed",
                        "limit": 4,
                        "discount_code": "COMEBACK15",
                    },
                }
            ],
        },
        {
            "id": "loyalty_club",
            "name": "Loyalty club invitation",
            "placements": ["email_block"],
            "priority": 20,
            "audience": {
                "segments": ["returning_customers", "repeat_minimal_returns"],
                "match": "all",
            },
            "variants": [
                {
                    "id": "invite",
                    "content": {
                        "headline": "You're invited to the loyalty club",
                        "cta": {"label": "Join for free", "url": "/loyalty"},
                    },
                }
            ],
        },
    ]
