"""Seeded synthetic visitor profiles and rulesets shared by the benchmarks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COUNTRIES = ["DE", "AT", "CH", "FR", "NL", "GB", "US", "IT", "ES", "PL"]
CATEGORIES = ["shoes", "shirts", "jackets", "bags", "watches", "sports", "kids", "home", "beauty"]
BRANDS = ["acme", "northwind", "contoso", "fabrikam", "globex", "initech", "umbrella"]
DEVICES = ["mobile", "desktop", "tablet"]
PLACEMENTS = ["home_hero", "product_recommendations", "popup", "email_block"]

PARCELLAB_FILTERS: dict[str, dict[str, Any]] = {
    "repeat_low_returns": {
        "$and": [
            {"customer_segment.outbounds_avg_time_delta": {"$lte": 14}},
            {"customer_segment.returns_articles_ratio": {"$lte": 5}},
        ]
    },
    "high_spending_recent": {
        "$and": [
            {"customer_segment.last_purchase_date": {"$lte": "2026-11-09"}},
            {"customer_segment.outbounds_value_total": {"$gte": 1000}},
        ]
    },
    "lapsed_frequent": {
        "$and": [
            {"customer_segment.outbounds_avg_time_delta": {"$lte": 14}},
            {"customer_segment.last_purchase_date": {"$lte": "2026-09-24"}},
        ]
    },
    "high_return_risk": {"customer_segment.returns_articles_ratio": {"$gte": 40}},
    "premium_frequent_returners": {
        "$and": [
            {"customer_segment.outbounds_value_total": {"$gte": 1000}},
            {"customer_segment.returns_articles_ratio": {"$gte": 30}},
        ]
    },
    "frequent_low_value": {
        "$and": [
            {"customer_segment.outbounds_avg_basket_size": {"$lte": 2}},
            {"customer_segment.outbounds_number_total": {"$gte": 10}},
        ]
    },
}
"""The six parcelLab filters verbatim, with concrete dates for their yyyy-mm-dd placeholder
(GrowthBook has no relative dates, so both engines compare the same ISO strings)."""

EXTRA_FILTERS: dict[str, dict[str, Any]] = {
    "country_in": {"attributes.country": {"$in": ["DE", "AT", "CH"]}},
    "viewed_categories": {"categories_viewed": {"$elemMatch": {"$in": ["shoes", "bags"]}}},
    "or_mobile_or_loyal": {
        "$or": [{"context.device": "mobile"}, {"attributes.loyalty_tier": {"$in": ["gold", "platinum"]}}]
    },
}


def make_profile(rng: random.Random) -> dict[str, Any]:
    """One visitor document in the shape of the README's profile contract."""
    orders = rng.choice([0, 0, 0, 1, 2, 3, 5, 8, 12, 20])
    visits = orders + rng.randint(1, 30)
    first_seen = NOW - timedelta(days=rng.randint(0, 700))
    profile: dict[str, Any] = {
        "visits": visits,
        "first_seen": first_seen.isoformat().replace("+00:00", "Z"),
        "last_seen": (NOW - timedelta(hours=rng.randint(0, 2000))).isoformat().replace("+00:00", "Z"),
        "attributes": {
            "country": rng.choice(COUNTRIES),
            "loyalty_tier": rng.choice(["none", "silver", "gold", "platinum"]),
        },
        "categories_viewed": rng.sample(CATEGORIES, rng.randint(0, 4)),
        "brands_viewed": rng.sample(BRANDS, rng.randint(0, 3)),
        "products_viewed": [f"sku-{rng.randint(1, 5000)}" for _ in range(rng.randint(0, 6))],
        "cart": {
            "items": [{"sku": f"sku-{rng.randint(1, 5000)}", "quantity": 1, "price": 49.9}]
            * rng.randint(0, 2),
            "value": round(rng.uniform(0, 300), 2),
            "updated_at": (NOW - timedelta(hours=rng.randint(0, 96))).isoformat(),
        },
        "campaigns": {"seen": [], "clicked": [], "converted": []},
        "context": {"device": rng.choice(DEVICES), "country": rng.choice(COUNTRIES)},
    }
    if orders:
        profile["customer_segment"] = {
            "outbounds_number_total": orders,
            "outbounds_value_total": round(orders * rng.uniform(20, 250), 2),
            "outbounds_avg_basket_size": round(rng.uniform(1, 5), 1),
            "outbounds_avg_time_delta": round(rng.uniform(3, 90), 1) if orders > 1 else None,
            "last_purchase_date": (NOW - timedelta(days=rng.randint(0, 400))).date().isoformat(),
            "returns_articles_ratio": round(rng.uniform(0, 60), 1),
            "returns_number_total": rng.randint(0, orders),
        }
    return profile


