"""EstimateSegment's scan: worker processes give the in-process answer, SQLite's
required-field prefilter rejects only profiles that cannot match, segment sizes are
reused with their age, and a stopping server never waits for a scan."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import decision
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.analytics import estimates
from server.analytics.estimates import SizeCache, estimate
from server.analytics.scan_pool import ScanPool
from server.errors import ScanCancelledError

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
ADMIN = (("authorization", "Bearer server-test-admin-token"),)

RULES = {
    "segments": [
        {"id": "everyone", "filter": {}},
        {"id": "new_visitors", "filter": {"visits": {"$not": {"$gt": 1}}}},
        {"id": "buyers", "filter": {"customer_segment.outbounds_number_total": {"$gte": 1}}},
        {"id": "big_spenders", "filter": {"customer_segment.outbounds_value_total": {"$gte": 200}}},
        {"id": "recent", "filter": {"last_seen": {"$gte": {"$daysAgo": 20}}}},
        {"id": "big_recent", "filter": {"$segment": "big_spenders", "visits": {"$gte": 2}}},
        {"id": "carts", "filter": {"cart.items.0": {"$exists": True}}},
    ],
    "placements": [{"id": "hero", "fallback": None}],
    "exclusion_groups": [],
    "campaigns": [],
}
RULESET = decision.compile_ruleset(RULES)

FILTERS = [
    {"customer_segment.outbounds_value_total": {"$gte": 100}, "visits": {"$gte": 2}},
    {"visits": {"$not": {"$gt": 1}}},
    {"$or": [{"$segment": "big_spenders"}, {"cart.items.0": {"$exists": True}}]},
    {"last_seen": {"$gte": {"$daysAgo": 25}}, "visits": {"$gte": 3}},
    {"visits": {"$gte": 1}},
    {},
    {"nobody_has_this": 1},
]
FILTER_IDS = ["fields", "negation", "segment-or-cart", "relative-date", "visits", "all", "none"]

ODD_ROWS = [
    # The marker '"visits"' is in the bytes, but not as a top-level key: no match.
    ("odd-nested", {"nested": {"visits": 5}, "first_seen": "2026-11-01"}),
    ("odd-string", {"note": 'says "visits"', "first_seen": "2026-11-01"}),
    # Top-level keys the filters need, in unusual shapes.
    ("odd-array", {"visits": [1, 5], "customer_segment": {"outbounds_value_total": 150}}),
    ("odd-unicode", {"visits": 3, "name": "Zoë ☃", "customer_segment": [{"x": 1}]}),
]
BIG_INT_ROW = ("odd-bigint", {"visits": 2**70, "customer_segment": {"outbounds_value_total": 300}})


def _populate(path: Path, visitors: int, populate: Callable[..., None]) -> None:
    """``visitors`` profiles with varied visits, orders and carts (seeded), plus a few
    hand-written documents that stress the raw-byte prefilter."""
    populate(path, visitors, seed=11, start=T0, spacing=timedelta(minutes=7), now=NOW)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO profiles (visitor_id, document, state) VALUES (?, ?, '{}')",
            [(v, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)) for v, doc in ODD_ROWS]
            # Integers beyond 64 bits: written with json and a leading space, as the store does.
            + [(BIG_INT_ROW[0], " " + json.dumps(BIG_INT_ROW[1], separators=(",", ":")))],
        )
    conn.close()


def brute_force(path: Path, spec: Any, now: datetime) -> tuple[set[str], dict[str, set[str]]]:
    """Every profile parsed with ``json`` and evaluated one by one."""
    predicate = decision.compile_filter(spec)
    filters = RULESET.segment_filters
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT visitor_id, document FROM profiles").fetchall()
    conn.close()
    docs = {v: {**json.loads(d), "context": {}} for v, d in rows}
    matched = {v for v, doc in docs.items() if predicate(doc, now, segments=filters)}
    members = {
        s: {v for v, doc in docs.items() if p(doc, now, segments=filters)}
        for s, p in filters.items()
    }
    return matched, members


@pytest.fixture(scope="module")
def profiles_path(
    tmp_path_factory: pytest.TempPathFactory, populate: Callable[..., None]
) -> Path:
    """A profile store of 1,200 tracked visitors and 5 hand-written documents."""
    path = tmp_path_factory.mktemp("estimates") / "profiles.db"
    _populate(path, 1200, populate)
    return path


@pytest.fixture(scope="module", params=[2, 3], ids=["2-workers", "3-workers"])
def pool(request: pytest.FixtureRequest) -> Iterator[ScanPool]:
    """A pool that splits every scan, however small the store."""
    with ScanPool(request.param, min_profiles=0) as scan_pool:
        yield scan_pool


class TestWorkersEqualInProcess:
    @pytest.mark.parametrize("spec", FILTERS, ids=FILTER_IDS)
    def test_cold_sizes(self, profiles_path: Path, pool: ScanPool, spec: Any):
        """Counts, sample, overlaps and sizes are the same from the workers as from one
        in-process pass, when every segment is counted."""
        predicate = decision.compile_filter(spec)

        alone = estimate(profiles_path, predicate, RULESET, NOW, sample_size=25, top=10)
        split = estimate(profiles_path, predicate, RULESET, NOW, sample_size=25, top=10, pool=pool)

        assert alone == split

    @pytest.mark.parametrize("spec", FILTERS, ids=FILTER_IDS)
    def test_cached_sizes(self, profiles_path: Path, pool: ScanPool, spec: Any):
        """With the sizes cached (segments evaluated on matches only, SQLite's prefilter
        on), the workers still give the in-process answer."""
        predicate = decision.compile_filter(spec)
        cache_alone, cache_split = SizeCache(), SizeCache()
        estimate(profiles_path, predicate, RULESET, NOW, sizes=cache_alone)
        estimate(profiles_path, predicate, RULESET, NOW, pool=pool, sizes=cache_split)

        alone = estimate(profiles_path, predicate, RULESET, NOW, top=10, sizes=cache_alone)
        split = estimate(profiles_path, predicate, RULESET, NOW, top=10, pool=pool, sizes=cache_split)

        assert alone == split

    @pytest.mark.parametrize("spec", FILTERS, ids=FILTER_IDS)
    def test_equals_brute_force(self, profiles_path: Path, pool: ScanPool, spec: Any):
        """The workers' counts and overlaps equal evaluating every document one by one,
        including documents where a required key appears only nested or in a string."""
        matched, members = brute_force(profiles_path, spec, NOW)
        cache = SizeCache()
        predicate = decision.compile_filter(spec)
        estimate(profiles_path, predicate, RULESET, NOW, pool=pool, sizes=cache)

        got = estimate(profiles_path, predicate, RULESET, NOW, top=10, pool=pool, sizes=cache)

        expected = sorted(
            (
                (len(matched & m) / len(matched | m), len(matched & m), s, len(m))
                for s, m in members.items()
                if matched & m
            ),
            key=lambda o: (-o[0], -o[1], o[2]),
        )
        assert (len(matched), 1205, True) == (
            got.matching,
            got.profiles,
            set(got.sample_ids) <= matched,
        )
        assert [(s, size, both) for _, both, s, size in expected] == [
            (o.segment_id, o.segment_size, o.both) for o in got.overlaps
        ]

    def test_sample_is_deterministic(self, profiles_path: Path, pool: ScanPool):
        """The sample is random.Random(matching).sample of the matching ids in rowid
        order: the same on every call and on both paths."""
        predicate = decision.compile_filter({"visits": {"$gte": 1}})
        with sqlite3.connect(profiles_path) as conn:
            ids = [v for (v,) in conn.execute("SELECT visitor_id FROM profiles ORDER BY rowid")]
        conn.close()
        matched, _ = brute_force(profiles_path, {"visits": {"$gte": 1}}, NOW)
        in_order = [v for v in ids if v in matched]

        got = estimate(profiles_path, predicate, RULESET, NOW, sample_size=30, pool=pool)

        assert tuple(random.Random(len(in_order)).sample(in_order, 30)) == got.sample_ids

    def test_filter_that_is_not_json_scans_in_process(self, profiles_path: Path, pool: ScanPool):
        """A spec built in Python with a datetime cannot cross to a worker as JSON: the
        scan runs in the calling thread and gives the same answer as $date."""
        python = decision.compile_filter({"last_seen": {"$gte": NOW - timedelta(days=25)}})
        extended = decision.compile_filter(
            {"last_seen": {"$gte": {"$date": (NOW - timedelta(days=25)).isoformat()}}}
        )

        got = estimate(profiles_path, python, RULESET, NOW, pool=pool)

        assert estimate(profiles_path, extended, RULESET, NOW, pool=pool) == got


class TestSizeCache:
    @pytest.fixture
    def make_store(self, tmp_path: Path, populate: Callable[..., None]) -> Callable[[int], Path]:
        def make(visitors: int) -> Path:
            path = tmp_path / "profiles.db"
            _populate(path, visitors, populate)
            return path

        return make

    def test_sizes_are_reused_with_their_time_while_profiles_change(
        self, make_store: Callable[[int], Path]
    ):
        """Within the cache's age, sizes come from the earlier pass and say when; the
        match itself is counted now."""
        path = make_store(200)
        cache = SizeCache()
        predicate = decision.compile_filter({})
        first = estimate(path, predicate, RULESET, NOW, sizes=cache)
        with sqlite3.connect(path) as conn:
            conn.executemany(
                "INSERT INTO profiles (visitor_id, document, state) VALUES (?, ?, '{}')",
                [(f"late-{i}", '{"visits":4}') for i in range(50)],
            )
        conn.close()

        later = estimate(path, predicate, RULESET, NOW + timedelta(minutes=4), sizes=cache)

        everyone = next(o for o in later.overlaps if o.segment_id == "everyone")
        assert (NOW, NOW, first.matching + 50, first.profiles + 50) == (
            first.sizes_at,
            later.sizes_at,
            later.matching,
            later.profiles,
        )
        # The cached size of "everyone" (205) is below the 255 profiles in both now: a
        # size is never reported below both.
        assert (255, 255) == (everyone.segment_size, everyone.both)

    @pytest.mark.parametrize(
        ("moved", "ruleset_changes", "reused"),
        [
            (estimates.SIZES_MAX_AGE, False, True),
            (estimates.SIZES_MAX_AGE + timedelta(seconds=1), False, False),
            (-timedelta(seconds=1), False, False),
            (timedelta(seconds=1), True, False),
        ],
        ids=["at-max-age", "past-max-age", "clock-went-back", "new-ruleset"],
    )
    def test_when_sizes_are_counted_again(
        self,
        make_store: Callable[[int], Path],
        moved: timedelta,
        ruleset_changes: bool,
        reused: bool,
    ):
        """Sizes are counted again past SIZES_MAX_AGE, for a clock before the pass, and
        for another ruleset."""
        path = make_store(50)
        cache = SizeCache()
        predicate = decision.compile_filter({})
        estimate(path, predicate, RULESET, NOW, sizes=cache)
        ruleset = decision.compile_ruleset(RULES) if ruleset_changes else RULESET

        got = estimate(path, predicate, ruleset, NOW + moved, sizes=cache)

        assert (NOW if reused else NOW + moved) == got.sizes_at


class TestScanPool:
    def test_close_cuts_a_running_scan_short(self):
        """close() kills busy workers: the waiting caller gets ScanCancelledError at
        once instead of after the tasks' 60 s, and the processes are gone."""
        scan_pool = ScanPool(2, min_profiles=0)
        errors: list[BaseException] = []

        def wait_for_tasks() -> None:
            try:
                scan_pool.run(time.sleep, [60, 60, 60])
            except BaseException as exc:
                errors.append(exc)

        caller = threading.Thread(target=wait_for_tasks)
        caller.start()
        _wait_until(lambda: scan_pool.in_flight == 3 and len(scan_pool.pids()) == 2)
        pids = scan_pool.pids()
        started = time.monotonic()

        scan_pool.close()
        caller.join(10)

        assert (False, [ScanCancelledError], [], True) == (
            caller.is_alive(),
            [type(e) for e in errors],
            [pid for pid in pids if _alive(pid)],
            time.monotonic() - started < 5,
        )

    def test_closed_pool_refuses_work(self):
        """After close(), run() raises ScanCancelledError without starting a process."""
        scan_pool = ScanPool(2)
        scan_pool.close()

        with pytest.raises(ScanCancelledError):
            scan_pool.run(abs, [1])

        assert [] == scan_pool.pids()

    def test_in_process_scan_stops_when_the_pool_closes(self, profiles_path: Path):
        """A store below the threshold is scanned in the calling thread, which checks the
        pool's cancel flag between batches of rows."""
        scan_pool = ScanPool(2, min_profiles=10**9)
        scan_pool.close()

        with pytest.raises(ScanCancelledError):
            estimate(profiles_path, decision.compile_filter({}), RULESET, NOW, pool=scan_pool)

    def test_fork_is_refused(self):
        """Workers are spawned (or forked from a fork server), never forked from a process
        running gRPC threads."""
        with pytest.raises(ValueError, match="never fork"):
            ScanPool(2, start_method="fork")

    def test_small_stores_stay_in_process(self, profiles_path: Path):
        """Below min_profiles no worker is started."""
        with ScanPool(2, min_profiles=100_000) as scan_pool:
            estimate(profiles_path, decision.compile_filter({}), RULESET, NOW, pool=scan_pool)

            assert (False, []) == (scan_pool.started, scan_pool.pids())


