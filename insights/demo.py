"""A deterministic synthetic dataset for the demo report: four weeks of the demo campaigns.

Campaign, variant and segment ids and the weights follow ``decision.defaults``'
demo document (a test keeps them in step). The visitors are simulated from fixed
seeds with ``random.Random``, so the same seed always gives the same report; the
true rates below are what a good analysis should recover:

- ``welcome_offer``: the 10 % welcome code lifts conversion from 4.0 % to 4.9 %;
- ``exit_intent_discount``: a 1:1 split that loses 7 % of the ``free_gift`` arm's
  visitors (as a broken redirect would), so the sample ratio check fires;
- ``newsletter_signup``: just started, below the minimum sample;
- ``recs_strategy_test`` (2:1:1, control first): personalized recommendations win,
  frequently-bought-together does not; broken down by two segments;
- ``winback_email``: the email against its 10 % holdout (reported as the control arm,
  weights in buckets: 1000 vs 9000).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from insights.model import (
    CampaignReport,
    SegmentEngagement,
    SegmentReport,
    SegmentStats,
    VariantCounts,
)
from insights.stats import analyze_campaign

PERIOD_START = datetime(2026, 6, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 6, 29, tzinfo=UTC)
DEFAULT_SEED = 20260617
"""Chosen among nearby seeds because its draws match the truth above (a real winner
wins, the neutral arm is not significant), so the demo shows each state once."""


@dataclass(frozen=True, slots=True)
class _Arm:
    variant_id: str
    weight: int
    conversion: float
    click: float
    order_value: float
    control: bool = False
    kept: float = 1.0
    """Share of the arm's visitors whose exposure is recorded (< 1 simulates a broken split)."""


@dataclass(frozen=True, slots=True)
class _Experiment:
    campaign_id: str
    visitors: int
    arms: tuple[_Arm, ...]
    segments: Mapping[str, float] | None = None
    """Segment id -> share of the campaign's visitors in it, for the breakdown."""


EXPERIMENTS = (
    _Experiment(
        "welcome_offer",
        24_000,
        (
            _Arm("control", 1, 0.040, 0.120, 58.0, control=True),
            _Arm("welcome_10", 1, 0.049, 0.165, 54.0),
        ),
    ),
    _Experiment(
        "exit_intent_discount",
        18_000,
        (
            _Arm("ten_percent", 1, 0.052, 0.210, 49.0),
            _Arm("free_gift", 1, 0.050, 0.190, 57.0, kept=0.93),
        ),
    ),
    _Experiment(
        "newsletter_signup",
        150,
        (
            _Arm("plain", 1, 0.060, 0.150, 45.0),
            _Arm("style_quiz", 1, 0.085, 0.220, 45.0),
        ),
    ),
    _Experiment(
        "recs_strategy_test",
        36_000,
        (
            _Arm("control", 2, 0.060, 0.080, 72.0, control=True),
            _Arm("personalized", 1, 0.069, 0.110, 75.0),
            _Arm("bought_together", 1, 0.058, 0.095, 81.0),
        ),
        {"high_value_customers": 0.18, "cart_abandoners": 0.25},
    ),
    _Experiment(
        "winback_email",
        15_000,
        (
            _Arm("holdout", 1000, 0.021, 0.0, 64.0, control=True),
            _Arm("come_back_15", 9000, 0.029, 0.140, 61.0),
        ),
    ),
)

SEGMENTS = (
    "new_visitors",
    "returning_customers",
    "high_value_customers",
    "cart_abandoners",
    "lapsed_frequent_buyers",
)


def _simulate(
    experiment: _Experiment, rng: random.Random
) -> tuple[list[VariantCounts], dict[str, list[VariantCounts]] | None]:
    total_weight = sum(arm.weight for arm in experiment.arms)
    segment_ids = list(experiment.segments or {})
    # counts[arm][group]: group 0 is everyone, then one per segment.
    tallies = [[[0, 0, 0, 0.0] for _ in range(1 + len(segment_ids))] for _ in experiment.arms]
    for _ in range(experiment.visitors):
        pick = rng.random() * total_weight
        index = 0
        while pick >= experiment.arms[index].weight:
            pick -= experiment.arms[index].weight
            index += 1
        arm = experiment.arms[index]
        if rng.random() >= arm.kept:
            continue
        clicked = rng.random() < arm.click
        converted = rng.random() < arm.conversion
        revenue = round(rng.gammavariate(4.0, arm.order_value / 4.0), 2) if converted else 0.0
        groups = [0] + [
            1 + i
            for i, s in enumerate(segment_ids)
            if rng.random() < experiment.segments[s]  # type: ignore[index]
        ]
        for group in groups:
            tally = tallies[index][group]
            tally[0] += 1
            tally[1] += clicked
            tally[2] += converted
            tally[3] += revenue

    def counts(group: int) -> list[VariantCounts]:
        return [
            VariantCounts(
                variant_id=arm.variant_id,
                control=arm.control,
                weight=arm.weight,
                exposed=int(tallies[i][group][0]),
                clicks=int(tallies[i][group][1]),
                conversions=int(tallies[i][group][2]),
                revenue=round(float(tallies[i][group][3]), 2),
            )
            for i, arm in enumerate(experiment.arms)
        ]

    by_segment = {s: counts(1 + i) for i, s in enumerate(segment_ids)} if segment_ids else None
    return counts(0), by_segment


