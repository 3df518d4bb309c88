"""analyze_campaign: control choice, minimum sample, edge cases and the JSON form."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from insights import (
    STATUS_NOT_ENOUGH_DATA,
    STATUS_OK,
    SegmentEngagement,
    SegmentReport,
    SegmentStats,
    VariantCounts,
    analyze_campaign,
    prob_b_beats_a,
    relative_lift,
    two_proportion_z_test,
    wilson_interval,
)

START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 6, 15, tzinfo=UTC)

WELCOME = [
    VariantCounts(
        "control", control=True, exposed=5000, clicks=900, conversions=400, revenue=24_000.0
    ),
    VariantCounts("welcome_10", exposed=5100, clicks=1100, conversions=480, revenue=27_540.0),
]


class TestCampaign:
    def test_figures(self):
        """Every field is the corresponding statistic of the counts."""
        report = analyze_campaign(
            WELCOME, campaign_id="welcome_offer", period_start=START, period_end=END
        )
        control, variant = report.variants

        assert STATUS_OK == report.status
        assert (START, END) == (report.period_start, report.period_end)
        assert (0.18, 0.08, 4.8) == (
            control.ctr,
            control.conversion_rate,
            control.revenue_per_visitor,
        )
        assert wilson_interval(480, 5100) == variant.conversion_ci
        assert (None, None, None, None) == (
            control.lift,
            control.lift_ci,
            control.p_value,
            control.prob_beat_control,
        )
        assert relative_lift(400, 5000, 480, 5100) == (variant.lift, variant.lift_ci)
        assert two_proportion_z_test(400, 5000, 480, 5100)[1] == variant.p_value
        assert prob_b_beats_a(400, 5000, 480, 5100) == variant.prob_beat_control
        assert (True, True) == (control.enough_data, variant.enough_data)

    def test_control_is_the_flagged_variant(self):
        """The control is the variant marked control, wherever it is listed."""
        counts = [
            VariantCounts("b", exposed=1000, conversions=120),
            VariantCounts("a", control=True, exposed=1000, conversions=100),
        ]

        report = analyze_campaign(counts, campaign_id="c")

        assert "a" == report.control.variant_id
        assert pytest.approx(0.2) == report.variants[0].lift
        assert report.variants[1].lift is None

    def test_first_variant_is_the_control_by_default(self):
        """Without a flagged control the first variant is the baseline."""
        counts = [
            VariantCounts("ten_percent", exposed=800, conversions=80),
            VariantCounts("free_gift", exposed=800, conversions=40),
        ]

        report = analyze_campaign(counts, campaign_id="exit_intent_discount")

        assert "ten_percent" == report.control.variant_id
        assert pytest.approx(-0.5) == report.variants[1].lift

    def test_not_enough_data(self):
        """One variant under min_sample: status not_enough_data, no comparisons, rates still shown."""
        counts = [
            VariantCounts("control", control=True, exposed=150, conversions=15),
            VariantCounts("b", exposed=99, conversions=20),
        ]

        report = analyze_campaign(counts, campaign_id="c", min_sample=100)
        variant = report.variants[1]

        assert STATUS_NOT_ENOUGH_DATA == report.status
        assert (None, None, None, None) == (
            variant.lift,
            variant.lift_ci,
            variant.p_value,
            variant.prob_beat_control,
        )
        assert pytest.approx(20 / 99) == variant.conversion_rate
        assert wilson_interval(20, 99) == variant.conversion_ci
        assert (True, False) == (report.variants[0].enough_data, variant.enough_data)

    def test_min_sample_is_inclusive(self):
        """Exactly min_sample exposed visitors is enough."""
        counts = [
            VariantCounts("a", exposed=100, conversions=10),
            VariantCounts("b", exposed=100, conversions=12),
        ]

        assert STATUS_OK == analyze_campaign(counts, campaign_id="c", min_sample=100).status

    def test_nobody_exposed(self):
        """n = 0: no rates, the whole [0, 1] interval, not enough data."""
        counts = [VariantCounts("a", control=True), VariantCounts("b")]

        report = analyze_campaign(counts, campaign_id="c")

        assert STATUS_NOT_ENOUGH_DATA == report.status
        assert [(None, None, None)] * 2 == [
            (v.ctr, v.conversion_rate, v.revenue_per_visitor) for v in report.variants
        ]
        assert [(0.0, 1.0)] * 2 == [v.conversion_ci for v in report.variants]
        assert (0.0, 1.0) == (report.srm.chi2, report.srm.p_value)

    def test_no_conversions_anywhere(self):
        """Nobody converting: rate 0, lift undefined, p = 1 and a coin-flip posterior."""
        counts = [VariantCounts("a", control=True, exposed=500), VariantCounts("b", exposed=500)]

        variant = analyze_campaign(counts, campaign_id="c").variants[1]

        assert (0.0, None, None, 1.0) == (
            variant.conversion_rate,
            variant.lift,
            variant.lift_ci,
            variant.p_value,
        )
        assert 0.5 == pytest.approx(variant.prob_beat_control)

    def test_everybody_converts(self):
        """Everybody converting in both arms: rate 1, no lift, p = 1."""
        counts = [
            VariantCounts("a", control=True, exposed=300, conversions=300),
            VariantCounts("b", exposed=200, conversions=200),
        ]

        variant = analyze_campaign(counts, campaign_id="c").variants[1]

        assert (1.0, 0.0, 1.0) == (variant.conversion_rate, variant.lift, variant.p_value)
        assert 1.0 == variant.conversion_ci[1]

    def test_single_variant(self):
        """A campaign with one variant has no comparison and a trivially fine split."""
        report = analyze_campaign(
            [VariantCounts("default", exposed=1000, conversions=30)], campaign_id="summer_sale"
        )

        assert STATUS_OK == report.status
        assert (False, 1.0) == (report.srm.mismatch, report.srm.p_value)
        assert report.variants[0].lift is None

    def test_zero_weight_variant_is_left_out_of_the_split_check(self):
        """A variant switched off (weight 0) is still reported but not in the SRM test."""
        counts = [
            VariantCounts("a", control=True, exposed=1000, conversions=100),
            VariantCounts("b", exposed=1010, conversions=100),
            VariantCounts("retired", weight=0, exposed=150, conversions=10),
        ]

        report = analyze_campaign(counts, campaign_id="c")

        assert ("a", "b") == report.srm.variant_ids
        assert (0.5, 0.5) == report.srm.expected_shares
        assert 3 == len(report.variants)

    def test_by_segment(self):
        """Each segment breakdown is analysed on its own, against the same minimum sample."""
        by_segment = {
            "new_visitors": [
                VariantCounts("control", control=True, exposed=3000, conversions=200),
                VariantCounts("welcome_10", exposed=3100, conversions=260),
            ],
            "high_value_customers": [
                VariantCounts("control", control=True, exposed=40, conversions=8),
                VariantCounts("welcome_10", exposed=35, conversions=9),
            ],
        }

        report = analyze_campaign(WELCOME, campaign_id="welcome_offer", by_segment=by_segment)

        assert report.by_segment is not None
        assert isinstance(report.by_segment, MappingProxyType)
        assert ["new_visitors", "high_value_customers"] == list(report.by_segment)
        assert report.by_segment["new_visitors"][1].p_value is not None
        assert report.by_segment["high_value_customers"][1].p_value is None

    @pytest.mark.parametrize(
        ("counts", "min_sample"),
        [
            ([], 100),
            ([VariantCounts("a"), VariantCounts("a")], 100),
            ([VariantCounts("a")], 0),
            ([VariantCounts("a", weight=0)], 100),
        ],
        ids=["no-variants", "duplicate-ids", "zero-min-sample", "no-weight"],
    )
    def test_rejects_bad_input(self, counts: list[VariantCounts], min_sample: int):
        """No variants, duplicate ids, min_sample < 1 and all-zero weights are errors."""
        with pytest.raises(ValueError):
            analyze_campaign(counts, campaign_id="c", min_sample=min_sample)


class TestCounts:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"exposed": -1},
            {"exposed": 10, "conversions": 11},
            {"exposed": 10, "clicks": 11},
            {"weight": -1},
            {"exposed": 1.5},
            {"exposed": True},
            {"revenue": -1.0},
            {"revenue": math.nan},
        ],
    )
    def test_rejects_impossible_counts(self, kwargs: dict[str, object]):
        """Counts are non-negative integers, conversions and clicks at most exposed."""
        with pytest.raises(ValueError):
            VariantCounts("a", **kwargs)  # type: ignore[arg-type]


class TestEngagement:
    def test_means_over_members_and_sessions(self):
        """Sessions and time per member, pages per session."""
        engagement = SegmentEngagement(members=4, sessions=10, page_views=35, time_on_site=1800.0)

        actual = (
            engagement.sessions_per_member,
            engagement.pages_per_session,
            engagement.time_on_site_per_member,
        )

        assert (2.5, 3.5, 450.0) == actual

    def test_nothing_to_divide_by_is_none(self):
        """No members (or no sessions): the means are None, not a division by zero."""
        expected = (None, None, None, None)

        actual = (
            SegmentEngagement(members=0).sessions_per_member,
            SegmentEngagement(members=0).time_on_site_per_member,
            SegmentEngagement(members=3).pages_per_session,
            SegmentEngagement(members=3).to_dict()["pages_per_session"],
        )

        assert expected == actual

    @pytest.mark.parametrize(
        "kwargs",
        [{"members": -1}, {"sessions": 1.5}, {"page_views": True}, {"time_on_site": math.inf}],
    )
    def test_rejects_impossible_totals(self, kwargs: dict[str, object]):
        """Counts are non-negative integers and the time a finite number of seconds."""
        with pytest.raises(ValueError):
            SegmentEngagement(**{"members": 1, **kwargs})  # type: ignore[arg-type]


class TestSerialization:
    def test_campaign_report_round_trips_through_json(self):
        """to_dict() is plain JSON: counts inline, intervals as lists, datetimes as ISO strings."""
        report = analyze_campaign(
            WELCOME,
            campaign_id="welcome_offer",
            period_start=START,
            period_end=END,
            by_segment={"new_visitors": WELCOME},
        )

        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))

        assert "2026-06-01T00:00:00+00:00" == data["period_start"]
        assert {"variant_id": "welcome_10", "control": False, "weight": 1, "exposed": 5100} == {
            k: data["variants"][1][k] for k in ("variant_id", "control", "weight", "exposed")
        }
        assert list(report.variants[1].conversion_ci) == data["variants"][1]["conversion_ci"]
        assert ["control", "welcome_10"] == data["srm"]["variant_ids"]
        assert 2 == len(data["by_segment"]["new_visitors"])

    def test_segment_report_to_dict(self):
        """Segment reports serialise their series, matrix and journeys."""
        report = SegmentReport(
            segments=(
                SegmentStats(
                    "new_visitors",
                    120,
                    (("2026-06-01", 100), ("2026-06-02", 120)),
                    80,
                    0.05,
                    1.5,
                    SegmentEngagement(120, 150, 450, 27_000.0),
                ),
                SegmentStats("returning_customers", 300),
            ),
            overlap=((120, 10), (10, 300)),
            journeys=(("new_visitors", "returning_customers", 10),),
        )

        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))

        assert [["2026-06-01", 100], ["2026-06-02", 120]] == data["segments"][0]["sizes_over_time"]
        assert [[120, 10], [10, 300]] == data["overlap"]
        assert [{"from": "new_visitors", "to": "returning_customers", "visitors": 10}] == data[
            "journeys"
        ]
        assert ("new_visitors", "returning_customers") == report.segment_ids
        assert {
            "members": 120,
            "sessions": 150,
            "page_views": 450,
            "time_on_site": 27_000.0,
            "sessions_per_member": 1.25,
            "pages_per_session": 3.0,
            "time_on_site_per_member": 225.0,
        } == data["segments"][0]["engagement"]
        assert None is data["segments"][1]["engagement"]

    @pytest.mark.parametrize(
        "overlap", [((1, 2),), ((1, 2), (3, 4))], ids=["not-square", "not-symmetric"]
    )
    def test_segment_report_checks_the_overlap_matrix(self, overlap: tuple[tuple[int, ...], ...]):
        """The overlap matrix is square, one row per segment, and symmetric."""
        with pytest.raises(ValueError):
            SegmentReport(segments=(SegmentStats("a", 1), SegmentStats("b", 4)), overlap=overlap)
