"""Sticky bucketing: a visitor's hash picks their group slot, traffic, holdout and variant.

A bucket is an integer in ``[0, BUCKETS)``, from MurmurHash3 (x86, 32 bit, unsigned)
of ``"<seed>:<unit>"`` scaled with flagd's multiply-and-shift,
``(hash * BUCKETS) >> 32``. It depends on nothing but the two strings, so a visitor
keeps their bucket across processes, restarts and releases.

Each purpose draws independently, so changing one setting never reshuffles another:

==================  ===========================  ============================================
draw                seed                         used as
==================  ===========================  ============================================
group slot          ``group:<group salt>``       which campaign of an exclusion group may show
traffic             ``<campaign salt>:traffic``  in the campaign when ``bucket < traffic``
holdout             ``<campaign salt>:holdout``  held out when ``bucket < holdout``
variant             ``<campaign salt>:variant``  the variant whose range holds the bucket
==================  ===========================  ============================================

Traffic allocation and holdout are thresholds, so raising a percentage only adds
visitors and lowering it only removes them; nobody else moves.

Variants own contiguous bucket ranges in declaration order: with weights ``w`` and
total ``W``, variant ``i`` owns ``[bounds[i-1], bounds[i])`` where
``bounds[i] = (w[0] + ... + w[i]) * BUCKETS // W`` (and ``bounds[-1]`` is 0). Hence the
movement rule when weights change:

- a visitor changes variant only when a range boundary crosses their bucket;
- moving weight between two neighbouring variants (total unchanged) moves only the
  boundary between them: exactly the visitors between the old and the new boundary
  switch, between those two variants, and nobody else moves;
- with the total unchanged, every variant before the first changed weight keeps
  exactly its visitors (its boundaries depend only on the weights up to it);
- with two variants there is a single boundary, so a ramp from share ``p`` to ``q``
  moves exactly ``|q - p|`` of the visitors, whatever the weights add up to;
- changing the total (adding a variant, raising one weight alone) rescales every
  boundary. To add a variant without reshuffling, append it and take its weight from
  the last variant, keeping the total fixed: only visitors at the top of the last
  range move, into the new variant.

Exclusion groups: the group's campaigns, in document order, own contiguous slot
ranges sized by their traffic allocations (which sum to at most 100 %). A visitor's
single group slot names at most one campaign that may show; for grouped campaigns the
slot replaces the separate traffic draw. Slots stay reserved for paused or ended
members, so pausing one campaign never moves visitors between the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import mmh3

from decision.model import BUCKETS

_hash = mmh3.hash


def bucket(seed: str, unit: str) -> int:
    """The bucket in ``[0, BUCKETS)`` of ``unit`` (a visitor id) for ``seed``."""
    return (_hash(f"{seed}:{unit}", 0, False) * BUCKETS) >> 32


def prefixed_bucket(prefix: str, unit: str) -> int:
    """``bucket(seed, unit)`` for a precomputed ``prefix = seed + ":"`` (the hot path)."""
    return (_hash(prefix + unit, 0, False) * BUCKETS) >> 32


def group_seed(group_salt: str) -> str:
    """The seed of an exclusion group's slot draw."""
    return f"group:{group_salt}"


def traffic_seed(campaign_salt: str) -> str:
    """The seed of a campaign's traffic-allocation draw."""
    return f"{campaign_salt}:traffic"


def holdout_seed(campaign_salt: str) -> str:
    """The seed of a campaign's holdout draw."""
    return f"{campaign_salt}:holdout"


def variant_seed(campaign_salt: str) -> str:
    """The seed of a campaign's variant draw."""
    return f"{campaign_salt}:variant"


def variant_bounds(weights: Sequence[int]) -> tuple[int, ...]:
    """Exclusive upper bucket of each variant's range, from integer weights.

    Weights are non-negative with a positive sum; a zero weight gives an empty range.
    """
    total = sum(weights)
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    bounds = []
    cumulative = 0
    for weight in weights:
        cumulative += weight
        bounds.append(cumulative * BUCKETS // total)
    return tuple(bounds)


def variant_index(bounds: Sequence[int], value: int) -> int:
    """Index of the variant whose range holds bucket ``value``."""
    for index, upper in enumerate(bounds):
        if value < upper:
            return index
    raise ValueError(f"bucket {value} is outside [0, {BUCKETS})")


def percent_to_buckets(percent: float) -> int:
    """A percentage with at most two decimals, in buckets (basis points)."""
    return round(percent * BUCKETS / 100)
