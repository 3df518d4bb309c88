"""ProfileStore on every backend: tracking, idempotency across stores, identify merges,
attributes, the right to be forgotten, export, rebuilds, and cache invalidation."""

from __future__ import annotations

import random
import threading
from typing import Any
from datetime import timedelta

import pytest

from decision import InvalidRequestError, validate_events
from decision import profile as fold
from server.profiles.store import MISSING, TrackResult

from .conftest import NOW

SHOPPER = (
    ("s1", "session_start", 300),
    ("p1", "product_view", 299, {"sku": "A", "category": "shoes", "brand": "acme"}),
    ("c1", "add_to_cart", 298, {"sku": "A", "quantity": 1, "price": 80}),
    ("o1", "purchase", 290, {"order_id": "O-1", "value": 80, "articles": 1}),
    ("s2", "session_start", 60),
    ("c2", "add_to_cart", 59, {"sku": "B", "quantity": 2, "price": 15}),
)


@pytest.fixture
def profiles(storage):
    """The storage's profile store (its cache keeps entries 60 s: only invalidation
    makes this store's writes visible to it)."""
    return storage.profiles


class TestTrack:
    def test_profile_after_a_batch(self, profiles, events):
        """A batch's profile is the pure fold of its events."""
        batch = events(*SHOPPER)

        result = profiles.track(batch)

        assert TrackResult(6, 0) == result
        assert fold.render(fold.rebuild(batch)) == profiles.get("v-1")

    def test_unknown_visitor_is_none(self, profiles):
        """A visitor without events has no profile."""
        assert None is profiles.get("nobody")

    def test_repeated_batch_is_a_duplicate(self, profiles, events):
        """Sending a batch again stores nothing and changes nothing."""
        profiles.track(events(*SHOPPER))
        before = profiles.get("v-1")

        result = profiles.track(events(*SHOPPER))

        assert (TrackResult(0, 6), before) == (result, profiles.get("v-1"))

    def test_repeat_within_a_batch(self, profiles, events):
        """An event id twice in one batch counts once."""
        result = profiles.track(events(("s1", "session_start", 5), ("s1", "session_start", 5)))

        assert (TrackResult(1, 1), 1) == (result, profiles.get("v-1")["visits"])

    def test_an_event_is_stored_once_across_stores(self, backend, profiles, events):
        """The same event id tracked through two storages (two deciders) counts once."""
        other = backend.open(profile_cache_size=0).profiles

        first = profiles.track(events(("s1", "session_start", 5)))
        second = other.track(events(("s1", "session_start", 5)))

        assert (TrackResult(1, 0), TrackResult(0, 1)) == (first, second)
        assert 1 == other.get("v-1")["visits"]

    def test_empty_batch(self, profiles):
        """An empty batch stores nothing."""
        assert TrackResult(0, 0) == profiles.track([])


