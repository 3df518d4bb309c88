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