def make_profiles(n: int, seed: int = 42) -> list[dict[str, Any]]:
    """``n`` profiles from a fixed seed."""
    rng = random.Random(seed)
    return [make_profile(rng) for _ in range(n)]


def make_document(n_segments: int, n_campaigns: int, seed: int = 7) -> dict[str, Any]:
    """A rules document with ``n_segments`` segments and ``n_campaigns`` campaigns.

    Segments are threshold filters in the parcelLab style; campaigns spread over the four
    placements with overlapping priorities, a few exclusion groups and A/B variants.
    """
    rng = random.Random(seed)
    segments: list[dict[str, Any]] = []
    fields = [
        ("customer_segment.outbounds_value_total", 50, 3000),
        ("customer_segment.outbounds_number_total", 1, 20),
        ("customer_segment.returns_articles_ratio", 0, 60),
        ("customer_segment.outbounds_avg_time_delta", 3, 90),
        ("visits", 1, 30),
    ]
    for i in range(n_segments):
        field, lo, hi = rng.choice(fields)
        op = rng.choice(["$gte", "$lte"])
        clause: dict[str, Any] = {field: {op: rng.randint(lo, hi)}}
        if i % 3 == 0:
            clause = {"$and": [clause, {"attributes.country": {"$in": rng.sample(COUNTRIES, 3)}}]}
        elif i % 3 == 1:
            clause = {"$or": [clause, {"categories_viewed": rng.choice(CATEGORIES)}]}
        segments.append({"id": f"seg_{i}", "name": f"Segment {i}", "filter": clause})
    groups = [{"id": f"group_{g}", "name": f"Group {g}"} for g in range(4)]
    group_load = {g["id"]: 0 for g in groups}
    campaigns: list[dict[str, Any]] = []
    for i in range(n_campaigns):
        audience = {"segments": rng.sample([s["id"] for s in segments[:200]], 2), "match": "any"}
        campaign: dict[str, Any] = {
            "id": f"camp_{i}",
            "name": f"Campaign {i}",
            "placements": [PLACEMENTS[i % len(PLACEMENTS)]],
            "status": "active",
            "priority": rng.randint(0, 50),
            "audience": audience,
            "traffic_allocation": rng.choice([100, 100, 50, 20]),
            "variants": [
                {"id": "control", "weight": 1, "control": True},
                {"id": "treatment", "weight": 1, "content": {"headline": f"Offer {i}"}},
            ],
        }
        group = groups[i % 8] if i % 8 < len(groups) else None
        if group and group_load[group["id"]] + 20 <= 100:
            campaign["exclusion_group"] = group["id"]
            campaign["traffic_allocation"] = 20
            group_load[group["id"]] += 20
        campaigns.append(campaign)
    return {
        "segments": segments,
        "placements": [{"id": p, "name": p, "fallback": {"headline": "Welcome"}} for p in PLACEMENTS],
        "exclusion_groups": groups,
        "campaigns": campaigns,
    }


# -- behaviour over time: event histories and windowed-activity segments ------------------

