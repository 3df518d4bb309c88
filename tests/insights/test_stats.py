"""The statistics against textbook values and scipy (a test-only dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from insights import stats
from insights.stats import (
    chi2_sf,
    chi_square_gof,
    normal_cdf,
    normal_sf,
    prob_b_beats_a,
    regularized_gamma_q,
    relative_lift,
    two_proportion_z_test,
    wilson_interval,
)


class TestNormal:
    @pytest.mark.parametrize("x", [-12.0, -5.0, -1.96, -0.5, 0.0, 0.5, 1.0, 1.959964, 4.0, 9.0])
    def test_cdf_and_sf_match_scipy(self, x: float):
        """The normal CDF and survival function match scipy, tails included (relative)."""
        assert sps.norm.cdf(x) == pytest.approx(normal_cdf(x), rel=1e-12, abs=0)
        assert sps.norm.sf(x) == pytest.approx(normal_sf(x), rel=1e-12, abs=0)

    def test_textbook_quantile(self):
        """Φ(1.959964) is 0.975, the two-sided 95 % point of every textbook table."""
        assert 0.975 == pytest.approx(normal_cdf(1.959964), abs=1e-7)


class TestIncompleteGamma:
    @pytest.mark.parametrize("a", [0.5, 1.0, 2.5, 7.0, 50.0, 1000.0])
    @pytest.mark.parametrize("ratio", [0.01, 0.3, 0.9, 1.0, 1.1, 2.0, 5.0])
    def test_matches_scipy(self, a: float, ratio: float):
        """Q(a, x) matches scipy on both sides of the series / continued-fraction switch."""
        x = a * ratio

        assert sps.gamma.sf(x, a) == pytest.approx(regularized_gamma_q(a, x), rel=1e-9, abs=1e-300)

    def test_zero(self):
        """Q(a, 0) is 1."""
        assert 1.0 == regularized_gamma_q(3.0, 0.0)

    @pytest.mark.parametrize(("a", "x"), [(0.0, 1.0), (-1.0, 1.0), (1.0, -0.5)])
    def test_rejects_out_of_domain(self, a: float, x: float):
        """a must be positive and x non-negative."""
        with pytest.raises(ValueError):
            regularized_gamma_q(a, x)


class TestChiSquare:
    @pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 100])
    @pytest.mark.parametrize("x", [0.001, 0.5, 3.84, 10.83, 25.0, 80.0, 300.0])
    def test_sf_matches_scipy(self, df: int, x: float):
        """chi2_sf matches scipy.stats.chi2.sf, far tail included."""
        assert sps.chi2.sf(x, df) == pytest.approx(chi2_sf(x, df), rel=1e-9, abs=1e-300)

    @pytest.mark.parametrize(
        ("x", "df", "p"), [(3.841, 1, 0.05), (10.828, 1, 0.001), (5.991, 2, 0.05)]
    )
    def test_textbook_critical_values(self, x: float, df: int, p: float):
        """The critical values printed in chi-square tables give their significance level."""
        assert p == pytest.approx(chi2_sf(x, df), rel=1e-3)

    @pytest.mark.parametrize(
        ("observed", "weights"),
        [
            ([100, 120, 80], [1, 1, 1]),
            ([5030, 4970], [1, 1]),
            ([2100, 1000, 950], [2, 1, 1]),
            ([10, 0, 3], [0.5, 0.25, 0.25]),
        ],
    )
    def test_gof_matches_scipy(self, observed: list[int], weights: list[float]):
        """chi_square_gof matches scipy.stats.chisquare with expected = total x share."""
        total = sum(observed)
        expected = [total * w / sum(weights) for w in weights]
        reference = sps.chisquare(observed, expected)

        chi2, p = chi_square_gof(observed, weights)

        assert reference.statistic == pytest.approx(chi2, rel=1e-12)
        assert reference.pvalue == pytest.approx(p, rel=1e-9)

    def test_single_category_or_no_data(self):
        """With one category or no observations there is nothing to test."""
        assert (0.0, 1.0) == chi_square_gof([42], [1.0])
        assert (0.0, 1.0) == chi_square_gof([0, 0], [1, 1])

    @pytest.mark.parametrize(
        ("observed", "shares"), [([1, 2], [1.0]), ([], []), ([1, 2], [1.0, 0.0]), ([-1, 2], [1, 1])]
    )
    def test_rejects_bad_input(self, observed: list[int], shares: list[float]):
        """Mismatched lengths, no categories, zero shares and negative counts are errors."""
        with pytest.raises(ValueError):
            chi_square_gof(observed, shares)


class TestWilson:
    @pytest.mark.parametrize(
        ("successes", "trials", "low", "high"),
        [
            # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3.
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ],
    )
    def test_newcombe_table(self, successes: int, trials: int, low: float, high: float):
        """The Wilson interval reproduces Newcombe's published values to 4 decimals."""
        actual = wilson_interval(successes, trials)

        assert (low, high) == pytest.approx(actual, abs=5e-5)

    @pytest.mark.parametrize(
        ("successes", "trials"), [(0, 1), (3, 7), (50, 1000), (999, 1000), (29, 29)]
    )
    @pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
    def test_matches_scipy(self, successes: int, trials: int, confidence: float):
        """Matches scipy's binomtest(...).proportion_ci(method="wilson") at several levels."""
        ci = sps.binomtest(successes, trials).proportion_ci(confidence, method="wilson")

        assert (ci.low, ci.high) == pytest.approx(
            wilson_interval(successes, trials, confidence), abs=1e-12
        )

    def test_extremes_are_exact(self):
        """No successes gives a lower bound of exactly 0, all successes an upper bound of 1."""
        assert 0.0 == wilson_interval(0, 500)[0]
        assert 1.0 == wilson_interval(500, 500)[1]

    def test_no_trials_is_the_whole_range(self):
        """Without trials nothing is known: (0, 1)."""
        assert (0.0, 1.0) == wilson_interval(0, 0)

    @pytest.mark.parametrize(("successes", "trials"), [(-1, 10), (11, 10), (0, -1)])
    def test_rejects_impossible_counts(self, successes: int, trials: int):
        """Negative counts and more successes than trials are errors."""
        with pytest.raises(ValueError):
            wilson_interval(successes, trials)

    @pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
    def test_rejects_bad_confidence(self, confidence: float):
        """The confidence level is strictly between 0 and 1."""
        with pytest.raises(ValueError):
            wilson_interval(1, 2, confidence)


