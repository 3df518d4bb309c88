"""Report value objects: what an experiment or a set of segments looked like over a period.

All classes are frozen and slotted, hold only plain values (str, int, float, bool,
tuples, read-only mappings, datetimes) and turn into JSON-ready dicts with
``to_dict()``. They are built by ``insights.stats.analyze_campaign`` (campaigns) or by
the caller (segments) and drawn by ``insights.report.render_html``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

JSON: TypeAlias = Any
"""A JSON value: dict, list, str, int, float, bool or None."""

Status: TypeAlias = Literal["ok", "not_enough_data"]
"""``"not_enough_data"``: some variant has fewer exposed visitors than the minimum sample."""

STATUS_OK: Status = "ok"
STATUS_NOT_ENOUGH_DATA: Status = "not_enough_data"

Interval: TypeAlias = tuple[float, float]
"""A confidence or credible interval ``(low, high)``."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _interval(value: Interval | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


@dataclass(frozen=True, slots=True)
class VariantCounts:
    """What one arm of a campaign collected over a period: the input of the statistics.

    ``exposed`` counts distinct visitors who were served the variant; ``clicks`` and
    ``conversions`` count distinct exposed visitors who clicked or converted at least
    once (so both are at most ``exposed`` and the rates are proportions);
    ``revenue`` is the attributed revenue in the store's currency. ``weight`` is the
    variant's configured weight, relative to the other variants' weights (any unit:
    rule weights, or buckets when a holdout arm is reported alongside).
    """

    variant_id: str
    control: bool = False
    weight: int = 1
    exposed: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0

    def __post_init__(self) -> None:
        for name in ("weight", "exposed", "clicks", "conversions"):
            _check_count(name, getattr(self, name))
        if self.clicks > self.exposed:
            raise ValueError(f"clicks ({self.clicks}) exceed exposed visitors ({self.exposed})")
        if self.conversions > self.exposed:
            raise ValueError(
                f"conversions ({self.conversions}) exceed exposed visitors ({self.exposed})"
            )
        if not math.isfinite(self.revenue) or self.revenue < 0:
            raise ValueError(f"revenue must be a finite non-negative number, not {self.revenue!r}")

    def to_dict(self) -> dict[str, JSON]:
        return {
            "variant_id": self.variant_id,
            "control": self.control,
            "weight": self.weight,
            "exposed": self.exposed,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "revenue": self.revenue,
        }


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One variant's counts and the figures derived from them.

    Rates are ``None`` when nobody was exposed. ``lift`` is relative to the control
    (``0.1`` = 10 % more conversions per visitor); it and the other comparison fields
    (``lift_ci``, ``p_value``, ``prob_beat_control``) are ``None`` for the control
    itself, when the campaign does not have enough data, or when the comparison is
    undefined (e.g. lift over a control without conversions). ``enough_data`` is this
    variant's own ``exposed >= min_sample``.
    """

    counts: VariantCounts
    ctr: float | None
    conversion_rate: float | None
    conversion_ci: Interval
    revenue_per_visitor: float | None
    lift: float | None
    lift_ci: Interval | None
    p_value: float | None
    prob_beat_control: float | None
    enough_data: bool

    @property
    def variant_id(self) -> str:
        return self.counts.variant_id

    @property
    def control(self) -> bool:
        return self.counts.control

    def to_dict(self) -> dict[str, JSON]:
        """The counts' fields inline, followed by the derived figures."""
        return {
            **self.counts.to_dict(),
            "ctr": self.ctr,
            "conversion_rate": self.conversion_rate,
            "conversion_ci": _interval(self.conversion_ci),
            "revenue_per_visitor": self.revenue_per_visitor,
            "lift": self.lift,
            "lift_ci": _interval(self.lift_ci),
            "p_value": self.p_value,
            "prob_beat_control": self.prob_beat_control,
            "enough_data": self.enough_data,
        }


@dataclass(frozen=True, slots=True)
class SampleRatioCheck:
    """Did traffic split the way the weights say? A chi-square goodness-of-fit test.

    ``variant_ids``, ``expected_shares`` (weights normalised to sum to 1) and
    ``observed`` (exposed visitors) are aligned. Variants with weight 0 are left out:
    they should get no new traffic, but may still have visitors from before a weight
    change. ``mismatch`` is ``p_value < 0.001``: at that level a healthy experiment
    raises a false alarm once in a thousand checks, while a broken split (bucketing
    bug, bot traffic, a redirect that loses one arm) is flagged once a few thousand
    visitors are in.
    """

    variant_ids: tuple[str, ...]
    expected_shares: tuple[float, ...]
    observed: tuple[int, ...]
    chi2: float
    p_value: float
    mismatch: bool

    def to_dict(self) -> dict[str, JSON]:
        return {
            "variant_ids": list(self.variant_ids),
            "expected_shares": list(self.expected_shares),
            "observed": list(self.observed),
            "chi2": self.chi2,
            "p_value": self.p_value,
            "mismatch": self.mismatch,
        }


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """An experiment's results over a period, control first as given in ``variants``.

    ``by_segment`` maps a segment id to the same per-variant results restricted to
    the visitors in that segment (each judged against ``min_sample`` on its own).
    """

    campaign_id: str
    period_start: datetime | None
    period_end: datetime | None
    variants: tuple[VariantResult, ...]
    srm: SampleRatioCheck
    min_sample: int
    status: Status
    by_segment: Mapping[str, tuple[VariantResult, ...]] | None = None

    def __post_init__(self) -> None:
        if self.by_segment is not None and not isinstance(self.by_segment, MappingProxyType):
            object.__setattr__(self, "by_segment", MappingProxyType(dict(self.by_segment)))

    @property
    def control(self) -> VariantResult:
        """The variant the others are compared with."""
        return next((v for v in self.variants if v.control), self.variants[0])

    def to_dict(self) -> dict[str, JSON]:
        return {
            "campaign_id": self.campaign_id,
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "status": self.status,
            "min_sample": self.min_sample,
            "variants": [v.to_dict() for v in self.variants],
            "srm": self.srm.to_dict(),
            "by_segment": None
            if self.by_segment is None
            else {s: [v.to_dict() for v in vs] for s, vs in self.by_segment.items()},
        }


