"""Experiment statistics: intervals, tests and the per-campaign analysis. Stdlib only.

Every function is deterministic (no random sampling) and takes counts, never raw
events. The choices, with their formulas, are documented in the README section
"Insights and statistics"; in short:

- conversion rate interval: Wilson score interval;
- p-value: two-sided two-proportion z-test with the pooled standard error;
- relative lift interval: delta method on the log of the rate ratio (Katz), with a
  0.5 continuity correction only when the variant has no conversions;
- probability to beat the control: Beta(1, 1) prior, so Beta(1 + x, 1 + n - x)
  posteriors, and Evan Miller's exact closed form, or a (skewness-corrected) normal
  approximation once every posterior parameter exceeds ``EXACT_TERMS_LIMIT``;
- sample ratio mismatch: chi-square goodness of fit against the weights, flagged
  below ``SRM_ALPHA``; the chi-square survival function is the regularized upper
  incomplete gamma function (series or continued fraction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from statistics import NormalDist

from insights.model import (
    STATUS_NOT_ENOUGH_DATA,
    STATUS_OK,
    CampaignReport,
    Interval,
    SampleRatioCheck,
    VariantCounts,
    VariantResult,
)

CONFIDENCE = 0.95
"""Level of every interval in a report."""

DEFAULT_MIN_SAMPLE = 100
"""Exposed visitors each variant needs before a campaign's comparisons are shown."""

SRM_ALPHA = 0.001
"""A sample ratio mismatch is flagged when the chi-square p-value is below this."""

EXACT_TERMS_LIMIT = 20_000
"""``prob_b_beats_a`` sums ``min(alpha_a, beta_a, alpha_b, beta_b)`` exact terms (about
10 ms for 20,000); above this many it uses a skewness-corrected normal approximation,
which is then within a few 1e-6 of the exact value, even for arms of unequal size."""

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 10_000


# -- distributions ---------------------------------------------------------------------


def normal_cdf(x: float) -> float:
    """Standard normal CDF, via ``erfc`` so the lower tail keeps its relative precision."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_sf(x: float) -> float:
    """Standard normal survival function ``1 - cdf(x)``, precise in the upper tail."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _z_for(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, not {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def regularized_gamma_q(a: float, x: float) -> float:
    """Upper regularized incomplete gamma ``Q(a, x) = Γ(a, x) / Γ(a)``.

    The series for ``P = 1 - Q`` converges fast for ``x < a + 1``; beyond that the
    continued fraction for ``Q`` (modified Lentz) does (Numerical Recipes, 6.2).
    """
    if a <= 0:
        raise ValueError(f"a must be positive, not {a!r}")
    if x < 0:
        raise ValueError(f"x must be non-negative, not {x!r}")
    if x == 0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        return 1.0 - _gamma_p_series(a, x, log_prefactor)
    return _gamma_q_continued_fraction(a, x, log_prefactor)


