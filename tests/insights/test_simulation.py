"""Simulated experiments: true lifts are found, A/A tests rarely cry wolf, broken splits are flagged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from insights import VariantCounts, analyze_campaign, wilson_interval

VISITORS = 20_000


def _campaign(seed: int, control_rate: float, variant_rate: float, share: float = 0.5):
    """One simulated two-arm campaign: 2 x VISITORS visitors split by ``share``."""
    rng = np.random.default_rng(seed)
    n_variant = int(rng.binomial(2 * VISITORS, share))
    n_control = 2 * VISITORS - n_variant
    counts = [
        VariantCounts(
            "control",
            control=True,
            exposed=n_control,
            conversions=int(rng.binomial(n_control, control_rate)),
        ),
        VariantCounts(
            "treatment", exposed=n_variant, conversions=int(rng.binomial(n_variant, variant_rate))
        ),
    ]
    return analyze_campaign(counts, campaign_id=f"sim-{seed}")


class TestPower:
    def test_true_lift_is_detected(self):
        """10 % -> 12 % with 20,000 visitors per arm: p < 0.05 in at least 80 % of 50 seeds."""
        reports = [_campaign(seed, 0.10, 0.12) for seed in range(50)]
        treatment = [r.variants[1] for r in reports]

        detected = sum(1 for t in treatment if t.p_value is not None and t.p_value < 0.05)
        assert detected >= 40
        # The Bayesian view agrees on the direction.
        assert all(t.prob_beat_control is not None and t.prob_beat_control > 0.9 for t in treatment)

    def test_power_matches_the_textbook_formula(self):
        """10 % -> 10.85 %: the share of 200 seeds with p < 0.05 is the designed ~80 % power."""
        p1, p2 = 0.10, 0.1085
        se = ((p1 * (1 - p1) + p2 * (1 - p2)) / VISITORS) ** 0.5
        z = sps.norm.ppf(0.975)
        expected = sps.norm.cdf((p2 - p1) / se - z) + sps.norm.cdf(-(p2 - p1) / se - z)
        reports = [_campaign(40_000 + seed, p1, p2) for seed in range(200)]

        p_values = [r.variants[1].p_value for r in reports]
        power = sum(1 for p in p_values if p is not None and p < 0.05) / len(reports)
        assert expected == pytest.approx(power, abs=0.09)

    def test_lift_interval_covers_the_true_lift(self):
        """The 95 % lift interval contains the true +20 % in about 95 % of 200 seeds."""
        reports = [_campaign(1000 + seed, 0.10, 0.12) for seed in range(200)]

        covered = 0
        for report in reports:
            ci = report.variants[1].lift_ci
            assert ci is not None
            covered += ci[0] <= 0.2 <= ci[1]
        assert 0.91 <= covered / len(reports) <= 0.99


class TestFalsePositives:
    def test_aa_tests_are_rarely_significant(self):
        """A/A at 10 % with 20,000 per arm: p < 0.05 in at most 8 % of 400 seeds."""
        reports = [_campaign(5000 + seed, 0.10, 0.10) for seed in range(400)]

        p_values = [r.variants[1].p_value for r in reports]
        false_positives = sum(1 for p in p_values if p is not None and p < 0.05)
        assert false_positives / len(reports) <= 0.08
        # Under the null the p-values are roughly uniform, not piled up near 1 either.
        assert 0.35 <= float(np.median([p for p in p_values if p is not None])) <= 0.65

    def test_aa_probability_to_beat_is_rarely_decisive(self):
        """A/A: the probability to beat control exceeds 0.975 or falls below 0.025 rarely."""
        reports = [_campaign(9000 + seed, 0.10, 0.10) for seed in range(400)]

        probs = [r.variants[1].prob_beat_control for r in reports]
        decisive = sum(1 for p in probs if p is not None and (p > 0.975 or p < 0.025))
        assert decisive / len(reports) <= 0.08

    def test_wilson_interval_coverage(self):
        """Exact coverage of the 95 % Wilson interval, n = 500, rates 1-20 %: mean ~95 %, min > 93 %."""
        n = 500
        successes = np.arange(n + 1)
        bounds = [wilson_interval(int(x), n) for x in successes]
        coverage = []
        for rate in np.linspace(0.01, 0.20, 39):
            pmf = sps.binom.pmf(successes, n, rate)
            coverage.append(sum(p for p, (lo, hi) in zip(pmf, bounds) if lo <= rate <= hi))

        assert 0.945 <= float(np.mean(coverage)) <= 0.955
        assert min(coverage) > 0.93


class TestSampleRatioMismatch:
    def test_fair_split_is_not_flagged(self):
        """A fair 50/50 split is flagged (p < 0.001) in at most 1 % of 400 seeds."""
        reports = [_campaign(20_000 + seed, 0.10, 0.10, share=0.5) for seed in range(400)]

        flagged = sum(1 for r in reports if r.srm.mismatch)
        assert flagged <= 4

    @pytest.mark.parametrize("share", [0.52, 0.47])
    def test_skewed_split_is_flagged(self, share: float):
        """A 52/48 (or 47/53) split of 40,000 visitors is flagged in every one of 50 seeds."""
        reports = [_campaign(30_000 + seed, 0.10, 0.10, share=share) for seed in range(50)]

        assert all(r.srm.mismatch for r in reports)

    def test_uneven_weights_are_respected(self):
        """A 2:1:1 split matching its weights is not flagged; the same counts on 1:1:1 are."""
        counts = [
            VariantCounts("control", control=True, weight=2, exposed=10_040),
            VariantCounts("personalized", weight=1, exposed=4_990),
            VariantCounts("bought_together", weight=1, exposed=4_970),
        ]
        equal = [VariantCounts(c.variant_id, c.control, 1, c.exposed) for c in counts]

        assert not analyze_campaign(counts, campaign_id="recs").srm.mismatch
        assert analyze_campaign(equal, campaign_id="recs").srm.mismatch