def demo_campaign_reports(seed: int = DEFAULT_SEED) -> tuple[CampaignReport, ...]:
    """The demo campaigns' reports over ``PERIOD_START``..``PERIOD_END``."""
    rng = random.Random(seed)
    reports = []
    for experiment in EXPERIMENTS:
        counts, by_segment = _simulate(experiment, rng)
        reports.append(
            analyze_campaign(
                counts,
                campaign_id=experiment.campaign_id,
                period_start=PERIOD_START,
                period_end=PERIOD_END,
                by_segment=by_segment,
            )
        )
    return tuple(reports)


def _population(rng: random.Random, size: int) -> tuple[list[set[str]], list[set[str]]]:
    """Each visitor's segments at the start and at the end of the period."""
    start: list[set[str]] = []
    end: list[set[str]] = []
    for _ in range(size):
        orders = 0 if rng.random() < 0.45 else 1 + int(rng.expovariate(0.25))
        spend = sum(rng.gammavariate(2.0, 60.0) for _ in range(orders))
        lapsed = orders >= 3 and rng.random() < 0.22
        cart = rng.random() < 0.16
        before = _segments_of(orders, spend, lapsed, cart)
        # Over four weeks some new visitors order, some buyers cross 1000, some lapse
        # and some lapsed buyers come back.
        if orders == 0 and rng.random() < 0.18:
            orders, spend = 1, spend + rng.gammavariate(2.0, 60.0)
        elif orders and rng.random() < 0.2:
            orders, spend = orders + 1, spend + rng.gammavariate(3.0, 80.0)
        if lapsed and rng.random() < 0.15:
            lapsed = False
        elif orders >= 3 and not lapsed and rng.random() < 0.03:
            lapsed = True
        cart = rng.random() < 0.16 if not cart else rng.random() < 0.4
        start.append(before)
        end.append(_segments_of(orders, spend, lapsed, cart))
    return start, end


def _segments_of(orders: int, spend: float, lapsed: bool, cart: bool) -> set[str]:
    segments = set()
    if orders == 0:
        segments.add("new_visitors")
    else:
        segments.add("returning_customers")
    if spend >= 1000:
        segments.add("high_value_customers")
    if cart:
        segments.add("cart_abandoners")
    if lapsed:
        segments.add("lapsed_frequent_buyers")
    return segments


_ENGAGEMENT = {  # segment -> (sessions per member, pages per session, minutes per session)
    "new_visitors": (1.1, 3.2, 2.5),
    "returning_customers": (5.4, 5.1, 6.0),
    "high_value_customers": (9.8, 6.3, 7.5),
    "cart_abandoners": (3.1, 4.4, 5.0),
    "lapsed_frequent_buyers": (7.2, 3.9, 4.0),
}


def _engagement(segment: str, members: int, rng: random.Random) -> SegmentEngagement:
    """Typical sessions, depth and time of the segment's members, with some noise."""
    per_member, depth, minutes = (x * rng.uniform(0.9, 1.1) for x in _ENGAGEMENT[segment])
    sessions = round(members * per_member)
    return SegmentEngagement(
        members=members,
        sessions=sessions,
        page_views=round(sessions * depth),
        time_on_site=round(sessions * minutes * 60, 1),
    )


def demo_segment_report(seed: int = DEFAULT_SEED, visitors: int = 20_000) -> SegmentReport:
    """Sizes, daily growth, overlap, journeys and engagement of five demo segments over
    the period."""
    rng = random.Random(seed)
    # Its own stream: the engagement figures leave the other numbers as they were.
    engagement_rng = random.Random(f"{seed}:engagement")
    start, end = _population(rng, visitors)
    days = (PERIOD_END - PERIOD_START).days
    stats = []
    for segment in SEGMENTS:
        first = sum(segment in s for s in start)
        last = sum(segment in s for s in end)
        series = []
        for day in range(days + 1):
            progress = day / days
            wobble = 0 if day in (0, days) else rng.gauss(0, 0.012) * last
            weekly = 0.04 * last * (day % 7 in (5, 6)) if segment == "cart_abandoners" else 0
            size = round(first + (last - first) * progress + wobble + weekly)
            series.append(((date(2026, 6, 1) + timedelta(days=day)).isoformat(), max(0, size)))
        exposures = round(last * rng.uniform(0.9, 2.4))
        stats.append(
            SegmentStats(
                segment_id=segment,
                size_now=last,
                sizes_over_time=tuple(series),
                exposures=exposures,
                conversion_rate=round(rng.uniform(0.02, 0.09), 4),
                revenue_per_visitor=round(rng.uniform(1.5, 9.0), 2),
                engagement=_engagement(segment, last, engagement_rng),
            )
        )
    overlap = tuple(tuple(sum(a in s and b in s for s in end) for b in SEGMENTS) for a in SEGMENTS)
    # Cart abandonment comes and goes within days: not a step of a journey.
    stages = [s for s in SEGMENTS if s != "cart_abandoners"]
    pairs = zip(start, end, strict=True)
    moves = [(a, b) for a in stages for b in stages if a != b]
    counted = {move: 0 for move in moves}
    for before, after in pairs:
        for a, b in moves:
            counted[a, b] += a in before and b not in before and b in after
    journeys = tuple((a, b, n) for (a, b), n in counted.items() if n)
    return SegmentReport(
        segments=tuple(stats),
        overlap=overlap,
        journeys=tuple(sorted(journeys, key=lambda j: -j[2])),
        period_start=PERIOD_START,
        period_end=PERIOD_END,
    )
