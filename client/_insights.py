"""InsightsService requests from plain values, and responses to ``insights.model`` values.

Campaign and segment reports come back as ``insights.CampaignReport`` and
``insights.SegmentReport``, the very objects ``insights.render_html`` draws; an
estimate as ``client.types.SegmentEstimate``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from client.types import SegmentEstimate, SegmentOverlap
from insights import (
    CampaignReport,
    SampleRatioCheck,
    SegmentEngagement,
    SegmentReport,
    SegmentStats,
    VariantCounts,
    VariantResult,
)
from protos import decisioning_pb2 as pb

DEFAULT_INSIGHTS_TIMEOUT = 120.0
"""Seconds a report, an estimate or a whole export may take: they scan the store."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_NAMES = {pb.REPORT_STATUS_OK: "ok", pb.REPORT_STATUS_NOT_ENOUGH_DATA: "not_enough_data"}


def _stamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("period bounds must be timezone-aware datetimes")
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def period(start: datetime | None, end: datetime | None) -> pb.Period:
    """A ``Period``; an unset bound takes the server's default."""
    return pb.Period(start=_stamp(start), end=_stamp(end))


def _when(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _bounds(message: Any, name: str) -> tuple[float, float] | None:
    if not message.HasField(name):
        return None
    interval = getattr(message, name)
    return (interval.low, interval.high)


def variant_result(message: pb.VariantReport) -> VariantResult:
    """``insights.VariantResult`` of one arm."""
    return VariantResult(
        counts=VariantCounts(
            message.variant_id,
            control=message.control,
            weight=message.weight,
            exposed=message.exposed,
            clicks=message.clicks,
            conversions=message.conversions,
            revenue=message.revenue,
        ),
        ctr=_optional(message, "ctr"),
        conversion_rate=_optional(message, "conversion_rate"),
        conversion_ci=_bounds(message, "conversion_ci") or (0.0, 1.0),
        revenue_per_visitor=_optional(message, "revenue_per_visitor"),
        lift=_optional(message, "lift"),
        lift_ci=_bounds(message, "lift_ci"),
        p_value=_optional(message, "p_value"),
        prob_beat_control=_optional(message, "prob_beat_control"),
        enough_data=message.enough_data,
    )


def campaign_report(message: pb.CampaignReportResponse) -> CampaignReport:
    """``insights.CampaignReport`` of a CampaignReport response."""
    srm = message.srm
    return CampaignReport(
        campaign_id=message.campaign,
        period_start=_when(message.period, "start"),
        period_end=_when(message.period, "end"),
        variants=tuple(variant_result(v) for v in message.variants),
        srm=SampleRatioCheck(
            variant_ids=tuple(srm.variant_ids),
            expected_shares=tuple(srm.expected_shares),
            observed=tuple(srm.observed),
            chi2=srm.chi2,
            p_value=srm.p_value,
            mismatch=srm.mismatch,
        ),
        min_sample=message.min_sample,
        status=_STATUS_NAMES.get(message.status, "not_enough_data"),  # type: ignore[arg-type]
        by_segment=(
            {b.segment_id: tuple(variant_result(v) for v in b.variants) for b in message.by_segment}
            if message.segmented
            else None
        ),
    )


def segment_report(message: pb.SegmentReportResponse) -> SegmentReport:
    """``insights.SegmentReport`` of a SegmentReport response."""
    return SegmentReport(
        segments=tuple(
            SegmentStats(
                segment_id=s.segment_id,
                size_now=s.size_now,
                sizes_over_time=tuple((d.day, d.size) for d in s.sizes_over_time),
                exposures=s.exposures,
                conversion_rate=_optional(s, "conversion_rate"),
                revenue_per_visitor=_optional(s, "revenue_per_visitor"),
                engagement=(
                    SegmentEngagement(
                        members=s.engagement.members,
                        sessions=s.engagement.sessions,
                        page_views=s.engagement.page_views,
                        time_on_site=s.engagement.time_on_site,
                    )
                    if s.HasField("engagement")
                    else None
                ),
            )
            for s in message.segments
        ),
        overlap=tuple(tuple(row.visitors) for row in message.overlap),
        journeys=tuple((j.from_segment, j.to_segment, j.visitors) for j in message.journeys),
        period_start=_when(message.period, "start"),
        period_end=_when(message.period, "end"),
    )


def segment_estimate(message: pb.EstimateSegmentResponse) -> SegmentEstimate:
    """The typed result of an EstimateSegment call."""
    return SegmentEstimate(
        matching=message.matching,
        profiles=message.profiles,
        sample_ids=tuple(message.sample_ids),
        overlaps=tuple(
            SegmentOverlap(o.segment_id, o.segment_size, o.both, o.jaccard)
            for o in message.overlaps
        ),
        ruleset_version=message.ruleset_version,
        segment_sizes_at=_when(message, "segment_sizes_at"),
    )


def campaign_extras(message: pb.CampaignReportResponse) -> dict[str, Any]:
    """What a CampaignReport says beyond ``insights.CampaignReport``."""
    return {
        "expected_weights": message.srm.expected_weights,
        "attribution_window_days": message.attribution_window_days,
        "ruleset_version": message.ruleset_version,
    }
