"""RulesStore on every backend: immutable versions, one active pointer, atomic
conditional publishes, rollbacks as new versions, the seed and --demo's pristine check."""

from __future__ import annotations

import json
import threading

import pytest

import decision
from server.errors import InvalidRulesError, StaleVersionError, VersionNotFoundError
from server.rules.store import SEED_AUTHOR


@pytest.fixture
def rules(storage, make_rules):
    """The storage's rules store holding the seed (1) and ``make_rules("v1")`` (2)."""
    storage.rules.publish(make_rules("v1"), comment="test rules", author="tests")
    return storage.rules


class TestSeed:
    def test_empty_store_is_seeded_with_the_default_document(self, storage):
        """A new store starts with decision.default_document() as version 1."""
        info, text = storage.rules.get()

        assert (1, SEED_AUTHOR, True) == (info.version, info.author, info.active)
        assert decision.default_document() == json.loads(text)

    def test_reopening_does_not_seed_again(self, backend, rules):
        """Opening the store again, as another process would, leaves its history alone."""
        again = backend.open()

        assert [2, 1] == [v.version for v in again.rules.list_versions()]

    def test_publish_if_pristine_replaces_only_the_seed(self, storage, make_rules):
        """--demo's publish goes into a store holding only the seed, never over real rules."""
        first = storage.rules.publish_if_pristine(make_rules("demo"))
        second = storage.rules.publish_if_pristine(make_rules("demo-again"))

        assert (2, None) == (first.version if first else None, second)


class TestPublish:
    def test_publish_creates_the_next_active_version(self, rules, make_rules):
        """Each publish stores a new version number and makes it active."""
        info = rules.publish(make_rules("v2"), comment="second", author="ana")

        assert (3, True, "second", "ana", 0) == (
            info.version,
            info.active,
            info.comment,
            info.author,
            info.restored_from,
        )
        assert 3 == rules.active_version()

    def test_publish_returns_the_compiled_ruleset(self, rules, make_rules):
        """The reloader adopts what the publish compiled instead of compiling it again."""
        info = rules.publish(make_rules("v2"))

        assert info.content_hash == info.ruleset.version

    def test_document_is_kept_exactly_as_published(self, rules):
        """get returns the published text byte for byte, whitespace included."""
        text = '{"segments":[],   "placements": [], "exclusion_groups": [], "campaigns": []}'

        info = rules.publish(text)

        assert text == rules.get(info.version)[1]

    def test_invalid_document_is_not_written(self, rules, make_rules):
        """A document with problems raises InvalidRulesError listing them; nothing changes."""
        with pytest.raises(InvalidRulesError) as info:
            rules.publish(make_rules("x").replace('"slot_0"]', '"nowhere"]'))

        assert info.value.problems
        assert [2, 1] == [v.version for v in rules.list_versions()]

    def test_stale_expected_version_is_refused(self, rules, make_rules):
        """expected_version must still be active; otherwise nothing is written."""
        rules.publish(make_rules("v2"))

        with pytest.raises(StaleVersionError) as info:
            rules.publish(make_rules("v3"), expected_version=2)

        assert (2, 3) == (info.value.expected, info.value.active)
        assert 3 == rules.active_version()

    def test_matching_expected_version_publishes(self, rules, make_rules):
        """A publish expecting the active version goes through."""
        assert 3 == rules.publish(make_rules("v2"), expected_version=2).version

    def test_concurrent_conditional_publishes_have_one_winner(self, backend, rules, make_rules):
        """Writers in separate storages (processes, deciders) expecting the same version:
        exactly one wins."""
        stores = [backend.open().rules for _ in range(4)]
        results: list[str] = []
        barrier = threading.Barrier(len(stores))

        def publish(store, i: int) -> None:
            barrier.wait()
            try:
                store.publish(make_rules(f"w{i}"), expected_version=2)
                results.append("won")
            except StaleVersionError:
                results.append("stale")

        threads = [threading.Thread(target=publish, args=(s, i)) for i, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert ["won"] + ["stale"] * 3 == sorted(results, key=lambda r: r != "won")
        assert 3 == rules.active_version()


class TestRollback:
    def test_rollback_is_a_new_version_copying_the_old_document(self, rules, make_rules):
        """Rolling back to 2 stores version 4 with version 2's document, restored_from=2."""
        rules.publish(make_rules("v2"))

        info = rules.rollback(2, comment="undo")

        assert (4, 2, "undo") == (info.version, info.restored_from, info.comment)
        assert rules.get(2)[1] == rules.get(4)[1]
        assert [4, 3, 2, 1] == [v.version for v in rules.list_versions()]

    def test_rollback_without_a_comment_says_what_it_did(self, rules, make_rules):
        """The history names the version a rollback restored."""
        rules.publish(make_rules("v2"))

        assert "rollback to version 2" == rules.rollback(2).comment

    def test_rollback_to_missing_version(self, rules):
        """Rolling back to a version that does not exist raises VersionNotFoundError."""
        with pytest.raises(VersionNotFoundError):
            rules.rollback(42)

    def test_rollback_checks_expected_version(self, rules, make_rules):
        """Rollback honours expected_version like publish."""
        rules.publish(make_rules("v2"))

        with pytest.raises(StaleVersionError):
            rules.rollback(1, expected_version=2)


class TestReads:
    def test_get_without_version_returns_the_active_one(self, rules, make_rules):
        """get() with no version answers with the active version's metadata and text."""
        rules.publish(make_rules("v2"))

        info, text = rules.get()

        assert (3, True) == (info.version, info.active)
        assert "v2" in text

    def test_get_an_older_version_is_not_active(self, rules):
        """get(n) of an older version says it is not the active one."""
        info, _ = rules.get(1)

        assert (1, False) == (info.version, info.active)

    def test_get_missing_version(self, rules):
        """get(n) for an unknown n raises VersionNotFoundError (also a LookupError)."""
        with pytest.raises(LookupError):
            rules.get(9)

    def test_list_is_newest_first_and_limited(self, rules, make_rules):
        """list_versions returns at most ``limit`` versions, newest first, active flagged."""
        for i in range(3):
            rules.publish(make_rules(f"n{i}"))

        versions = rules.list_versions(limit=3)

        assert [(5, True), (4, False), (3, False)] == [(v.version, v.active) for v in versions]

    def test_created_at_is_aware_utc(self, rules):
        """Timestamps come back timezone-aware, in UTC."""
        info, _ = rules.get()

        assert 0 == info.created_at.utcoffset().total_seconds()