@dataclass(frozen=True, slots=True)
class SegmentEngagement:
    """How a segment's members use the site: ``members`` visitors, and their profiles'
    sessions, page views and time on site (seconds) added up. The means are over the
    members (a member without sessions counts as 0) and over their sessions; ``None``
    when there is nothing to divide by.
    """

    members: int
    sessions: int = 0
    page_views: int = 0
    time_on_site: float = 0.0

    def __post_init__(self) -> None:
        _check_count("members", self.members)
        _check_count("sessions", self.sessions)
        _check_count("page_views", self.page_views)
        if not (math.isfinite(self.time_on_site) and self.time_on_site >= 0):
            raise ValueError(f"time_on_site must be finite and >= 0, got {self.time_on_site!r}")

    @property
    def sessions_per_member(self) -> float | None:
        return self.sessions / self.members if self.members else None

    @property
    def pages_per_session(self) -> float | None:
        return self.page_views / self.sessions if self.sessions else None

    @property
    def time_on_site_per_member(self) -> float | None:
        """Seconds."""
        return self.time_on_site / self.members if self.members else None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "members": self.members,
            "sessions": self.sessions,
            "page_views": self.page_views,
            "time_on_site": self.time_on_site,
            "sessions_per_member": self.sessions_per_member,
            "pages_per_session": self.pages_per_session,
            "time_on_site_per_member": self.time_on_site_per_member,
        }


@dataclass(frozen=True, slots=True)
class SegmentStats:
    """One segment over a period.

    ``size_now`` is the number of stored profiles matching it when the report was
    made; ``sizes_over_time`` is ``(ISO date, size)`` points in date order;
    ``exposures`` counts exposures of its visitors to any campaign in the period, and
    ``conversion_rate`` / ``revenue_per_visitor`` are over those exposed visitors
    (``None`` without exposures). ``engagement`` is over the members now (``None``
    when not reported).
    """

    segment_id: str
    size_now: int
    sizes_over_time: tuple[tuple[str, int], ...] = ()
    exposures: int = 0
    conversion_rate: float | None = None
    revenue_per_visitor: float | None = None
    engagement: SegmentEngagement | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "segment_id": self.segment_id,
            "size_now": self.size_now,
            "sizes_over_time": [[day, size] for day, size in self.sizes_over_time],
            "exposures": self.exposures,
            "conversion_rate": self.conversion_rate,
            "revenue_per_visitor": self.revenue_per_visitor,
            "engagement": None if self.engagement is None else self.engagement.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """Segments side by side: their stats, how they overlap and how visitors move.

    ``overlap[i][j]`` is the number of visitors in both ``segments[i]`` and
    ``segments[j]``: symmetric, with each segment's size on the diagonal.
    ``journeys`` are ``(from_segment, to_segment, visitors)``: visitors who were in
    the first segment and not in the second at the start of the period, and in the
    second at its end (whether or not they left the first: segments may nest).
    """

    segments: tuple[SegmentStats, ...]
    overlap: tuple[tuple[int, ...], ...] = ()
    journeys: tuple[tuple[str, str, int], ...] = ()
    period_start: datetime | None = None
    period_end: datetime | None = None

    def __post_init__(self) -> None:
        n = len(self.segments)
        if self.overlap:
            if len(self.overlap) != n or any(len(row) != n for row in self.overlap):
                raise ValueError(f"overlap must be a {n}x{n} matrix, one row per segment")
            for i in range(n):
                for j in range(i):
                    if self.overlap[i][j] != self.overlap[j][i]:
                        raise ValueError(f"overlap is not symmetric at [{i}][{j}]")

    @property
    def segment_ids(self) -> tuple[str, ...]:
        return tuple(s.segment_id for s in self.segments)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "segments": [s.to_dict() for s in self.segments],
            "overlap": [list(row) for row in self.overlap],
            "journeys": [
                {"from": src, "to": dst, "visitors": visitors}
                for src, dst, visitors in self.journeys
            ],
        }