# -- through the server ---------------------------------------------------------------------


@pytest.fixture
def serving(
    store: Any, db_path: Path, start_server: Callable[..., Any], populate: Callable[..., None]
) -> Any:
    """A server over 300 profiles, serving RULES, splitting every estimate over 2
    worker processes."""
    _populate(db_path, 300, populate)
    running = start_server(clock=lambda: NOW, scan_processes=2, scan_min_profiles=0)
    running.admin.PublishRules(
        pb.PublishRulesRequest(document_json=json.dumps(RULES)), metadata=ADMIN
    )
    return running


def _estimate_request(spec: Any) -> pb.EstimateSegmentRequest:
    text = spec if isinstance(spec, str) else json.dumps(spec)
    return pb.EstimateSegmentRequest(filter_json=text, sample_size=5)


@pytest.mark.slow
class TestThroughTheServer:
    def test_answer_from_the_workers(self, serving: Any, db_path: Path):
        """The server's pool answers like brute force, and says when sizes were counted."""
        spec = FILTERS[0]
        matched, members = brute_force(db_path, spec, NOW)
        stub = pb_grpc.InsightsServiceStub(serving.channel)

        response = stub.EstimateSegment(_estimate_request(spec), metadata=ADMIN, timeout=60)

        assert (len(matched), 305, NOW, 2) == (
            response.matching,
            response.profiles,
            response.segment_sizes_at.ToDatetime(tzinfo=UTC),
            len(serving.server.scan_pool.pids()),
        )
        assert [
            (o.segment_id, len(members[o.segment_id]), len(matched & members[o.segment_id]))
            for o in response.overlaps
        ] == [(o.segment_id, o.segment_size, o.both) for o in response.overlaps]

    @pytest.mark.parametrize(
        ("filter_json", "field"),
        [
            ('{"visits": {"$bogus": 1}}', "visits"),
            ('{"$and": [{"a": 1}, {"b": {"$regex": "(?<=x)"}}]}', "$and[1].b.$regex"),
            ('{"$segment": "ghost"}', "filter_json"),
            ("{not json", "filter_json"),
        ],
        ids=["unknown-operator", "bad-regex", "unknown-segment", "not-json"],
    )
    def test_bad_filter_is_invalid_argument_with_its_path(
        self, serving: Any, filter_json: str, field: str
    ):
        """A bad filter is refused before any scan: INVALID_ARGUMENT naming the place."""
        stub = pb_grpc.InsightsServiceStub(serving.channel)

        with pytest.raises(grpc.RpcError) as info:
            stub.EstimateSegment(_estimate_request(filter_json), metadata=ADMIN, timeout=60)

        assert (grpc.StatusCode.INVALID_ARGUMENT, [field], False) == (
            info.value.code(),
            _violation_fields(info.value),
            serving.server.scan_pool.started,
        )

    def test_pool_stops_with_the_server(self, serving: Any):
        """Stopping the server kills the estimate workers."""
        stub = pb_grpc.InsightsServiceStub(serving.channel)
        stub.EstimateSegment(_estimate_request({}), metadata=ADMIN, timeout=60)
        scan_pool = serving.server.scan_pool
        pids = scan_pool.pids()

        stopped = serving.server.stop(None).wait(10)

        assert (True, 2, [], True) == (
            stopped,
            len(pids),
            [pid for pid in pids if _alive(pid)],
            scan_pool.cancelled.is_set(),
        )

    def test_stop_during_an_estimate_does_not_wait_for_it(self, serving: Any):
        """A server stopped while an estimate waits on busy workers stops within
        seconds; the call ends with an error instead of running on."""
        scan_pool = serving.server.scan_pool
        blocker = threading.Thread(target=_swallow, args=(scan_pool.run, time.sleep, [60, 60]))
        blocker.start()
        _wait_until(lambda: scan_pool.in_flight == 2)
        stub = pb_grpc.InsightsServiceStub(serving.channel)
        call = stub.EstimateSegment.future(_estimate_request({}), metadata=ADMIN, timeout=60)
        _wait_until(lambda: scan_pool.in_flight == 4)  # the estimate's 2 ranges queue up
        pids = scan_pool.pids()
        started = time.monotonic()

        stopped = serving.server.stop(0).wait(15)
        blocker.join(10)

        assert (True, True, [], False) == (
            stopped,
            time.monotonic() - started < 10,
            [pid for pid in pids if _alive(pid)],
            blocker.is_alive(),
        )
        with pytest.raises(grpc.RpcError) as info:
            call.result(timeout=10)
        assert info.value.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


def _violation_fields(error: grpc.RpcError) -> list[str]:
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            bad_request = error_details_pb2.BadRequest()
            status.details[0].Unpack(bad_request)
            return [v.field for v in bad_request.field_violations]
    return []


def _swallow(function: Callable[..., Any], *args: Any) -> None:
    try:
        function(*args)
    except Exception:  # the test only needs the workers busy; close() ends this
        pass


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition never became true")
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class TestConnect:
    def test_paths_with_uri_characters(self, tmp_path: Path):
        """A store whose path holds '?', '#' and '%' opens read-only all the same."""
        from server.analytics import scans as audiences

        path = tmp_path / "odd?name#50%.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.execute("INSERT INTO t VALUES (1)")
        conn.close()

        with closing(audiences.connect(path)) as ro:
            assert [(1,)] == ro.execute("SELECT x FROM t").fetchall()
            with pytest.raises(sqlite3.OperationalError):
                ro.execute("INSERT INTO t VALUES (2)")