class TestZTest:
    @pytest.mark.parametrize(
        "counts",
        [(100, 1000, 130, 1000), (45, 500, 30, 480), (1, 10, 9, 10), (2000, 20000, 2100, 19500)],
    )
    def test_matches_uncorrected_chi_square(self, counts: tuple[int, int, int, int]):
        """z² and p equal scipy's 2x2 chi-square without Yates' correction."""
        c1, n1, c2, n2 = counts
        table = [[c1, n1 - c1], [c2, n2 - c2]]
        chi2, p_ref, _, _ = sps.chi2_contingency(table, correction=False)

        z, p = two_proportion_z_test(c1, n1, c2, n2)

        assert chi2 == pytest.approx(z * z, rel=1e-10)
        assert p_ref == pytest.approx(p, rel=1e-9)

    def test_textbook_example(self):
        """10 % vs 13 % on 1,000 each: pooled p = 0.115, z = 2.1027, p = 0.0355."""
        z, p = two_proportion_z_test(100, 1000, 130, 1000)

        assert 2.1027 == pytest.approx(z, abs=1e-4)
        assert 0.0355 == pytest.approx(p, abs=1e-4)

    def test_sign_follows_the_second_group(self):
        """z is positive when the second rate is higher and the test is symmetric in p."""
        z_up, p_up = two_proportion_z_test(10, 100, 20, 100)
        z_down, p_down = two_proportion_z_test(20, 100, 10, 100)

        assert z_up > 0 > z_down
        assert p_up == p_down

    @pytest.mark.parametrize("counts", [(0, 50, 0, 70), (50, 50, 70, 70)])
    def test_no_variance_is_no_evidence(self, counts: tuple[int, int, int, int]):
        """Nobody (or everybody) converting in both groups gives z = 0, p = 1."""
        assert (0.0, 1.0) == two_proportion_z_test(*counts)

    def test_needs_trials(self):
        """A group without trials cannot be tested."""
        with pytest.raises(ValueError):
            two_proportion_z_test(0, 0, 1, 10)


class TestLift:
    def test_point_and_interval(self):
        """10 % -> 12 %: lift +20 %, interval exp(log 1.2 ± 1.96·se) - 1 (Katz)."""
        se = math.sqrt(1 / 120 - 1 / 1000 + 1 / 100 - 1 / 1000)
        z = sps.norm.ppf(0.975)
        expected_ci = (1.2 * math.exp(-z * se) - 1, 1.2 * math.exp(z * se) - 1)

        lift, ci = relative_lift(100, 1000, 120, 1000)

        assert 0.2 == pytest.approx(lift)
        assert ci is not None
        assert expected_ci == pytest.approx(ci, rel=1e-12)

    def test_interval_is_asymmetric_and_above_minus_one(self):
        """On the log scale the interval stretches upwards and never reaches -100 %."""
        lift, ci = relative_lift(10, 200, 4, 200)

        assert lift is not None and ci is not None
        assert -1.0 < ci[0] < lift < ci[1]
        assert ci[1] - lift > lift - ci[0]

    def test_variant_without_conversions(self):
        """No variant conversions: lift -100 %, a finite interval from Haldane's correction."""
        lift, ci = relative_lift(100, 1000, 0, 1000)

        assert -1.0 == lift
        assert ci is not None
        assert -1.0 < ci[0] < ci[1] < 0.0

    def test_control_without_conversions_is_undefined(self):
        """Lift over a control that never converts is undefined."""
        assert (None, None) == relative_lift(0, 1000, 5, 1000)

    def test_everybody_converts(self):
        """Everybody converting in both arms: no lift, a zero-width interval."""
        assert (0.0, (0.0, 0.0)) == relative_lift(50, 50, 80, 80)


