"""The SQLite profile store on a real file: durability, atomic batches, idempotency,
identify merges, the right to be forgotten, export, rebuilds and cache coherence."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision import NO_ACTIVITY, Event, InvalidRequestError, validate_events
from decision import profile as fold
from protos import decisioning_pb2 as pb
from server.profiles import sqlite as profile_store
from server.profiles.sqlite import SQLiteProfileStore, TrackResult

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def events(*specs: tuple[Any, ...], visitor: str = "v-1") -> list[Event]:
    """Validated events from ``(event_id, type, minutes_before_now, properties)`` specs;
    a spec may end with a visitor id of its own."""
    raw = []
    for spec in specs:
        event_id, kind, minutes = spec[:3]
        properties = spec[3] if len(spec) > 3 else {}
        raw.append(
            {
                "event_id": event_id,
                "visitor_id": spec[4] if len(spec) > 4 else visitor,
                "type": kind,
                "timestamp": NOW - timedelta(minutes=minutes),
                "properties": properties,
            }
        )
    return validate_events(raw, NOW)


def all_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the file, by table name."""
    with sqlite3.connect(path) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in tables}


@pytest.fixture
def profile_db(tmp_path: Path) -> Path:
    """Where a test's profile store lives."""
    return tmp_path / "profiles.db"


@pytest.fixture
def profiles(profile_db: Path) -> Iterator[SQLiteProfileStore]:
    """An open profile store with a 60 s cache (only invalidation makes writes visible)."""
    with SQLiteProfileStore(profile_db, cache_ttl=60) as opened:
        yield opened


SHOPPER = (
    ("s1", "session_start", 300),
    ("p1", "product_view", 299, {"sku": "A", "category": "shoes", "brand": "acme"}),
    ("c1", "add_to_cart", 298, {"sku": "A", "quantity": 1, "price": 80}),
    ("o1", "purchase", 290, {"order_id": "O-1", "value": 80, "articles": 1}),
    ("s2", "session_start", 60),
    ("c2", "add_to_cart", 59, {"sku": "B", "quantity": 2, "price": 15}),
)