WINDOWED_FILTERS: list[dict[str, Any]] = [
    {"$activity": {"type": "product_view", "properties": {"category": "shoes"},
                   "timestamp": {"$gte": {"$daysAgo": 7}}, "count": {"$gte": 3}}},
    {"$activity": {"type": "purchase", "timestamp": {"$gte": {"$daysAgo": 365}},
                   "sum": {"value": {"$gte": 1000}}}},
    {"$activity": {"type": "page_view", "properties": {"page_type": "sale"},
                   "timestamp": {"$gte": {"$daysAgo": 14}}, "count": {"$gte": 1}}},
    {"$activity": {"type": "purchase", "timestamp": {"$gte": {"$daysAgo": 14}}, "count": 0}},
    {"$activity": {"type": "session", "timestamp": {"$gte": {"$daysAgo": 30}}, "count": {"$gte": 2}}},
    {"$activity": {"type": "product_view", "properties": {"price": {"$lt": 50}},
                   "timestamp": {"$gte": {"$daysAgo": 30}}, "count": {"$gte": 5}}},
    {"$sequence": {"first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 7}}},
                   "notFollowedBy": {"type": "purchase"}, "within": {"hours": 24}}},
    {"$sequence": {"first": {"type": "product_view", "properties": {"category": "bags"},
                             "timestamp": {"$gte": {"$daysAgo": 30}}},
                   "followedBy": {"type": "purchase"}, "within": {"days": 7}}},
    {"$activity": {"type": "purchase", "during": {"yearsAgo": 1, "months": [11, 12]}}},
    {"$activity": {"type": "session", "properties": {"pages": {"$gte": 5}},
                   "timestamp": {"$gte": {"$daysAgo": 60}}, "count": {"$gte": 1}}},
]
"""The issue's shapes and a few more: counts, sums, sequences, a season, sessions."""


def make_windowed_document(
    n_segments: int, n_windowed: int, n_campaigns: int, seed: int = 7
) -> dict[str, Any]:
    """``make_document`` with ``n_windowed`` of its segments (spread evenly) replaced by
    windowed-activity filters: same ids, same campaigns, so the two compare call for call."""
    document = make_document(n_segments, n_campaigns, seed)
    step = max(1, n_segments // max(1, n_windowed))
    for k in range(n_windowed):
        segment = document["segments"][(k * step) % n_segments]
        segment["filter"] = WINDOWED_FILTERS[k % len(WINDOWED_FILTERS)]
    return document


def visitor_history(rng: random.Random, days: int = 90, now: datetime = NOW) -> list[Any]:
    """A realistic ``days``-day event history of one visitor, as ``decision.Event`` values:
    a few to a few dozen sessions (session_start, page and product views, sometimes cart
    adds and an order), heavy visitors rare."""
    from decision import Event

    events: list[Any] = []
    sessions = min(60, int(rng.paretovariate(1.3)) + rng.randint(0, 3))
    for s in range(sessions):
        start = now - timedelta(days=rng.uniform(0, days))
        at = start
        def add(kind: str, properties: dict[str, Any]) -> None:
            events.append(Event(f"{id(events)}-{len(events)}", "v", kind, at, properties))
        add("session_start", {"referrer": "https://search.example.com/"})
        for _ in range(rng.randint(1, 15)):
            at += timedelta(seconds=rng.randint(5, 240))
            if rng.random() < 0.5:
                add("page_view", {"url": "/c", "page_type": rng.choice(["home", "category", "sale"]),
                                  "category": rng.choice(CATEGORIES)})
            else:
                viewed = {"sku": f"sku-{rng.randint(1, 5000)}", "category": rng.choice(CATEGORIES),
                          "brand": rng.choice(BRANDS), "price": rng.choice([9.99, 29.0, 49.0, 120.0])}
                viewed["on_sale"] = viewed["price"] == 9.99  # no extra draw: same histories
                add("product_view", viewed)
            if rng.random() < 0.08:
                add("add_to_cart", {"sku": f"sku-{rng.randint(1, 5000)}", "quantity": 1, "price": 29.0})
        if rng.random() < 0.12:
            at += timedelta(seconds=rng.randint(30, 600))
            add("purchase", {"order_id": f"o-{s}", "value": round(rng.uniform(20, 400), 2),
                             "currency": "EUR", "articles": rng.randint(1, 4)})
    return events


def make_activity_profiles(n: int, needs: Any, seed: int = 42, shapes: int = 500) -> list[dict[str, Any]]:
    """``make_profiles(n)`` with the engagement and kept activity of a 90-day history each
    (``shapes`` distinct histories folded with ``needs``, cycled over the profiles)."""
    from decision.profile import rebuild, render

    rng = random.Random(seed + 1)
    folded = []
    for _ in range(shapes):
        document = render(rebuild(visitor_history(rng), needs))
        folded.append({k: document[k] for k in ("engagement", "activity") if k in document})
    profiles = make_profiles(n, seed)
    for index, profile in enumerate(profiles):
        profile.update(folded[index % shapes])
    return profiles
