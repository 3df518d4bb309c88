"""Experiment and segment insights: statistics, report data model, HTML report. Pure, stdlib only.

``insights`` reads no clock, environment, network or database: counts, periods and
timestamps are arguments. The service's exposure and attribution layer produces
``VariantCounts`` and ``SegmentStats`` (with ``SegmentEngagement``); this package turns them into reports.
"""

from insights.model import (
    STATUS_NOT_ENOUGH_DATA,
    STATUS_OK,
    CampaignReport,
    SampleRatioCheck,
    SegmentEngagement,
    SegmentReport,
    SegmentStats,
    VariantCounts,
    VariantResult,
)
from insights.report import render_html
from insights.stats import (
    CONFIDENCE,
    DEFAULT_MIN_SAMPLE,
    SRM_ALPHA,
    analyze_campaign,
    chi_square_gof,
    prob_b_beats_a,
    relative_lift,
    sample_ratio_check,
    two_proportion_z_test,
    wilson_interval,
)

__all__ = [
    "CONFIDENCE",
    "DEFAULT_MIN_SAMPLE",
    "SRM_ALPHA",
    "STATUS_NOT_ENOUGH_DATA",
    "STATUS_OK",
    "CampaignReport",
    "SampleRatioCheck",
    "SegmentEngagement",
    "SegmentReport",
    "SegmentStats",
    "VariantCounts",
    "VariantResult",
    "analyze_campaign",
    "chi_square_gof",
    "prob_b_beats_a",
    "relative_lift",
    "render_html",
    "sample_ratio_check",
    "two_proportion_z_test",
    "wilson_interval",
]