class TestTrack:
    def test_profile_after_a_batch(self, profiles: SQLiteProfileStore):
        """A tracked batch is folded into the visitor's profile at once."""
        batch = events(*SHOPPER)
        expected = fold.render(fold.rebuild(batch))

        result = profiles.track(batch)

        assert TrackResult(accepted=6, duplicates=0) == result
        assert expected == profiles.get("v-1")
        assert 2 == profiles.get("v-1")["visits"]

    def test_unknown_visitor_is_none(self, profiles: SQLiteProfileStore):
        """A visitor without events has no profile."""
        assert None is profiles.get("nobody")

    def test_acknowledged_batch_survives_reopening(self, profile_db: Path):
        """Whatever track acknowledged is there after the store is reopened."""
        with SQLiteProfileStore(profile_db) as first:
            first.track(events(*SHOPPER))
            expected = first.get("v-1")

        with SQLiteProfileStore(profile_db) as second:
            assert expected == second.get("v-1")
            assert 6 == len(second.export_visitor("v-1")["events"])

    def test_acknowledged_batch_survives_a_killed_process(self, profile_db: Path):
        """A process killed right after track returned loses nothing it acknowledged."""
        script = (
            "import os, signal, sys\n"
            "from datetime import UTC, datetime\n"
            "from decision import validate_events\n"
            "from server.profiles.sqlite import SQLiteProfileStore\n"
            "store = SQLiteProfileStore(sys.argv[1])\n"
            "now = datetime(2026, 7, 1, tzinfo=UTC)\n"
            "raw = [{'event_id': f'k{i}', 'visitor_id': f'v{i % 7}', 'type': 'session_start',"
            " 'timestamp': now} for i in range(100)]\n"
            "print(store.track(validate_events(raw, now)).accepted, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(profile_db)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "100" == done.stdout.strip(), done.stderr

        with SQLiteProfileStore(profile_db) as reopened:
            visits = [reopened.get(f"v{i}")["visits"] for i in range(7)]

        assert [15, 15, 14, 14, 14, 14, 14] == visits

    def test_durable_settings(self, profiles: SQLiteProfileStore):
        """The writer runs WAL with synchronous=FULL: commits survive power loss."""
        db = profiles._db  # the writing connection's settings are what matter
        expected = ("wal", 2, 1)

        actual = (
            db.execute("PRAGMA journal_mode").fetchone()[0],
            db.execute("PRAGMA synchronous").fetchone()[0],
            db.execute("PRAGMA secure_delete").fetchone()[0],
        )

        assert expected == actual

    def test_rejected_batch_stores_nothing(self, profiles: SQLiteProfileStore, profile_db: Path):
        """A batch with one bad event fails validation whole: no event reaches the store."""
        raw = [event.as_dict() for event in events(*SHOPPER)]
        raw[3]["properties"]["value"] = -1

        with pytest.raises(InvalidRequestError):
            profiles.track(validate_events(raw, NOW))

        rows = all_rows(profile_db)
        assert {"events", "aliases", "profiles", "exposures"} <= rows.keys()
        assert {table: [] for table in rows} == rows

    def test_failing_batch_rolls_back(
        self, profiles: SQLiteProfileStore, profile_db: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """An error halfway through a batch leaves neither its events nor profiles."""
        profiles.track(events(("first", "session_start", 500)))
        before = all_rows(profile_db)
        real_apply = fold.apply

        def failing(state: dict[str, Any], event: Event, needs: Any = NO_ACTIVITY) -> None:
            if event.event_id == "o1":
                raise RuntimeError("boom")
            real_apply(state, event, needs)

        monkeypatch.setattr("server.profiles.folding.apply", failing)

        with pytest.raises(RuntimeError, match="boom"):
            profiles.track(events(*SHOPPER))

        assert before == all_rows(profile_db)

    def test_repeated_batch_is_a_duplicate(self, profiles: SQLiteProfileStore, profile_db: Path):
        """Sending a batch again changes nothing and counts every event as a duplicate."""
        profiles.track(events(*SHOPPER))
        before = all_rows(profile_db)

        result = profiles.track(events(*SHOPPER[2:], ("new", "page_view", 1)))

        assert TrackResult(accepted=1, duplicates=4) == result
        assert len(before["events"]) + 1 == len(all_rows(profile_db)["events"])

    def test_duplicates_in_every_insert_statement(self, profiles: SQLiteProfileStore):
        """A batch longer than one INSERT statement, with known events in each part,
        stores exactly its new events."""
        specs = [(f"e{i}", "session_start", 600 - i) for i in range(400)]
        profiles.track(events(*specs[::2]))

        result = profiles.track(events(*specs))

        assert TrackResult(200, 200) == result
        assert 400 == profiles.get("v-1")["visits"]
        assert 400 == len(all_rows(profiles.path)["events"])

    def test_repeat_within_a_batch(self, profiles: SQLiteProfileStore):
        """An event twice in one batch is stored and counted once."""
        result = profiles.track(events(("s", "session_start", 5), ("s", "session_start", 5)))

        assert TrackResult(accepted=1, duplicates=1) == result
        assert 1 == profiles.get("v-1")["visits"]

    def test_known_order_id_counts_once(self, profiles: SQLiteProfileStore):
        """A purchase resent under a new event id does not count as another order."""
        purchase = {"order_id": "O-9", "value": 10, "articles": 1}
        profiles.track(events(("a", "purchase", 50, purchase)))

        profiles.track(events(("b", "purchase", 40, purchase)))

        assert 1 == profiles.get("v-1")["customer_segment"]["outbounds_number_total"]

    def test_batch_for_many_visitors(self, profiles: SQLiteProfileStore):
        """One batch may touch many visitors; each gets its own profile."""
        batch = events(*[(f"e{i}", "session_start", i, {}, f"v{i % 3}") for i in range(9)])

        profiles.track(batch)

        assert [3, 3, 3] == [profiles.get(f"v{i}")["visits"] for i in range(3)]

    def test_empty_batch(self, profiles: SQLiteProfileStore):
        """Tracking nothing is fine and stores nothing."""
        assert TrackResult(0, 0) == profiles.track([])


def _outcome(store: SQLiteProfileStore, batch: list[Event]) -> Any:
    """``store.track(batch)``, or the exception it raised."""
    try:
        return store.track(batch)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return exc


def track_in_threads(store: SQLiteProfileStore, batches: list[list[Event]]) -> list[Any]:
    """Track each batch from its own thread, all queued while the store's write lock is
    held, so one group commit takes them together. Returns results or exceptions."""
    import threading

    outcomes: list[Any] = [None] * len(batches)

    def run(index: int) -> None:
        try:
            outcomes[index] = store.track(batches[index])
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    with store._write_lock:  # hold commits back until every batch is queued
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(store._queue) < len(batches) and time.monotonic() < deadline:
            time.sleep(0.005)
    for thread in threads:
        thread.join(10)
    return outcomes


class TestGroupCommit:
    def test_queued_batches_commit_together(self, profiles: SQLiteProfileStore):
        """Batches queued behind the write lock commit together, each with its own result."""
        profiles.track(events(("pre", "session_start", 20), visitor="g0"))
        batches = [
            events((f"s{i}", "session_start", 10), (f"p{i}", "page_view", 9), visitor=f"g{i}")
            for i in range(6)
        ] + [events(("pre", "session_start", 20), visitor="g0")]

        outcomes = track_in_threads(profiles, batches)

        assert [TrackResult(2, 0)] * 6 + [TrackResult(0, 1)] == outcomes
        assert [2, 1, 1, 1, 1, 1] == [profiles.get(f"g{i}")["visits"] for i in range(6)]

    def test_failing_batch_fails_alone(
        self, profiles: SQLiteProfileStore, monkeypatch: pytest.MonkeyPatch
    ):
        """A failing batch in a group commit rolls back alone; the others commit."""
        real_apply = fold.apply

        def failing(state: dict[str, Any], event: Event, needs: Any = NO_ACTIVITY) -> None:
            if event.event_id == "bad":
                raise RuntimeError("boom")
            real_apply(state, event, needs)

        monkeypatch.setattr("server.profiles.folding.apply", failing)
        batches = [
            events(("a", "session_start", 10), visitor="ok-1"),
            events(("x", "session_start", 10), ("bad", "page_view", 5), visitor="broken"),
            events(("b", "session_start", 10), visitor="ok-2"),
        ]

        outcomes = track_in_threads(profiles, batches)

        assert TrackResult(1, 0) == outcomes[0] == outcomes[2]
        assert isinstance(outcomes[1], RuntimeError)
        stored = {row[1] for row in all_rows(profiles.path)["events"]}
        assert {"a", "b"} == stored
        assert None is profiles.get("broken")

    @pytest.mark.parametrize("joiner_fails", [False, True], ids=["ok", "failing"])
    def test_batch_queued_during_a_commit_joins_it(
        self, profiles: SQLiteProfileStore, monkeypatch: pytest.MonkeyPatch, joiner_fails: bool
    ):
        """A batch queued while a group is tracked joins that group's transaction; if
        it fails, it fails alone."""
        real_track = SQLiteProfileStore._track
        real_apply = fold.apply
        groups: list[int] = []
        joiner: list[Any] = []

        def track_then_queue(self: SQLiteProfileStore, unique: Any, touched: set[str]) -> int:
            if not joiner:  # the first batch: queue another before it commits
                batch = events(("j", "session_start", 5), ("bad", "page_view", 4), visitor="j")
                thread = threading.Thread(target=lambda: joiner.append(_outcome(self, batch)))
                joiner.append(thread)
                thread.start()
                while not self._queue:
                    time.sleep(0.001)
            return real_track(self, unique, touched)

        def failing(state: dict[str, Any], event: Event, needs: Any = NO_ACTIVITY) -> None:
            if joiner_fails and event.event_id == "bad":
                raise RuntimeError("boom")
            real_apply(state, event, needs)

        real_group = SQLiteProfileStore._commit_group
        monkeypatch.setattr(SQLiteProfileStore, "_track", track_then_queue)
        monkeypatch.setattr(
            SQLiteProfileStore,
            "_commit_group",
            lambda self, group: groups.append(len(group)) or real_group(self, group),
        )
        monkeypatch.setattr("server.profiles.folding.apply", failing)

        first = profiles.track(events(("f", "session_start", 10), visitor="first"))
        joiner[0].join()

        assert TrackResult(1, 0) == first
        assert [1] == groups  # one transaction: the joiner never took the lock itself
        if joiner_fails:
            assert isinstance(joiner[1], RuntimeError)
            assert None is profiles.get("j")
        else:
            assert TrackResult(2, 0) == joiner[1]
            assert 1 == profiles.get("j")["visits"]
        assert 1 == profiles.get("first")["visits"]


class TestIdentify:
    def test_anonymous_profile_merges_into_the_customer(self, profiles: SQLiteProfileStore):
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
        assert {"anon", "cust"} == {event["visitor_id"] for event in exported["events"]}

    def test_identify_in_the_same_batch(self, profiles: SQLiteProfileStore):
        """Events before and after an identify in one batch all reach the customer."""
        batch = events(
            ("a", "session_start", 30, {}, "anon"),
            ("i", "identify", 20, {"customer_id": "cust"}, "anon"),
            ("b", "session_start", 10, {}, "anon"),
            ("c", "session_start", 5, {}, "cust"),
        )

        profiles.track(batch)

        assert 3 == profiles.get("cust")["visits"] == profiles.get("anon")["visits"]
        assert [("anon", "cust")] == all_rows(profiles.path)["aliases"]

    def test_chains_resolve_to_the_end(self, profiles: SQLiteProfileStore):
        """a→b then b→c: all three ids read c's profile; every alias points at c."""
        profiles.track(events(("a1", "session_start", 30), visitor="a"))
        profiles.track(events(("b1", "session_start", 20), visitor="b"))
        profiles.track(events(("c1", "session_start", 10), visitor="c"))

        profiles.track(events(("ab", "identify", 5, {"customer_id": "b"}), visitor="a"))
        profiles.track(events(("bc", "identify", 4, {"customer_id": "c"}), visitor="b"))

        assert 3 == profiles.get("a")["visits"] == profiles.get("b")["visits"]
        assert profiles.get("a") == profiles.get("c")
        assert [("a", "c"), ("b", "c")] == sorted(all_rows(profiles.path)["aliases"])
        assert ["c"] == [row[0] for row in all_rows(profiles.path)["profiles"]]

    def test_cycles_are_ignored(self, profiles: SQLiteProfileStore):
        """b→a after a→b links two ids that are already one profile: nothing changes."""
        profiles.track(events(("a1", "session_start", 30), visitor="a"))
        profiles.track(events(("ab", "identify", 5, {"customer_id": "b"}), visitor="a"))
        before = all_rows(profiles.path)

        result = profiles.track(events(("ba", "identify", 4, {"customer_id": "a"}), visitor="b"))

        after = all_rows(profiles.path)
        assert 1 == result.accepted
        assert (before["aliases"], [("a", "b")]) == (after["aliases"], before["aliases"])
        assert 1 == profiles.get("a")["visits"] == profiles.get("b")["visits"]

    def test_identify_of_an_identified_visitor_merges_customers(self, profiles: SQLiteProfileStore):
        """a→b then a→c: the profile a belongs to (b) merges into c (documented)."""
        profiles.track(events(("a1", "session_start", 30), visitor="a"))
        profiles.track(events(("b1", "session_start", 20), visitor="b"))
        profiles.track(events(("ab", "identify", 5, {"customer_id": "b"}), visitor="a"))

        profiles.track(events(("ac", "identify", 4, {"customer_id": "c"}), visitor="a"))

        assert 2 == profiles.get("c")["visits"]
        assert [("a", "c"), ("b", "c")] == sorted(all_rows(profiles.path)["aliases"])

    def test_cached_alias_sees_writes_to_the_customer(self, profiles: SQLiteProfileStore):
        """A profile cached under an alias shows the next event tracked for the customer."""
        profiles.track(events(("ab", "identify", 5, {"customer_id": "cust"}), visitor="anon"))
        assert "visits" not in profiles.get("anon")

        profiles.track(events(("s", "session_start", 1), visitor="cust"))

        assert 1 == profiles.get("anon")["visits"]


class TestAttributes:
    def test_set_attributes_returns_the_profile(self, profiles: SQLiteProfileStore):
        """Attributes land under ``attributes``; null removes one; rebuilds keep them."""
        profiles.set_attributes("v-1", {"tier": "gold", "country": "DE"}, NOW)

        profile = profiles.set_attributes("v-1", {"country": None}, NOW + timedelta(seconds=1))

        assert {"attributes": {"tier": "gold"}} == profile == profiles.get("v-1")
        profiles.rebuild_all()
        assert profile == profiles.get("v-1")

    def test_bad_attributes_name_the_attribute(self, profiles: SQLiteProfileStore):
        """Problems are reported against ``attributes.<name>``, nothing is stored."""
        with pytest.raises(InvalidRequestError) as caught:
            profiles.set_attributes("v-1", {"a.b": 1, "deep": {"x": {"y": {"z": {}}}}}, NOW)

        expected = ["attributes.a.b", "attributes.deep.x.y.z"]
        assert expected == [problem.path for problem in caught.value.problems]
        assert None is profiles.get("v-1")

    def test_empty_visitor_id(self, profiles: SQLiteProfileStore):
        """An empty visitor id is a problem named ``visitor_id``."""
        with pytest.raises(InvalidRequestError) as caught:
            profiles.set_attributes("", {"a": 1}, NOW)

        assert ["visitor_id"] == [problem.path for problem in caught.value.problems]


class TestDelete:
    def test_nothing_mentions_a_deleted_visitor(
        self, profiles: SQLiteProfileStore, profile_db: Path
    ):
        """Deleting by any of a person's ids leaves no row naming them; others stay."""
        profiles.track(events(*SHOPPER, visitor="forget-anon-7f3a"))
        profiles.track(
            events(
                ("k1", "purchase", 10, {"order_id": "X", "value": 5, "articles": 1}),
                visitor="forget-cust-9c2e",
            )
        )
        profiles.track(
            events(
                ("i", "identify", 5, {"customer_id": "forget-cust-9c2e"}),
                visitor="forget-anon-7f3a",
            )
        )
        profiles.set_attributes("forget-anon-7f3a", {"email": "someone@example.com"}, NOW)
        profiles.track(events(("other", "session_start", 1), visitor="keep-me"))
        assert profiles.get("forget-cust-9c2e") is not None  # cached before the delete

        deleted = profiles.delete_visitor("forget-anon-7f3a")

        rows = all_rows(profile_db)
        text = json.dumps(rows)
        assert 11 == deleted  # 9 events, 1 alias, 1 profile
        assert "forget-" not in text and "someone@example.com" not in text
        assert 1 == len(rows["events"]) == len(rows["profiles"])
        assert None is profiles.get("forget-cust-9c2e") is profiles.get("forget-anon-7f3a")
        assert {"visits": 1} == {"visits": profiles.get("keep-me")["visits"]}

    def test_no_bytes_left_in_the_file(self, profile_db: Path):
        """After delete, the ids are not in the file's bytes either (WAL included)."""
        with SQLiteProfileStore(profile_db) as store:
            for i in range(20):
                store.track(
                    events(
                        (f"e{i}", "product_view", i, {"sku": f"sku-{i}"}), visitor="erase-me-3b1d"
                    )
                )
            store.track(events(("x", "session_start", 1), visitor="stays"))
            store.delete_visitor("erase-me-3b1d")

            files = [profile_db, profile_db.with_name(profile_db.name + "-wal")]
            leftovers = [f.name for f in files if f.exists() and b"erase-me" in f.read_bytes()]

        assert [] == leftovers

    def test_unknown_visitor_deletes_nothing(self, profiles: SQLiteProfileStore):
        """Deleting a visitor we never saw is not an error: 0 rows."""
        assert 0 == profiles.delete_visitor("nobody")


class TestExport:
    def test_export_holds_everything(self, profiles: SQLiteProfileStore):
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
        assert batch == sorted(
            validate_events(exported["events"], NOW),
            key=lambda e: [ev.event_id for ev in batch].index(e.event_id),
        )

    def test_unknown_visitor_exports_empty(self, profiles: SQLiteProfileStore):
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


_KINDS = [
    "session_start",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "return",
    "campaign_click",
    "custom",
    "identify",
]


def random_log(rng: random.Random, count: int, visitors: int) -> list[Event]:
    """A random valid log over ``visitors`` ids, with colliding order ids and skus and
    some identify events (visitor i becomes customer i // 2)."""
    raw = []
    for index in range(count):
        kind = rng.choice(_KINDS)
        visitor = f"visitor-{rng.randrange(visitors)}"
        properties: dict[str, Any] = {}
        if kind == "product_view":
            properties = {"sku": f"sku-{rng.randrange(70)}", "category": f"c{rng.randrange(25)}"}
        elif kind in ("add_to_cart", "remove_from_cart"):
            properties = {
                "sku": f"sku-{rng.randrange(4)}",
                "quantity": rng.randrange(1, 3),
                "price": rng.choice([5, 9.99, 20]),
            }
        elif kind == "purchase":
            properties = {
                "order_id": f"o-{rng.randrange(6)}",
                "value": rng.choice([10, 0.3, 99]),
                "articles": rng.randrange(0, 4),
            }
        elif kind == "return":
            properties = {"order_id": f"o-{rng.randrange(6)}", "articles": 1}
        elif kind == "campaign_click":
            properties = {"campaign": f"camp-{rng.randrange(55)}"}
        elif kind == "custom":
            properties = {"name": "quiz", "properties": {"score": rng.randrange(9)}}
        elif kind == "identify":
            properties = {"customer_id": f"customer-{rng.randrange(visitors) // 2}"}
        raw.append(
            {
                "event_id": f"ev-{rng.randrange(10)}-{index}",
                "visitor_id": visitor,
                "type": kind,
                "timestamp": NOW - timedelta(minutes=rng.randrange(60)),
                "properties": properties,
            }
        )
    return validate_events(raw, NOW)


def split_randomly(rng: random.Random, log: list[Event]) -> list[list[Event]]:
    """``log`` shuffled, with some events repeated, cut into random batches."""
    shuffled = log + rng.sample(log, k=min(len(log), rng.randrange(5)))
    rng.shuffle(shuffled)
    batches = []
    while shuffled:
        size = rng.randrange(1, 12)
        batches.append(shuffled[:size])
        shuffled = shuffled[size:]
    return batches


class TestRebuild:
    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1))
    def test_tracking_in_any_batches_equals_rebuild_all(self, seed: int):
        """Random logs tracked in random batches and orders match rebuild_all (identify too)."""
        rng = random.Random(seed)
        log = random_log(rng, rng.randrange(1, 120), visitors=6)
        with (
            tempfile.TemporaryDirectory() as tmp,
            SQLiteProfileStore(Path(tmp) / "p.db", cache_size=0) as store,
        ):
            for batch in split_randomly(rng, log):
                store.track(batch)
            ids = [f"visitor-{i}" for i in range(6)] + [f"customer-{i}" for i in range(3)]
            incremental = {visitor: store.get(visitor) for visitor in ids}

            rebuilt = store.rebuild_all(batch=2)

            assert incremental == {visitor: store.get(visitor) for visitor in ids}
            assert rebuilt == len(all_rows(store.path)["profiles"])

    def test_rebuild_equals_the_pure_fold(self, profiles: SQLiteProfileStore):
        """Without identify, each stored profile is render(rebuild(its events))."""
        rng = random.Random(7)
        log = [event for event in random_log(rng, 300, visitors=5) if event.type != "identify"]
        for batch in split_randomly(rng, log):
            profiles.track(batch)

        for visitor in {event.visitor_id for event in log}:
            mine = [event for event in log if event.visitor_id == visitor]
            assert fold.render(fold.rebuild(mine)) == profiles.get(visitor)

    def test_rebuild_repairs_a_damaged_profile(self, profiles: SQLiteProfileStore):
        """rebuild(visitor) and rebuild_all recompute damaged profiles from the events."""
        profiles.track(events(*SHOPPER))
        expected = profiles.get("v-1")
        with sqlite3.connect(profiles.path) as conn:
            conn.execute(
                "UPDATE profiles SET document = '{}', state = ?", (json.dumps(fold.new_state()),)
            )

        assert expected == profiles.rebuild("v-1")
        with sqlite3.connect(profiles.path) as conn:
            conn.execute("UPDATE profiles SET document = '{}'")
        assert 1 == profiles.rebuild_all()
        assert expected == profiles.get("v-1")

    def test_state_of_another_version_is_rebuilt(self, profiles: SQLiteProfileStore):
        """A state of another fold version is rebuilt from the log on the next event."""
        profiles.track(events(*SHOPPER))
        with sqlite3.connect(profiles.path) as conn:
            conn.execute(
                "UPDATE profiles SET state = ?", (json.dumps({**fold.new_state(), "v": 0}),)
            )

        profiles.track(events(("s3", "session_start", 1)))

        assert 3 == profiles.get("v-1")["visits"]

    def test_rebuild_all_drops_profiles_without_events(self, profiles: SQLiteProfileStore):
        """A profile row whose events are gone is deleted by rebuild_all."""
        profiles.track(events(*SHOPPER))
        with sqlite3.connect(profiles.path) as conn:
            conn.execute("DELETE FROM events")

        assert 0 == profiles.rebuild_all()
        assert None is profiles.get("v-1")


