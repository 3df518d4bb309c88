"""What the load tester sends: the Zipf sampler and the Decide and Track payloads."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loadtest.workload import (
    TrackBatches,
    WorkloadSpec,
    ZipfSampler,
    call_source,
    decide_requests,
    seed_batches,
    visitor_id,
)
from protos import decisioning_pb2 as pb


class TestZipfSampler:
    def test_probabilities_follow_one_over_rank_to_the_s(self):
        """With s=1 over 3 ranks, P(k) is (1/k) / (1 + 1/2 + 1/3): 6/11, 3/11, 2/11."""
        sampler = ZipfSampler(3, s=1.0)

        assert [6 / 11, 3 / 11, 2 / 11] == pytest.approx(sampler.probabilities)

    @pytest.mark.parametrize(
        ("u", "rank"),
        [
            (0.0, 1),
            (0.5, 1),
            (6 / 11 + 1e-9, 2),
            (9 / 11 - 1e-9, 2),
            (9 / 11 + 1e-9, 3),
            (0.9999, 3),
        ],
    )
    def test_uniform_numbers_map_to_ranks_through_the_cdf(self, u: float, rank: int):
        """A uniform number picks the first rank whose cumulative probability exceeds it."""
        sampler = ZipfSampler(3, s=1.0)

        assert rank == sampler.rank_for(u)

    def test_s_zero_is_uniform(self):
        """s=0 gives every rank the same probability."""
        sampler = ZipfSampler(4, s=0.0)

        assert [0.25] * 4 == pytest.approx(sampler.probabilities)

    def test_draws_are_deterministic_and_skewed(self):
        """The same seed draws the same ranks; rank 1 is the most frequent, by far."""
        sampler = ZipfSampler(1000, s=1.1)
        rng = random.Random(7)
        draws = [sampler.sample(rng) for _ in range(5000)]
        again = random.Random(7)
        counts = Counter(draws)

        assert draws[:50] == [sampler.sample(again) for _ in range(50)]
        assert 1 == counts.most_common(1)[0][0]
        assert counts[1] > 5 * counts.get(10, 0) > 0

    @pytest.mark.parametrize(("n", "s"), [(0, 1.0), (10, -0.5)])
    def test_bad_parameters_are_refused(self, n: int, s: float):
        """An empty population or a negative exponent raises ValueError."""
        with pytest.raises(ValueError):
            ZipfSampler(n, s)


class TestDecideRequests:
    def test_requests_have_placements_in_range_and_a_storefront_context(self):
        """Every request asks for 1-4 distinct known placements with device, country and
        page type in its context (and a category on category and product pages)."""
        spec = WorkloadSpec(visitors=50, placements_per_call=(1, 5))
        requests = [pb.DecideRequest.FromString(b) for b in decide_requests(spec, 3, 200)]

        assert all(1 <= len(r.placements) <= 4 for r in requests)
        assert all(len(set(r.placements)) == len(r.placements) for r in requests)
        assert all({"device", "country", "page_type"} <= set(r.context.fields) for r in requests)
        assert all(
            ("category" in r.context.fields)
            == (r.context.fields["page_type"].string_value in ("category", "product"))
            for r in requests
        )
        assert {len(r.placements) for r in requests} == {1, 2, 3, 4}

    def test_visitors_come_from_the_population(self):
        """Visitor ids are loadtest-visitor-1..N, and the same seed gives the same requests."""
        spec = WorkloadSpec(visitors=20)
        pool = decide_requests(spec, 5, 100)
        ids = {pb.DecideRequest.FromString(b).visitor_id for b in pool}

        assert ids <= {visitor_id(k) for k in range(1, 21)}
        assert all(i.startswith("loadtest-") for i in ids)
        assert pool == decide_requests(spec, 5, 100)

    def test_a_load_that_may_not_write_sends_previews(self):
        """writes=False makes every Decide a preview; writes=True (the default) none."""
        read_only = WorkloadSpec(writes=False, track_ratio=0.0)
        requests = [pb.DecideRequest.FromString(b) for b in decide_requests(read_only, 1, 50)]
        recorded = [pb.DecideRequest.FromString(b) for b in decide_requests(WorkloadSpec(), 1, 50)]

        assert {True} == {r.preview for r in requests}
        assert {False} == {r.preview for r in recorded}

    def test_a_load_that_may_not_write_refuses_track_calls(self):
        """A Track ratio above 0 contradicts writes=False."""
        with pytest.raises(ValueError, match="no Track calls"):
            WorkloadSpec(writes=False, track_ratio=0.1)

    def test_a_fixed_placement_count(self):
        """placements_per_call (3, 3) asks for exactly three placements every time."""
        spec = WorkloadSpec(placements_per_call=(3, 3))
        requests = [pb.DecideRequest.FromString(b) for b in decide_requests(spec, 1, 50)]

        assert {3} == {len(r.placements) for r in requests}


class TestTrackBatches:
    def test_every_batch_has_new_event_ids(self):
        """Event ids never repeat across batches: the server would count them duplicates."""
        batches = TrackBatches(WorkloadSpec(track_batch=5), seed=1, prefix="t", templates=2)
        ids = [
            event.event_id
            for _ in range(6)
            for event in pb.TrackRequest.FromString(batches.next()).events
        ]

        assert 30 == len(ids) == len(set(ids))

    def test_seed_batches_cover_every_visitor(self):
        """Seeding gives each of the N visitors events, in batches of at most 500."""
        requests = [pb.TrackRequest.FromString(b) for b in seed_batches(400)]
        visitors = {event.visitor_id for r in requests for event in r.events}

        assert {visitor_id(k) for k in range(1, 401)} == visitors
        assert all(len(r.events) <= 503 for r in requests)

    def test_the_mix_follows_the_track_ratio(self):
        """About track_ratio of the calls are Track calls."""
        next_call = call_source(WorkloadSpec(visitors=10, track_ratio=0.25), seed=2, prefix="m")
        names = Counter(next_call().name for _ in range(2000))

        assert 400 < names["Track"] < 600
        assert 2000 == names["Track"] + names["Decide"]
