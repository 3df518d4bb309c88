"""Sticky bucketing: golden vectors, the movement rule and the distribution of buckets."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision import BUCKETS, bucket
from decision.bucketing import (
    percent_to_buckets,
    prefixed_bucket,
    variant_bounds,
    variant_index,
)

CASES = json.loads((Path(__file__).parent / "cases" / "bucketing.json").read_text("utf-8"))

units = st.text(min_size=0, max_size=40)
seeds = st.text(min_size=0, max_size=40)
weight_lists = st.lists(st.integers(0, 1000), min_size=1, max_size=6).filter(lambda w: sum(w) > 0)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Feeds each section of cases/bucketing.json to a ``<section>_case`` fixture."""
    for section in ("bucket", "variant"):
        name = f"{section}_case"
        if name in metafunc.fixturenames:
            cases = CASES[section]
            metafunc.parametrize(name, cases, ids=[_case_id(c) for c in cases])


def _case_id(case: dict[str, Any]) -> str:
    if "seed" in case:
        return f"{case['seed']}|{case['unit']}"
    return f"{case['weights']}@{case['bucket']}"


def _variants(weights: list[int]) -> list[int]:
    """The variant index of every bucket."""
    bounds = variant_bounds(weights)
    return [variant_index(bounds, b) for b in range(BUCKETS)]


def chi_square_critical(dof: int, z: float = 3.090232) -> float:
    """Upper critical value of chi-square (default p = 0.001), Wilson–Hilferty."""
    a = 2 / (9 * dof)
    return dof * (1 - a + z * math.sqrt(a)) ** 3


def chi_square(observed: list[int], expected: list[float]) -> float:
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


class TestGoldenVectors:
    def test_bucket(self, bucket_case: dict[str, Any]) -> None:
        """bucket(seed, unit) matches the pinned murmur3 multiply-and-shift value."""
        expected = bucket_case["bucket"]

        actual = bucket(bucket_case["seed"], bucket_case["unit"])

        assert expected == actual

    def test_variant(self, variant_case: dict[str, Any]) -> None:
        """A bucket falls in the pinned variant for the given weights."""
        expected = variant_case["variant"]

        actual = variant_index(variant_bounds(variant_case["weights"]), variant_case["bucket"])

        assert expected == actual


