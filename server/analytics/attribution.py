"""Attribution: clicks, conversions and purchases credited to the exposures they follow.

The rules (README, "Attribution"), for an attribution window W (default 7 days):

- ``campaign_click`` and ``campaign_conversion`` events name a campaign. An event that
  carries a ``decision_id`` goes to that decision's exposure when it is an exposure of
  the same visitor (after identity merges) and of the campaign the event names, at or
  before the event and at most W earlier. Otherwise (no decision id, an unknown one, or
  one outside the window) it goes to the visitor's latest exposure to that campaign at
  or before the event, if that is at most W earlier; else to nothing.
- ``purchase`` events name no campaign: a purchase goes to the visitor's latest
  exposure of *each* campaign at or before it within W (last touch per campaign), so
  one order counts as a conversion for every campaign the visitor saw in the week
  before. Reports per campaign are therefore not additive across campaigns.

Computed at query time, not materialized at ingest: a report is one indexed pass over
the campaign's exposures (``exposures (campaign, ts)``, sorted by visitor) merged with the
exposed visitors' events (``events (visitor_id, ts)``), so it always agrees with late
or out-of-order events, with identity merges (both tables are re-pointed) and with
deletions, and changing the window needs no backfill. Ingest stays as fast as before.

Counting (``campaign_counts``), over a period [start, end): a visitor belongs to the
arm of their first exposure to the campaign in the period (intention to treat: later
exposures to another arm, e.g. after a weight change, do not move them). Only events
in the period attributed to exposures in the period count. ``clicks`` and
``conversions`` count visitors (at least one click; at least one conversion or
purchase), ``revenue`` sums purchase values (once per order id) and conversion values.

With a ``channel`` (``"web"`` for Decide's exposures, ``"email"`` for a recorded batch
send...), only that channel's exposures count: its visitors, their arms and what is
attributed to those exposures.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson

from decision.profile import format_timestamp

CLICK = "campaign_click"
CONVERSION = "campaign_conversion"
PURCHASE = "purchase"
ATTRIBUTED_TYPES = (CLICK, CONVERSION, PURCHASE)


@dataclass(slots=True)
class Tally:
    """One arm's visitors and what they did."""

    exposed: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0


@dataclass(slots=True)
class CampaignCounts:
    """A campaign's tallies by arm, and by audience segment then arm."""

    arms: dict[str, Tally] = field(default_factory=dict)
    by_segment: dict[str, dict[str, Tally]] = field(default_factory=dict)


# An exposure row: (visitor_id, ts, variant or campaign, decision_id, segments JSON)
_Row = tuple[Any, ...]


def _shift(ts: str, window: timedelta) -> str:
    """The timestamp text ``window`` before ``ts``."""
    return format_timestamp(datetime.fromisoformat(ts) - window)


def attribute(
    exposures: Sequence[_Row],
    times: Sequence[str],
    event_ts: str,
    decision_id: Any,
    window: timedelta,
) -> _Row | None:
    """The exposure an event goes to, among one visitor's exposures of one campaign
    (sorted by time; ``times`` their ``ts``), or None."""
    lower = _shift(event_ts, window)
    if decision_id:
        for exposure in exposures:
            if exposure[3] == decision_id and lower <= exposure[1] <= event_ts:
                return exposure
    i = bisect.bisect_right(times, event_ts)
    if i == 0:
        return None
    latest = exposures[i - 1]
    return latest if latest[1] >= lower else None


def _merged(
    exposures: Iterator[_Row], events: Iterator[_Row]
) -> Iterator[tuple[list[_Row], list[_Row]]]:
    """Both streams ordered by visitor id, as ``(visitor's exposures, their events)``."""
    event_groups = groupby(events, key=itemgetter(0))
    current = next(event_groups, None)
    for visitor_id, group in groupby(exposures, key=itemgetter(0)):
        rows = list(group)
        while current is not None and current[0] < visitor_id:
            current = next(event_groups, None)
        mine: list[_Row] = []
        if current is not None and current[0] == visitor_id:
            mine = list(current[1])
            current = next(event_groups, None)
        yield rows, mine


def _events_query(exposed: str) -> str:
    kinds = ", ".join(f"'{kind}'" for kind in ATTRIBUTED_TYPES)
    return (
        "SELECT visitor_id, type, ts, properties FROM events"
        f" WHERE visitor_id IN ({exposed}) AND ts >= ? AND ts < ? AND type IN ({kinds})"
        " ORDER BY visitor_id, ts, event_id"
    )