class TestCache:
    def test_own_write_is_visible_at_once(self, profiles: SQLiteProfileStore):
        """A cached profile is dropped when this store writes to it (TTL 60 s here)."""
        profiles.track(events(("s1", "session_start", 10)))
        assert 1 == profiles.get("v-1")["visits"]

        profiles.track(events(("s2", "session_start", 5)))

        assert 2 == profiles.get("v-1")["visits"]

    def test_cached_miss_is_dropped_on_write(self, profiles: SQLiteProfileStore):
        """An unknown visitor, cached as None, is found right after its first event."""
        assert None is profiles.get("v-1")

        profiles.track(events(("s1", "session_start", 10)))

        assert 1 == profiles.get("v-1")["visits"]

    def test_read_racing_a_write_is_not_cached(
        self, profiles: SQLiteProfileStore, monkeypatch: pytest.MonkeyPatch
    ):
        """A read that started before a write committed does not cache what it read."""
        profiles.track(events(("s1", "session_start", 10)))
        real_load = profiles._load
        raced = []

        def load_then_write(visitor_id: str) -> Any:
            profile = real_load(visitor_id)
            if not raced:  # the write commits after this read, before it is cached
                raced.append(True)
                profiles.track(events(("s2", "session_start", 5)))
            return profile

        monkeypatch.setattr(profiles, "_load", load_then_write)

        assert 1 == profiles.get("v-1")["visits"]
        assert 2 == profiles.get("v-1")["visits"]

    def test_other_process_writes_show_within_the_ttl(self, profile_db: Path):
        """Two stores on one file: another store's write shows once the reader's TTL ends."""
        with (
            SQLiteProfileStore(profile_db, cache_ttl=0.3) as reader,
            SQLiteProfileStore(profile_db, cache_ttl=0.3) as writer,
        ):
            writer.track(events(("s1", "session_start", 10)))
            assert 1 == reader.get("v-1")["visits"]

            writer.track(events(("s2", "session_start", 5)))
            stale = reader.get("v-1")["visits"]
            time.sleep(0.35)
            fresh = reader.get("v-1")["visits"]

        assert (1, 2) == (stale, fresh)

    def test_default_ttl_is_one_second(self, profile_db: Path):
        """By default another process's write is visible within about a second."""
        with SQLiteProfileStore(profile_db) as reader, SQLiteProfileStore(profile_db) as writer:
            assert None is reader.get("v-1")
            writer.track(events(("s1", "session_start", 10)))
            deadline = time.monotonic() + 1.5
            while reader.get("v-1") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            waited = 1.5 - (deadline - time.monotonic())

        assert waited <= 1.1

    def test_cache_can_be_disabled(self, profile_db: Path):
        """cache_size=0 reads the file every time: another store's write shows at once."""
        with (
            SQLiteProfileStore(profile_db, cache_size=0) as reader,
            SQLiteProfileStore(profile_db) as writer,
        ):
            assert None is reader.get("v-1")
            writer.track(events(("s1", "session_start", 10)))

            assert 1 == reader.get("v-1")["visits"]