class TestBucket:
    @given(seeds, units)
    def test_in_range_and_stable(self, seed: str, unit: str) -> None:
        """Buckets are in [0, 10000) and the same on every call."""
        first = bucket(seed, unit)

        assert 0 <= first < BUCKETS
        assert first == bucket(seed, unit)

    @given(seeds, units)
    def test_prefixed_matches(self, seed: str, unit: str) -> None:
        """The hot-path variant with a precomputed prefix draws the same bucket."""
        expected = bucket(seed, unit)

        actual = prefixed_bucket(seed + ":", unit)

        assert expected == actual

    def test_uniform(self) -> None:
        """50,000 visitor ids spread over 100 bins pass chi-square at p = 0.001."""
        bins = [0] * 100
        for i in range(50_000):
            bins[bucket("uniformity:variant", f"visitor-{i}") // 100] += 1

        statistic = chi_square(bins, [500.0] * 100)

        assert statistic < chi_square_critical(99)

    def test_draws_are_independent(self) -> None:
        """The traffic and variant draws of one campaign are uncorrelated (10 x 10 table)."""
        table = [0] * 100
        for i in range(50_000):
            unit = f"visitor-{i}"
            traffic = bucket("campaign:traffic", unit) * 10 // BUCKETS
            variant = bucket("campaign:variant", unit) * 10 // BUCKETS
            table[traffic * 10 + variant] += 1

        statistic = chi_square(table, [500.0] * 100)

        assert statistic < chi_square_critical(99)

    def test_critical_value_approximation(self) -> None:
        """Wilson–Hilferty is within 1 % of the tabulated critical values at p = 0.001."""
        expected = {10: 29.588, 30: 59.703, 99: 148.230}

        actual = {dof: chi_square_critical(dof) for dof in expected}

        assert actual == pytest.approx(expected, rel=0.01)


class TestVariantBounds:
    @pytest.mark.parametrize(
        ("weights", "bounds"),
        [
            ([1], (10000,)),
            ([1, 1], (5000, 10000)),
            ([1, 1, 1], (3333, 6666, 10000)),
            ([50, 30, 20], (5000, 8000, 10000)),
            ([0, 1], (0, 10000)),
            ([1, 0, 1], (5000, 5000, 10000)),
        ],
        ids=str,
    )
    def test_cumulative_integer_bounds(self, weights: list[int], bounds: tuple[int, ...]) -> None:
        """Bounds are cumulative weight * 10000 // total, the last one 10000."""
        expected = bounds

        actual = variant_bounds(weights)

        assert expected == actual

    @pytest.mark.parametrize("weights", [[], [0], [0, 0], [1, -1]], ids=str)
    def test_rejects_unusable_weights(self, weights: list[int]) -> None:
        """Weights must be non-negative with a positive sum."""
        with pytest.raises(ValueError, match="non-negative"):
            variant_bounds(weights)

    def test_zero_weight_gets_nobody(self) -> None:
        """A variant with weight 0 owns an empty range."""
        expected = {0: 5000, 2: 5000}

        variants = _variants([1, 0, 1])
        actual = {v: variants.count(v) for v in set(variants)}

        assert expected == actual

    @settings(max_examples=50, deadline=None)
    @given(weight_lists)
    def test_shares_match_weights(self, weights: list[int]) -> None:
        """Each variant owns its weight's share of the buckets, within one bucket."""
        total = sum(weights)
        variants = _variants(weights)

        for index, weight in enumerate(weights):
            assert abs(variants.count(index) - weight * BUCKETS / total) < 1

    def test_visitor_shares_match_weights(self) -> None:
        """50,000 visitors split 50/30/20 pass chi-square at p = 0.001."""
        bounds = variant_bounds([50, 30, 20])
        counts = [0, 0, 0]
        for i in range(50_000):
            counts[variant_index(bounds, bucket("split:variant", f"v{i}"))] += 1

        statistic = chi_square(counts, [25_000.0, 15_000.0, 10_000.0])

        assert statistic < chi_square_critical(2)

    @pytest.mark.parametrize(
        ("percent", "buckets"), [(0, 0), (0.01, 1), (12.34, 1234), (100, 10000)]
    )
    def test_percent_to_buckets(self, percent: float, buckets: int) -> None:
        """Percentages with two decimals convert exactly to basis points."""
        expected = buckets

        actual = percent_to_buckets(percent)

        assert expected == actual


def _neighbour_move(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    weights = draw(
        st.lists(st.integers(0, 100), min_size=2, max_size=6).filter(lambda w: sum(w) > 0)
    )
    i = draw(st.integers(0, len(weights) - 2))
    pool = weights[i] + weights[i + 1]
    left = draw(st.integers(0, pool))
    moved = list(weights)
    moved[i], moved[i + 1] = left, pool - left
    return weights, moved, i


neighbour_moves = st.composite(_neighbour_move)()


@st.composite
def same_total_changes(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Two weight lists of equal length and total that may differ anywhere."""
    weights = draw(
        st.lists(st.integers(0, 50), min_size=2, max_size=6).filter(lambda w: sum(w) > 0)
    )
    total = sum(weights)
    cuts = sorted(
        draw(st.lists(st.integers(0, total), min_size=len(weights) - 1, max_size=len(weights) - 1))
    )
    edges = [0, *cuts, total]
    return weights, [b - a for a, b in itertools.pairwise(edges)]


class TestMovementRule:
    @settings(max_examples=100, deadline=None)
    @given(neighbour_moves)
    def test_neighbour_move_moves_only_visitors_between_boundaries(
        self, move: tuple[list[int], list[int], int]
    ) -> None:
        """Moving weight between neighbours i and i+1 moves exactly the buckets between the
        old and new boundary, between those two variants, and nobody else."""
        weights, moved, i = move
        old_bound, new_bound = variant_bounds(weights)[i], variant_bounds(moved)[i]
        low, high = sorted((old_bound, new_bound))
        expected = {b for b in range(low, high)}

        before, after = _variants(weights), _variants(moved)
        actual = {b for b in range(BUCKETS) if before[b] != after[b]}

        assert expected == actual
        assert all({before[b], after[b]} == {i, i + 1} for b in actual)

    @settings(max_examples=100, deadline=None)
    @given(same_total_changes())
    def test_variants_before_first_change_keep_their_visitors(
        self, change: tuple[list[int], list[int]]
    ) -> None:
        """With the total unchanged, variants before the first changed weight keep
        exactly their buckets."""
        weights, changed = change
        first = next((i for i, (a, b) in enumerate(zip(weights, changed)) if a != b), len(weights))
        before, after = _variants(weights), _variants(changed)

        for index in range(first):
            expected = {b for b in range(BUCKETS) if before[b] == index}

            actual = {b for b in range(BUCKETS) if after[b] == index}

            assert expected == actual

    @settings(max_examples=100, deadline=None)
    @given(weight_lists, weight_lists)
    def test_visitor_moves_only_when_a_boundary_crosses_their_bucket(
        self, weights: list[int], other: list[int]
    ) -> None:
        """A bucket changes variant exactly when some boundary moved across it."""
        n = min(len(weights), len(other))
        if sum(weights[:n]) == 0 or sum(other[:n]) == 0:
            return
        old, new = variant_bounds(weights[:n]), variant_bounds(other[:n])
        before, after = _variants(weights[:n]), _variants(other[:n])

        for b in range(0, BUCKETS, 7):
            crossed = any((o <= b) != (m <= b) for o, m in zip(old, new))

            assert crossed == (before[b] != after[b])

    @pytest.mark.parametrize(
        ("share_before", "share_after"), [(10, 50), (50, 10), (1, 99), (33, 34), (50, 50)]
    )
    @pytest.mark.parametrize("total", [100, 1000])
    def test_two_variant_ramp_moves_exactly_the_share_change(
        self, share_before: int, share_after: int, total: int
    ) -> None:
        """Ramping a 2-variant test from p% to q% moves exactly |q - p|% of the buckets."""
        scale = total // 100
        before = _variants([(100 - share_before) * scale, share_before * scale])
        after = _variants([(100 - share_after) * scale, share_after * scale])
        expected = abs(share_after - share_before) * BUCKETS // 100

        actual = sum(1 for b in range(BUCKETS) if before[b] != after[b])

        assert expected == actual

    def test_two_variant_ramp_with_a_changed_total(self) -> None:
        """With two variants even a changed total moves only |Δshare|: [1, 1] -> [3, 1]."""
        before, after = _variants([1, 1]), _variants([3, 1])
        expected = 2500

        actual = sum(1 for b in range(BUCKETS) if before[b] != after[b])

        assert expected == actual

    def test_raising_a_threshold_only_adds_visitors(self) -> None:
        """Traffic allocation is a threshold: visitors in at 30 % are still in at 50 %."""
        visitors = [f"visitor-{i}" for i in range(2000)]
        draws = {v: bucket("campaign:traffic", v) for v in visitors}

        at_30 = {v for v, b in draws.items() if b < percent_to_buckets(30)}
        at_50 = {v for v, b in draws.items() if b < percent_to_buckets(50)}

        assert at_30 < at_50