def campaign_counts(
    conn: sqlite3.Connection,
    campaign: str,
    start: datetime,
    end: datetime,
    window: timedelta,
    *,
    by_segment: bool = False,
    channel: str = "",
) -> CampaignCounts:
    """Tally one campaign's arms over [start, end) (see the module docstring); with a
    ``channel``, its exposures only."""
    lo, first, last = (format_timestamp(t) for t in (start - window, start, end))
    counts = CampaignCounts()
    where = "campaign = ? AND ts >= ? AND ts < ?" + (" AND channel = ?" if channel else "")
    tagged = (channel,) if channel else ()
    conn.execute("BEGIN")  # one snapshot for both queries
    try:
        exposures = conn.execute(
            "SELECT visitor_id, ts, variant, decision_id, segments FROM exposures"
            f" WHERE {where} ORDER BY visitor_id, ts",
            (campaign, lo, last, *tagged),
        )
        events = conn.execute(
            _events_query(f"SELECT visitor_id FROM exposures WHERE {where}"),
            (campaign, first, last, *tagged, first, last),
        )
        for rows, mine in _merged(exposures, events):
            entry = next((row for row in rows if row[1] >= first), None)
            if entry is None:
                continue  # exposed only before the period
            clicked, converted, revenue = _outcome(rows, mine, campaign, first, window)
            arm = entry[2]
            tallies = [counts.arms.setdefault(arm, Tally())]
            if by_segment:
                for segment in orjson.loads(entry[4]):
                    tallies.append(
                        counts.by_segment.setdefault(segment, {}).setdefault(arm, Tally())
                    )
            for tally in tallies:
                tally.exposed += 1
                tally.clicks += clicked
                tally.conversions += converted
                tally.revenue += revenue
    finally:
        conn.execute("COMMIT")
    return counts


def _outcome(
    rows: list[_Row], events: list[_Row], campaign: str, first: str, window: timedelta
) -> tuple[bool, bool, float]:
    """Whether one visitor clicked and converted, and their revenue, by attribution."""
    times = [row[1] for row in rows]
    clicked = converted = False
    revenue = 0.0
    orders: set[Any] = set()
    for _, kind, ts, text in events:
        properties = orjson.loads(text)
        if kind != PURCHASE and properties.get("campaign") != campaign:
            continue
        exposure = attribute(rows, times, ts, properties.get("decision_id"), window)
        if exposure is None or exposure[1] < first:
            continue
        if kind == CLICK:
            clicked = True
            continue
        converted = True
        if kind == PURCHASE:
            if properties.get("order_id") in orders:
                continue
            orders.add(properties.get("order_id"))
        revenue += float(properties.get("value") or 0.0)
    return clicked, converted, revenue


@dataclass(frozen=True, slots=True)
class VisitorOutcome:
    """One visitor's exposures in a period (to any campaign) and what followed."""

    exposures: int
    converted: bool
    revenue: float


def visitor_outcomes(
    conn: sqlite3.Connection, start: datetime, end: datetime, window: timedelta
) -> dict[str, VisitorOutcome]:
    """Every visitor exposed in [start, end): exposures counted, and whether an event
    of the period was attributed to one of those exposures (purchases to any campaign,
    conversions to the campaign they name), with the revenue of such events."""
    lo, first, last = (format_timestamp(t) for t in (start - window, start, end))
    outcomes: dict[str, VisitorOutcome] = {}
    conn.execute("BEGIN")
    try:
        exposures = conn.execute(
            "SELECT visitor_id, ts, campaign, decision_id FROM exposures"
            " WHERE ts >= ? AND ts < ? ORDER BY visitor_id, ts",
            (lo, last),
        )
        events = conn.execute(
            _events_query("SELECT visitor_id FROM exposures WHERE ts >= ? AND ts < ?"),
            (first, last, first, last),
        )
        for rows, mine in _merged(exposures, events):
            count = sum(1 for row in rows if row[1] >= first)
            if not count:
                continue
            converted = False
            revenue = 0.0
            orders: set[Any] = set()
            for _, kind, ts, text in mine:
                if kind == CLICK:
                    continue
                properties = orjson.loads(text)
                if kind == PURCHASE:
                    # Some campaign's latest exposure is in the window and the period.
                    lower = max(_shift(ts, window), first)
                    if not any(lower <= row[1] <= ts for row in rows):
                        continue
                    if properties.get("order_id") in orders:
                        continue
                    orders.add(properties.get("order_id"))
                else:
                    own = [row for row in rows if row[2] == properties.get("campaign")]
                    exposure = attribute(
                        own, [row[1] for row in own], ts, properties.get("decision_id"), window
                    )
                    if exposure is None or exposure[1] < first:
                        continue
                converted = True
                revenue += float(properties.get("value") or 0.0)
            outcomes[rows[0][0]] = VisitorOutcome(count, converted, revenue)
    finally:
        conn.execute("COMMIT")
    return outcomes