class TestLifecycle:
    def test_close_is_idempotent_and_final(self, profile_db: Path):
        """After close, writes fail with a store error naming the file; closing again is fine."""
        from server.errors import StoreUnavailableError

        store = SQLiteProfileStore(profile_db)
        store.close()
        store.close()

        with pytest.raises(StoreUnavailableError, match="profile store .* is closed"):
            store.track(events(("s1", "session_start", 10)))

    def test_shares_the_file_with_the_rules_store(self, db_path: Path):
        """The profile tables sit next to the rules tables in one file."""
        from server.rules.sqlite import SQLiteRulesStore as RulesStore

        with RulesStore(db_path) as rules, SQLiteProfileStore(db_path) as store:
            store.track(events(("s1", "session_start", 10)))
            assert 1 == rules.active_version()

        assert {"versions", "active", "events", "aliases", "profiles"} <= set(all_rows(db_path))

    def test_locked_file_is_a_busy_profile_store(
        self, profile_db: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """A write lock held past the busy timeout is StoreBusyError naming the profile store."""
        from server.errors import StoreBusyError

        monkeypatch.setattr(profile_store, "BUSY_TIMEOUT", 0.05)
        with SQLiteProfileStore(profile_db) as store:
            store.track(events(("s0", "session_start", 100)))
            other = sqlite3.connect(profile_db, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                with pytest.raises(StoreBusyError, match="profile store is busy"):
                    store.track(events(("s1", "session_start", 10)))
                other.execute("ROLLBACK")
            finally:
                other.close()

            assert 1 == store.get("v-1")["visits"]

    def test_reads_from_many_threads(self, profiles: SQLiteProfileStore):
        """Concurrent readers and a writer: every read sees a whole profile."""
        from concurrent.futures import ThreadPoolExecutor

        profiles.track(events(("s0", "session_start", 100)))

        def read(_: int) -> int:
            profile = profiles.get("v-1")
            return int(profile["visits"])

        with ThreadPoolExecutor(8) as pool:
            reads = pool.map(read, range(400))
            for i in range(1, 20):
                profiles.track(events((f"s{i}", "session_start", 100 - i)))
            seen = list(reads)

        assert all(1 <= visits <= 20 for visits in seen)
        assert 20 == profiles.get("v-1")["visits"]


class TestCheckpoints:
    def test_a_long_wal_starts_over(self, profile_db: Path, monkeypatch: pytest.MonkeyPatch):
        """Once the WAL is long, a checkpoint pass copies all of it and the next commit
        writes the WAL from its start again, so the file stays bounded."""
        monkeypatch.setattr(profile_store, "CHECKPOINT_INTERVAL", 3600.0)  # explicit passes
        monkeypatch.setattr(profile_store, "WAL_RESTART_FRAMES", 1)
        with SQLiteProfileStore(profile_db) as store:
            for i in range(5):
                store.track(events((f"e{i}", "session_start", 10 - i), visitor=f"v{i}"))
            frames, copied = store.checkpoint()
            store.track(events(("next", "session_start", 1), visitor="v9"))
            after, _ = store.checkpoint()

            assert 0 < frames == copied
            assert 0 < after < frames
            assert 1 == store.get("v9")["visits"]

    def test_background_passes_copy_the_wal(
        self, profile_db: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """The background thread checkpoints by itself; close stops it."""
        passes: list[tuple[int, int]] = []
        real = SQLiteProfileStore.checkpoint

        def recorded(self: SQLiteProfileStore) -> tuple[int, int]:
            passes.append(real(self))
            return passes[-1]

        monkeypatch.setattr(profile_store, "CHECKPOINT_INTERVAL", 0.01)
        monkeypatch.setattr(SQLiteProfileStore, "checkpoint", recorded)
        store = SQLiteProfileStore(profile_db)
        store.track(events(("s1", "session_start", 10)))
        deadline = time.monotonic() + 10
        while not any(0 < frames == copied for frames, copied in passes):
            assert time.monotonic() < deadline, passes
            time.sleep(0.01)
        store.close()

        assert not store._checkpointer.is_alive()


class TestServerWiring:
    def test_decide_reads_the_stored_profile(self, start_server: Any):
        """Decide uses the default stored profile: tracked purchases make a VIP."""
        server = start_server(demo=True)
        store = server.server.profiles
        assert isinstance(store, SQLiteProfileStore)
        assert store.path == Path(server.config.db_path)

        def hero() -> str:
            request = pb.DecideRequest(visitor_id="vip-1", placements=["home_hero"])
            return str(server.decisions.Decide(request, timeout=5).decisions[0].campaign_id)

        before = hero()
        now = datetime.now(UTC)
        store.track(
            validate_events(
                [
                    {
                        "event_id": f"vip-o{i}",
                        "visitor_id": "vip-1",
                        "type": "purchase",
                        "timestamp": now - timedelta(days=i),
                        "properties": {"order_id": f"O{i}", "value": 600, "articles": 1},
                    }
                    for i in range(2)
                ],
                now,
            )
        )

        assert ("welcome_offer", "vip_early_access") == (before, hero())

    def test_overrides_still_replace_stored_fields(self, start_server: Any):
        """profile_overrides replace the stored profile's top-level fields."""
        server = start_server(demo=True)
        now = datetime.now(UTC)
        server.server.profiles.track(
            validate_events(
                [
                    {
                        "event_id": "big",
                        "visitor_id": "vip-2",
                        "type": "purchase",
                        "timestamp": now,
                        "properties": {"order_id": "O", "value": 5000, "articles": 1},
                    }
                ],
                now,
            )
        )
        request = pb.DecideRequest(visitor_id="vip-2", placements=["home_hero"])
        request.profile_overrides.update({"customer_segment": {}})

        campaign = server.decisions.Decide(request, timeout=5).decisions[0].campaign_id

        assert "vip_early_access" != campaign

    def test_profiles_in_a_file_of_their_own(self, start_server: Any, tmp_path: Path):
        """profile_db_path (DECIDE_PROFILE_DB_PATH) puts events and profiles elsewhere."""
        from server.config import ServerConfig

        elsewhere = tmp_path / "profiles-only.db"
        server = start_server(profile_db_path=str(elsewhere))

        assert elsewhere == server.server.profiles.path
        assert (
            str(elsewhere)
            == ServerConfig.from_env({"DECIDE_PROFILE_DB_PATH": str(elsewhere)}).profile_db_path
        )
        assert {"events", "aliases", "profiles"} <= set(all_rows(elsewhere))

    def test_injected_profile_store_is_used(self, start_server: Any, profile_db: Path):
        """An injected store is used as is and left open when the server stops."""
        with SQLiteProfileStore(profile_db) as injected:
            server = start_server(profiles=injected)
            assert injected is server.server.profiles
            server.server.stop(None).wait(10)

            assert None is injected.get("anyone")