class TestConcurrency:
    def test_interleaved_batches_from_two_stores_equal_the_rebuild(self, backend, log_of):
        """Two storages on one store track one random log (identify events, repeats) in
        interleaved batches from two threads at once: no update is lost, every profile
        equals the one rebuilt from the event log, and each event is stored once."""
        log = log_of(11, 240, 6)
        rng = random.Random(5)
        batches = []
        while len(batches) == 0 or sum(map(len, batches)) < len(log):
            start = sum(map(len, batches))
            batches.append(log[start : start + rng.randrange(1, 9)])
        stores = [backend.open(profile_cache_size=0).profiles for _ in range(2)]
        results: list[TrackResult] = []
        errors: list[BaseException] = []

        def run(store, mine) -> None:
            try:
                for batch in mine:
                    results.append(store.track(batch))
                    results.append(store.track(batch[:1]))  # a retry of part of it
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(stores[0], batches[0::2])),
            threading.Thread(target=run, args=(stores[1], batches[1::2])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        ids = [f"visitor-{i}" for i in range(6)] + [f"customer-{i}" for i in range(3)]
        incremental = {visitor: stores[0].get(visitor) for visitor in ids}

        stores[1].rebuild_all(batch=2)

        assert [] == errors
        assert len(log) == sum(result.accepted for result in results)
        assert incremental == {visitor: stores[0].get(visitor) for visitor in ids}

    def test_concurrent_events_of_one_new_visitor_are_all_kept(self, backend, events):
        """Two stores creating one visitor's profile at the same moment: both count."""
        stores = [backend.open(profile_cache_size=0).profiles for _ in range(2)]
        barrier = threading.Barrier(2)

        def track(store, prefix: str) -> None:
            barrier.wait()
            for i in range(10):
                store.track(events((f"{prefix}{i}", "session_start", i), visitor="fresh"))

        threads = [threading.Thread(target=track, args=(s, p)) for s, p in zip(stores, "ab")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert 20 == stores[0].get("fresh")["visits"]


class TestIdentify:
    def test_anonymous_profile_merges_into_the_customer(self, profiles, events):
        """After identify both ids read one profile of both visitors' events, later ones too."""
        anonymous = events(*SHOPPER[:3], visitor="anon")
        known = events(*SHOPPER[3:], visitor="cust")
        identify = events(("i", "identify", 100, {"customer_id": "cust"}), visitor="anon")
        later = events(("late", "session_start", 1), visitor="anon")
        profiles.track(anonymous)
        profiles.track(known)
        assert profiles.get("anon") != profiles.get("cust")

        profiles.track(identify)
        profiles.track(later)

        expected = fold.render(fold.rebuild(anonymous + known + identify + later))
        assert expected == profiles.get("anon") == profiles.get("cust")
        exported = profiles.export_visitor("anon")
        assert ("cust", ["anon"]) == (exported["visitor_id"], exported["aliases"])

    def test_identify_in_the_same_batch(self, profiles, events):
        """Events before and after an identify in one batch all reach the customer."""
        profiles.track(
            events(
                ("a", "session_start", 30, {}, "anon"),
                ("i", "identify", 20, {"customer_id": "cust"}, "anon"),
                ("b", "session_start", 10, {}, "anon"),
                ("c", "session_start", 5, {}, "cust"),
            )
        )

        assert 3 == profiles.get("cust")["visits"] == profiles.get("anon")["visits"]

    def test_chains_resolve_to_the_end(self, profiles, events):
        """a→b then b→c: all three ids read c's profile; a and b are c's aliases."""
        profiles.track(events(("a1", "session_start", 30), visitor="a"))
        profiles.track(events(("b1", "session_start", 20), visitor="b"))
        profiles.track(events(("c1", "session_start", 10), visitor="c"))

        profiles.track(events(("ab", "identify", 5, {"customer_id": "b"}), visitor="a"))
        profiles.track(events(("bc", "identify", 4, {"customer_id": "c"}), visitor="b"))

        assert 3 == profiles.get("a")["visits"] == profiles.get("b")["visits"]
        assert profiles.get("a") == profiles.get("c")
        assert ("c", ["a", "b"]) == (
            profiles.export_visitor("a")["visitor_id"],
            profiles.export_visitor("a")["aliases"],
        )

    def test_cycles_are_ignored(self, profiles, events):
        """b→a after a→b links two ids that are already one profile: nothing changes."""
        profiles.track(events(("a1", "session_start", 30), visitor="a"))
        profiles.track(events(("ab", "identify", 5, {"customer_id": "b"}), visitor="a"))

        result = profiles.track(events(("ba", "identify", 4, {"customer_id": "a"}), visitor="b"))

        assert 1 == result.accepted
        assert ("b", ["a"]) == (
            profiles.export_visitor("a")["visitor_id"],
            profiles.export_visitor("a")["aliases"],
        )
        assert 1 == profiles.get("a")["visits"] == profiles.get("b")["visits"]

    def test_a_merge_through_another_store_is_seen(self, backend, profiles, events):
        """A visitor merged through one storage reads merged through another."""
        other = backend.open(profile_cache_size=0).profiles
        profiles.track(events(("a1", "session_start", 30), visitor="anon"))
        profiles.track(events(("c1", "session_start", 20), visitor="cust"))

        profiles.track(events(("i", "identify", 5, {"customer_id": "cust"}), visitor="anon"))

        assert 2 == other.get("anon")["visits"] == other.get("cust")["visits"]


class TestAttributes:
    def test_set_attributes_returns_the_profile(self, profiles):
        """Attributes land under ``attributes``; null removes one; rebuilds keep them."""
        profiles.set_attributes("v-1", {"tier": "gold", "country": "DE"}, NOW)

        profile = profiles.set_attributes("v-1", {"country": None}, NOW + timedelta(seconds=1))

        assert {"attributes": {"tier": "gold"}} == profile == profiles.get("v-1")
        profiles.rebuild_all()
        assert profile == profiles.get("v-1")

    def test_bad_attributes_name_the_attribute(self, profiles):
        """Problems are reported against ``attributes.<name>``, nothing is stored."""
        with pytest.raises(InvalidRequestError) as caught:
            profiles.set_attributes("v-1", {"a.b": 1}, NOW)

        assert ["attributes.a.b"] == [problem.path for problem in caught.value.problems]
        assert None is profiles.get("v-1")


class TestDelete:
    def test_nothing_mentions_a_deleted_visitor(self, backend, profiles, events):
        """Deleting by any of a person's ids removes events, aliases, the profile and
        exposures; other visitors stay."""
        profiles.track(events(*SHOPPER, visitor="anon"))
        profiles.track(events(("k1", "session_start", 10), visitor="cust"))
        profiles.track(events(("i", "identify", 5, {"customer_id": "cust"}), visitor="anon"))
        profiles.track(events(("other", "session_start", 1), visitor="keep-me"))
        assert profiles.get("cust") is not None  # cached before the delete

        deleted = profiles.delete_visitor("anon")

        assert 10 == deleted  # 8 events, 1 alias, 1 profile
        names = backend.sql("SELECT visitor_id, source_id FROM events")
        assert [("keep-me", "keep-me")] == names
        assert [] == backend.sql("SELECT * FROM aliases")
        assert None is profiles.get("cust") is profiles.get("anon")
        assert 1 == profiles.get("keep-me")["visits"]

    def test_a_delete_through_another_store_is_seen(self, backend, events):
        """A visitor deleted through one storage is gone for another (without a cache)."""
        reader = backend.open(profile_cache_size=0).profiles
        writer = backend.open().profiles
        writer.track(events(*SHOPPER))
        assert reader.get("v-1") is not None

        writer.delete_visitor("v-1")

        assert None is reader.get("v-1")

    def test_unknown_visitor_deletes_nothing(self, profiles):
        """Deleting a visitor we never saw is not an error: 0 rows."""
        assert 0 == profiles.delete_visitor("nobody")


class TestExport:
    def test_export_holds_everything(self, profiles, events):
        """Export returns the canonical id, aliases, profile and every event, replayable."""
        batch = events(*SHOPPER)
        profiles.track(batch)

        exported = profiles.export_visitor("v-1")

        expected_events = sorted(
            (event.as_dict() for event in batch), key=lambda e: (e["timestamp"], e["event_id"])
        )
        assert {
            "visitor_id": "v-1",
            "aliases": [],
            "profile": profiles.get("v-1"),
            "events": expected_events,
            "exposures": [],
            "assignments": [],
            "segment_changes": [],
        } == exported
        assert sorted(batch, key=lambda e: e.event_id) == sorted(
            validate_events(exported["events"], NOW), key=lambda e: e.event_id
        )

    def test_unknown_visitor_exports_empty(self, profiles):
        """A visitor we hold nothing about exports as empty."""
        expected = {
            "visitor_id": "nobody",
            "aliases": [],
            "profile": None,
            "events": [],
            "exposures": [],
            "assignments": [],
            "segment_changes": [],
        }

        assert expected == profiles.export_visitor("nobody")


class TestRebuild:
    def test_rebuild_equals_the_pure_fold(self, profiles, log_of):
        """Without identify, each stored profile is render(rebuild(its events))."""
        log = [event for event in log_of(7, 200, 5) if event.type != "identify"]
        for start in range(0, len(log), 7):
            profiles.track(log[start : start + 7])

        for visitor in {event.visitor_id for event in log}:
            mine = [event for event in log if event.visitor_id == visitor]
            assert fold.render(fold.rebuild(mine)) == profiles.get(visitor)

    def test_rebuild_repairs_a_damaged_profile(self, backend, profiles, events):
        """rebuild(visitor) and rebuild_all recompute a profile damaged around the API."""
        profiles.track(events(*SHOPPER))
        expected = profiles.get("v-1")
        backend.sql("UPDATE profiles SET document = '{}'")

        assert expected == profiles.rebuild("v-1")
        backend.sql("UPDATE profiles SET document = '{}'")
        assert 1 == profiles.rebuild_all()
        assert expected == profiles.get("v-1")

    def test_rebuild_all_drops_profiles_without_events(self, backend, profiles, events):
        """A profile row whose events are gone is deleted by rebuild_all."""
        profiles.track(events(*SHOPPER))
        backend.sql("DELETE FROM events")

        assert 0 == profiles.rebuild_all()
        assert None is profiles.get("v-1")


class TestCache:
    def test_own_write_is_visible_at_once(self, profiles, events):
        """A cached profile is dropped when this store writes to it (TTL 60 s here)."""
        profiles.track(events(("s1", "session_start", 10)))
        assert 1 == profiles.get("v-1")["visits"]

        profiles.track(events(("s2", "session_start", 5)))

        assert 2 == profiles.get("v-1")["visits"]

    def test_cached_miss_is_dropped_on_write(self, profiles, events):
        """An unknown visitor, cached as None, is found right after its first event."""
        assert None is profiles.get("v-1")

        profiles.track(events(("s1", "session_start", 10)))

        assert 1 == profiles.get("v-1")["visits"]

    def test_cached_alias_sees_writes_to_the_customer(self, profiles, events):
        """A profile cached under an alias shows the next event tracked for the customer."""
        profiles.track(events(("ab", "identify", 5, {"customer_id": "cust"}), visitor="anon"))
        assert "visits" not in profiles.get("anon")

        profiles.track(events(("s", "session_start", 1), visitor="cust"))

        assert 1 == profiles.get("anon")["visits"]

    def test_another_stores_write_waits_for_the_cache_entry(self, backend, profiles, events):
        """Another storage's write is not seen while this store's entry is fresh (the
        staleness bound is the cache TTL); a store without a cache sees it at once."""
        uncached = backend.open(profile_cache_size=0).profiles
        writer = backend.open().profiles
        profiles.track(events(("s1", "session_start", 10)))
        assert 1 == profiles.get("v-1")["visits"] == uncached.get("v-1")["visits"]

        writer.track(events(("s2", "session_start", 5)))

        assert (1, 2) == (profiles.get("v-1")["visits"], uncached.get("v-1")["visits"])

    def test_peek_answers_from_the_cache_or_not_at_all(self, profiles, events):
        """peek never waits: a profile read before comes from the cache; a shared
        store says MISSING for one it has not read (an embedded one may read it)."""
        profiles.track(events(("s1", "session_start", 10)))
        read = profiles.get("v-1")

        peeked = profiles.peek("v-1")
        unknown = profiles.peek("never-read")

        assert read is peeked
        assert unknown is MISSING or unknown is None


def _activity_needs(document: dict[str, Any]) -> Any:
    import decision

    return decision.compile_ruleset(document).activity


_SHOES_3_IN_7_DAYS = {
    "segments": [
        {
            "id": "shoe_browsers",
            "filter": {
                "$activity": {
                    "type": "product_view",
                    "properties": {"category": "shoes"},
                    "timestamp": {"$gte": {"$daysAgo": 7}},
                    "count": {"$gte": 3},
                }
            },
        }
    ],
    "placements": [],
    "exclusion_groups": [],
    "campaigns": [],
}


def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the back-fill did not finish in time")
        time.sleep(0.05)


class TestKeptActivity:
    VIEWS = [
        (f"pv-{i}", "product_view", 60 * 24 * i + 1, {"sku": f"S{i}", "category": "shoes"})
        for i in range(4)
    ]

    def test_folds_keep_what_the_declaration_reads(self, profiles, events):
        """With a declaration given, new events keep the activity its clauses read."""
        profiles.use_activity(_activity_needs(_SHOES_3_IN_7_DAYS))

        profiles.track(events(*self.VIEWS))

        kept = profiles.get("v-1")["activity"]
        assert 4 == len(kept["product_view"]["t"])

    def test_a_wider_declaration_is_back_filled_from_the_log(self, profiles, events):
        """Profiles folded with no declaration are completed in the background once a
        declaration reads more; the status says when it is done."""
        profiles.use_activity(_activity_needs({**_SHOES_3_IN_7_DAYS, "segments": []}))
        profiles.track(events(*self.VIEWS))
        profiles.track(events(*[(f"o-{i}", "page_view", 5) for i in range(2)], visitor="v-2"))
        before = profiles.get("v-1").get("activity", {})

        profiles.use_activity(_activity_needs(_SHOES_3_IN_7_DAYS))
        _wait_for(lambda: profiles.activity_status().complete)

        assert {} == before.get("product_view", {}) or before == {}
        assert 4 == len(profiles.get("v-1")["activity"]["product_view"]["t"])
        assert 0 == profiles.activity_status().pending

    def test_rebuild_all_keeps_the_declared_activity(self, profiles, events):
        """Rebuilding every profile folds with the declaration given."""
        needs = _activity_needs(_SHOES_3_IN_7_DAYS)
        profiles.use_activity(needs)
        profiles.track(events(*self.VIEWS))

        profiles.rebuild_all(needs=needs)

        assert 4 == len(profiles.get("v-1")["activity"]["product_view"]["t"])