def _gamma_p_series(a: float, x: float, log_prefactor: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(_MAX_ITERATIONS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(log_prefactor)


def _gamma_q_continued_fraction(a: float, x: float, log_prefactor: float) -> float:
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(log_prefactor) * h


def chi2_sf(x: float, df: int) -> float:
    """Chi-square survival function: ``P(X >= x)`` for ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be at least 1, not {df!r}")
    if x <= 0:
        return 1.0
    return regularized_gamma_q(df / 2.0, x / 2.0)


# -- intervals and tests -----------------------------------------------------------------


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval for a binomial proportion.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and does not collapse to
    a point at 0 or ``trials`` successes. With no trials it is ``(0.0, 1.0)``.
    """
    _check_counts(successes, trials)
    z = _z_for(confidence)
    z2 = z * z
    spread = successes * (trials - successes) / trials if trials else 0.0
    center = (successes + z2 / 2.0) / (trials + z2)
    half = z / (trials + z2) * math.sqrt(spread + z2 / 4.0)
    # The bounds are exactly 0 and 1 at the extremes; rounding would leave 1e-17.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return (low, high)


def two_proportion_z_test(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """Two-sided z-test of ``c1/n1 == c2/n2`` with the pooled standard error.

    Returns ``(z, p)``; ``z`` is positive when the second rate is higher. When the
    pooled rate is 0 or 1 (nobody or everybody converted) there is no evidence of a
    difference: ``(0.0, 1.0)``.
    """
    _check_counts(c1, n1)
    _check_counts(c2, n2)
    if n1 == 0 or n2 == 0:
        raise ValueError("both groups need at least one trial")
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return (0.0, 1.0)
    z = (c2 / n2 - c1 / n1) / se
    return (z, min(1.0, 2.0 * normal_sf(abs(z))))


def relative_lift(
    control_successes: int,
    control_trials: int,
    successes: int,
    trials: int,
    confidence: float = CONFIDENCE,
) -> tuple[float | None, Interval | None]:
    """Relative lift ``p / p_control - 1`` and its interval.

    The interval comes from the delta method on ``log(p / p_control)`` (Katz et al.,
    1978): ``se = sqrt(1/x - 1/n + 1/x_c - 1/n_c)``, bounds ``exp(log r ± z·se) - 1``.
    Working on the log scale keeps the interval asymmetric and above -100 %, as a
    ratio's should be. When the variant has no conversions the point estimate is -1
    and the interval uses 0.5 added to both successes and 1 to both trials (Haldane's
    correction). Without control conversions the lift is undefined: ``(None, None)``.
    """
    _check_counts(control_successes, control_trials)
    _check_counts(successes, trials)
    if control_trials == 0 or trials == 0 or control_successes == 0:
        return (None, None)
    lift = (successes / trials) / (control_successes / control_trials) - 1.0
    xc, nc, x, n = float(control_successes), float(control_trials), float(successes), float(trials)
    if successes == 0:
        xc, nc, x, n = xc + 0.5, nc + 1.0, x + 0.5, n + 1.0
    log_ratio = math.log((x / n) / (xc / nc))
    se = math.sqrt(max(0.0, 1.0 / x - 1.0 / n + 1.0 / xc - 1.0 / nc))
    z = _z_for(confidence)
    return (lift, (math.expm1(log_ratio - z * se), math.expm1(log_ratio + z * se)))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _prob_exact(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """Evan Miller's closed form for ``P(p_B > p_A)``, summing ``alpha_b`` terms.

    ``sum_{i<alpha_b} B(alpha_a + i, beta_a + beta_b) /
    ((beta_b + i) B(1 + i, beta_b) B(alpha_a, beta_a))``. The first term's logarithm
    comes from log-gamma; each next one from the exact ratio of consecutive terms,
    ``(alpha_a + i)(beta_b + i) / ((alpha_a + beta_a + beta_b + i)(i + 1))``.
    """
    log_term = (
        _log_beta(alpha_a, beta_a + beta_b)
        - math.log(beta_b)
        - _log_beta(1, beta_b)
        - _log_beta(alpha_a, beta_a)
    )
    logs = [log_term]
    for i in range(alpha_b - 1):
        log_term += (
            math.log(alpha_a + i)
            + math.log(beta_b + i)
            - math.log(alpha_a + beta_a + beta_b + i)
            - math.log(i + 1)
        )
        logs.append(log_term)
    peak = max(logs)
    return min(1.0, math.exp(peak) * math.fsum(math.exp(v - peak) for v in logs))


def prob_b_beats_a(a_succ: int, a_n: int, b_succ: int, b_n: int) -> float:
    """Posterior probability that B's true rate exceeds A's.

    Each rate has a uniform Beta(1, 1) prior, so its posterior is
    Beta(1 + successes, 1 + failures); the two are independent. The exact sum has as
    many terms as the chosen parameter, so it uses whichever of four equivalent forms
    is shortest (swapping A and B, or successes and failures). When even the shortest
    exceeds ``EXACT_TERMS_LIMIT`` terms it uses the normal approximation
    ``Φ((mean_B - mean_A) / sqrt(var_A + var_B))`` with a skewness correction
    (``_prob_approx``).
    """
    _check_counts(a_succ, a_n)
    _check_counts(b_succ, b_n)
    alpha_a, beta_a = a_succ + 1, a_n - a_succ + 1
    alpha_b, beta_b = b_succ + 1, b_n - b_succ + 1
    shortest = min(alpha_a, beta_a, alpha_b, beta_b)
    if shortest > EXACT_TERMS_LIMIT:
        return _prob_approx(alpha_a, beta_a, alpha_b, beta_b)
    # P(B > A) = 1 - P(A > B) (ties have probability 0), and P(B > A) is also
    # P(1 - B < 1 - A) where 1 - p ~ Beta(beta, alpha).
    if shortest == alpha_b:
        return _prob_exact(alpha_a, beta_a, alpha_b, beta_b)
    if shortest == alpha_a:
        return max(0.0, 1.0 - _prob_exact(alpha_b, beta_b, alpha_a, beta_a))
    if shortest == beta_a:
        return _prob_exact(beta_b, alpha_b, beta_a, alpha_a)
    return max(0.0, 1.0 - _prob_exact(beta_a, alpha_a, beta_b, alpha_b))


def _prob_approx(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """Normal approximation of ``P(p_B > p_A)`` with a one-term Edgeworth correction.

    ``D = p_B - p_A`` has mean ``mu``, variance ``var`` and third cumulant ``k3`` (the
    Betas' third central moments, subtracted). ``P(D <= 0) ≈ Φ(z) - φ(z)·g·(z² - 1)/6``
    with ``z = -mu / sd`` and skewness ``g = k3 / sd³``. The correction matters when the
    arms differ in size (a 10 % holdout): there the plain normal is off by ~6e-4 at
    20,000 conversions, the corrected one by ~2e-6.
    """

    def moments(alpha: int, beta: int) -> tuple[float, float, float]:
        total = alpha + beta
        mean = alpha / total
        var = alpha * beta / (total * total * (total + 1))
        skew = 2 * (beta - alpha) * math.sqrt(total + 1) / ((total + 2) * math.sqrt(alpha * beta))
        return mean, var, skew * var**1.5

    mean_a, var_a, k3_a = moments(alpha_a, beta_a)
    mean_b, var_b, k3_b = moments(alpha_b, beta_b)
    sd = math.sqrt(var_a + var_b)
    z = -(mean_b - mean_a) / sd
    skew = (k3_b - k3_a) / sd**3
    density = math.exp(-z * z / 2.0) / math.sqrt(2.0 * math.pi)
    p_not_better = normal_cdf(z) - density * skew * (z * z - 1.0) / 6.0
    return min(1.0, max(0.0, 1.0 - p_not_better))


def chi_square_gof(
    observed: Sequence[int], expected_shares: Sequence[float]
) -> tuple[float, float]:
    """Pearson's chi-square goodness of fit: ``(chi2, p)`` with ``k - 1`` degrees of freedom.

    ``expected_shares`` are normalised to sum to 1 (weights work too) and must all be
    positive. With a single category, or no observations, there is nothing to test:
    ``(0.0, 1.0)``.
    """
    if len(observed) != len(expected_shares):
        raise ValueError("observed and expected_shares differ in length")
    if not observed:
        raise ValueError("need at least one category")
    if any(share <= 0 or not math.isfinite(share) for share in expected_shares):
        raise ValueError(f"expected shares must be positive, got {list(expected_shares)}")
    if any(count < 0 for count in observed):
        raise ValueError(f"observed counts must be non-negative, got {list(observed)}")
    total = sum(observed)
    if len(observed) == 1 or total == 0:
        return (0.0, 1.0)
    share_sum = math.fsum(expected_shares)
    chi2 = math.fsum(
        (count - total * share / share_sum) ** 2 / (total * share / share_sum)
        for count, share in zip(observed, expected_shares, strict=True)
    )
    return (chi2, chi2_sf(chi2, len(observed) - 1))


# -- campaigns ----------------------------------------------------------------------------


def sample_ratio_check(counts: Sequence[VariantCounts]) -> SampleRatioCheck:
    """Chi-square test of the exposed visitors against the variants' weights.

    Variants with weight 0 are left out (see ``SampleRatioCheck``).
    """
    weighted = [c for c in counts if c.weight > 0]
    if not weighted:
        raise ValueError("at least one variant needs a positive weight")
    total_weight = sum(c.weight for c in weighted)
    shares = tuple(c.weight / total_weight for c in weighted)
    observed = tuple(c.exposed for c in weighted)
    chi2, p_value = chi_square_gof(observed, shares)
    return SampleRatioCheck(
        variant_ids=tuple(c.variant_id for c in weighted),
        expected_shares=shares,
        observed=observed,
        chi2=chi2,
        p_value=p_value,
        mismatch=p_value < SRM_ALPHA,
    )


def _control_index(counts: Sequence[VariantCounts]) -> int:
    return next((i for i, c in enumerate(counts) if c.control), 0)


def _rate(numerator: float, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def analyze_variants(
    counts: Sequence[VariantCounts], *, min_sample: int = DEFAULT_MIN_SAMPLE
) -> tuple[tuple[VariantResult, ...], bool]:
    """Per-variant results and whether every variant reached ``min_sample``.

    The control is the first variant marked ``control``, else the first variant.
    Comparisons with the control are only filled in when every variant reached the
    minimum sample; the descriptive figures (rates, conversion interval) always are.
    """
    if not counts:
        raise ValueError("need at least one variant")
    if min_sample < 1:
        raise ValueError(f"min_sample must be at least 1, not {min_sample!r}")
    ids = [c.variant_id for c in counts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"variant ids must be unique, got {ids}")
    control = counts[_control_index(counts)]
    enough = all(c.exposed >= min_sample for c in counts)
    results = []
    for variant in counts:
        lift = lift_ci = p_value = prob = None
        if enough and variant is not control:
            lift, lift_ci = relative_lift(
                control.conversions, control.exposed, variant.conversions, variant.exposed
            )
            _, p_value = two_proportion_z_test(
                control.conversions, control.exposed, variant.conversions, variant.exposed
            )
            prob = prob_b_beats_a(
                control.conversions, control.exposed, variant.conversions, variant.exposed
            )
        results.append(
            VariantResult(
                counts=variant,
                ctr=_rate(variant.clicks, variant.exposed),
                conversion_rate=_rate(variant.conversions, variant.exposed),
                conversion_ci=wilson_interval(variant.conversions, variant.exposed),
                revenue_per_visitor=_rate(variant.revenue, variant.exposed),
                lift=lift,
                lift_ci=lift_ci,
                p_value=p_value,
                prob_beat_control=prob,
                enough_data=variant.exposed >= min_sample,
            )
        )
    return tuple(results), enough


def analyze_campaign(
    counts: Sequence[VariantCounts],
    *,
    campaign_id: str,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    by_segment: Mapping[str, Sequence[VariantCounts]] | None = None,
) -> CampaignReport:
    """The report for one campaign: per-variant figures, comparisons, sample ratio check.

    Below ``min_sample`` exposed visitors in any variant the status is
    ``"not_enough_data"`` and the comparison fields are ``None``. ``by_segment``
    gives the same counts restricted to each segment's visitors; each breakdown is
    judged against ``min_sample`` on its own.
    """
    results, enough = analyze_variants(counts, min_sample=min_sample)
    segments = None
    if by_segment is not None:
        segments = {
            segment: analyze_variants(segment_counts, min_sample=min_sample)[0]
            for segment, segment_counts in by_segment.items()
        }
    return CampaignReport(
        campaign_id=campaign_id,
        period_start=period_start,
        period_end=period_end,
        variants=results,
        srm=sample_ratio_check(counts),
        min_sample=min_sample,
        status=STATUS_OK if enough else STATUS_NOT_ENOUGH_DATA,
        by_segment=segments,
    )
