"""The demo dataset: deterministic, in step with the demo rules, showing each report state."""

from __future__ import annotations

from decision.defaults import demo_document
from insights.demo import (
    DEFAULT_SEED,
    EXPERIMENTS,
    SEGMENTS,
    demo_campaign_reports,
    demo_segment_report,
)
from insights.model import STATUS_NOT_ENOUGH_DATA


class TestInStepWithTheRules:
    def test_campaigns_variants_and_weights(self):
        """Every demo experiment is a demo campaign with the same variants, control and weights;
        a holdout arm stands for the campaign's holdout percentage."""
        campaigns = {c["id"]: c for c in demo_document()["campaigns"]}

        for experiment in EXPERIMENTS:
            campaign = campaigns[experiment.campaign_id]
            rules = {v["id"]: v.get("weight", 1) for v in campaign["variants"]}
            controls = {v["id"] for v in campaign["variants"] if v.get("control")}
            variants = [a for a in experiment.arms if a.variant_id != "holdout"]
            holdout = [a for a in experiment.arms if a.variant_id == "holdout"]

            assert set(rules) == {a.variant_id for a in variants}
            assert controls == {a.variant_id for a in variants if a.control}
            # Weights may be scaled (in buckets next to a holdout arm): compare shares.
            assert {k: w / sum(rules.values()) for k, w in rules.items()} == {
                a.variant_id: a.weight / sum(v.weight for v in variants) for a in variants
            }
            if holdout:
                share = holdout[0].weight / sum(a.weight for a in experiment.arms)
                assert campaign["holdout"] / 100 == share

    def test_segments(self):
        """Every demo segment, including the breakdowns, is a segment of the demo document."""
        known = {s["id"] for s in demo_document()["segments"]}
        used = set(SEGMENTS) | {s for e in EXPERIMENTS for s in (e.segments or {})}

        assert used <= known


class TestDeterminism:
    def test_same_seed_same_reports(self):
        """The same seed gives equal reports; another seed gives other numbers."""
        assert demo_campaign_reports() == demo_campaign_reports(DEFAULT_SEED)
        assert demo_segment_report() == demo_segment_report(DEFAULT_SEED)
        assert demo_campaign_reports(1) != demo_campaign_reports(2)


class TestStates:
    def test_each_state_appears(self):
        """The demo has a clear winner, a sample ratio mismatch and a campaign still waiting."""
        reports = {r.campaign_id: r for r in demo_campaign_reports()}

        assert reports["welcome_offer"].variants[1].p_value < 0.05
        assert [] == [
            k for k, r in reports.items() if r.srm.mismatch and k != "exit_intent_discount"
        ]
        assert reports["exit_intent_discount"].srm.mismatch
        assert STATUS_NOT_ENOUGH_DATA == reports["newsletter_signup"].status
        assert reports["recs_strategy_test"].by_segment is not None

    def test_segment_report_is_consistent(self):
        """Each segment's size now is the overlap diagonal and the last point of its series."""
        report = demo_segment_report()

        for i, stats in enumerate(report.segments):
            assert stats.size_now == report.overlap[i][i] == stats.sizes_over_time[-1][1]
        assert ("new_visitors", "returning_customers") == report.journeys[0][:2]