def _beats_by_integration(a_succ: int, a_n: int, b_succ: int, b_n: int) -> float:
    """P(p_B > p_A) = ∫ f_B(p) F_A(p) dp for the Beta(1 + x, 1 + n - x) posteriors."""
    post_a = sps.beta(a_succ + 1, a_n - a_succ + 1)
    post_b = sps.beta(b_succ + 1, b_n - b_succ + 1)
    lo = min(post_a.ppf(1e-12), post_b.ppf(1e-12))
    hi = max(post_a.isf(1e-12), post_b.isf(1e-12))
    value, _ = integrate.quad(lambda p: post_b.pdf(p) * post_a.cdf(p), lo, hi, limit=500)
    return float(value)


class TestProbBeats:
    @pytest.mark.parametrize(
        "counts",
        [
            (10, 100, 15, 100),
            (0, 10, 0, 10),
            (0, 10, 3, 10),
            (5, 50, 60, 60),
            (200, 2000, 260, 2000),
            (1900, 2000, 1880, 2000),  # high rates: the failures form is the short one
            (120, 1000, 100, 1000),
            (2000, 20000, 2400, 20000),
        ],
    )
    def test_matches_numerical_integration(self, counts: tuple[int, int, int, int]):
        """The closed form agrees with integrating the posteriors numerically."""
        assert _beats_by_integration(*counts) == pytest.approx(prob_b_beats_a(*counts), abs=1e-9)

    def test_matches_monte_carlo(self):
        """A seeded Monte Carlo of 400,000 posterior draws agrees within its error."""
        rng = np.random.default_rng(20260601)
        draws_a = rng.beta(1 + 48, 1 + 452, size=400_000)
        draws_b = rng.beta(1 + 63, 1 + 437, size=400_000)

        assert float(np.mean(draws_b > draws_a)) == pytest.approx(
            prob_b_beats_a(48, 500, 63, 500), abs=3e-3
        )

    def test_equal_data_is_a_coin_flip(self):
        """Identical data in both arms gives exactly one half."""
        assert 0.5 == pytest.approx(prob_b_beats_a(37, 400, 37, 400), abs=1e-12)

    @pytest.mark.parametrize(
        "counts", [(10, 100, 15, 100), (3, 1000, 9, 800), (700, 900, 650, 900)]
    )
    def test_complement(self, counts: tuple[int, int, int, int]):
        """P(B > A) + P(A > B) = 1."""
        a, an, b, bn = counts

        assert 1.0 == pytest.approx(prob_b_beats_a(a, an, b, bn) + prob_b_beats_a(b, bn, a, an))

    def test_normal_approximation_above_the_limit(self):
        """Above EXACT_TERMS_LIMIT terms the normal approximation is within 1e-5."""
        counts = (30_000, 100_000, 30_500, 100_000)
        assert min(counts) > stats.EXACT_TERMS_LIMIT

        assert _beats_by_integration(*counts) == pytest.approx(prob_b_beats_a(*counts), abs=1e-5)

    @pytest.mark.parametrize(
        "counts",
        [
            (20_001, 10_000_000, 180_500, 90_000_000),  # 10 % holdout, 0.2 % conversion
            (20_001, 10_000_000, 182_009, 90_000_000),
            (25_000, 10_000_000, 230_000, 90_000_000),
            (20_001, 40_002, 20_001, 41_002),
        ],
    )
    def test_approximation_with_unequal_arms(self, counts: tuple[int, int, int, int]):
        """With arms of very different size the skewness correction keeps it within 1e-5
        of the exact sum (the plain normal is off by up to 6e-4 here)."""
        a, an, b, bn = counts
        exact = stats._prob_exact(a + 1, an - a + 1, b + 1, bn - b + 1)

        assert exact == pytest.approx(prob_b_beats_a(*counts), abs=1e-5)

    def test_exact_form_just_below_the_limit(self):
        """Just below the limit the exact form is used and is still accurate."""
        counts = (19_000, 60_000, 19_200, 60_000)

        assert _beats_by_integration(*counts) == pytest.approx(prob_b_beats_a(*counts), abs=1e-8)
