"""Exposures: recorded for served campaigns off the call path, flushed on stop, forgotten."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.analytics.exposures import ExposureRecorder
from server.profiles.sqlite import SQLiteProfileStore

NOW = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)

RULES = {
    "segments": [{"id": "everyone", "filter": {}}],
    "placements": [{"id": "hero", "fallback": {"f": 1}}, {"id": "side", "fallback": None}],
    "exclusion_groups": [],
    "campaigns": [
        {
            "id": "split",
            "placements": ["hero"],
            "audience": {"segments": ["everyone"]},
            "holdout": 50,
            "variants": [
                {"id": "control", "weight": 1, "control": True},
                {"id": "treatment", "weight": 1, "content": {"t": 1}},
            ],
        }
    ],
}


def exposure_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT decision_id, visitor_id, source_id, campaign, variant, segments,"
            " placement, ts FROM exposures ORDER BY seq"
        ).fetchall()


@pytest.fixture
def split_server(store: Any, start_server: Any, admin_metadata: Any) -> Any:
    """A server with a fixed clock serving a 50 % holdout campaign on ``hero``."""
    running = start_server(clock=lambda: NOW)
    running.admin.PublishRules(
        pb.PublishRulesRequest(document_json=json.dumps(RULES)), metadata=admin_metadata
    )
    return running


class TestRecording:
    def test_served_campaigns_are_exposures(self, split_server: Any, db_path: Path):
        """Every CAMPAIGN or HOLDOUT decision is one exposure; fallbacks are none."""
        served = {}
        for i in range(40):
            response = split_server.decide("hero", "side", visitor=f"v-{i}")
            hero = response.decisions[0]
            served[hero.decision_id] = (
                f"v-{i}",
                hero.variant_id or "holdout",
                pb.Reason.Name(hero.reason),
            )
        split_server.server.stop(None).wait(10)

        rows = exposure_rows(db_path)

        assert {d: (v, variant) for d, (v, variant, _) in served.items()} == {
            row[0]: (row[1], row[4]) for row in rows
        }
        assert {"REASON_CAMPAIGN", "REASON_HOLDOUT"} == {r for _, _, r in served.values()}
        assert {("split", '["everyone"]', "hero", "2026-11-09T10:00:00.000000Z")} == {
            (row[3], row[5], row[6], row[7]) for row in rows
        }

    def test_previews_are_not_exposures(
        self, split_server: Any, db_path: Path, api_metadata: Any
    ):
        """A preview Decide answers like a served one but records nothing."""
        request = pb.DecideRequest(visitor_id="v-1", placements=["hero"], preview=True)
        previewed = split_server.decisions.Decide(request, metadata=api_metadata, timeout=5)
        served = split_server.decide("hero", visitor="v-1")
        split_server.server.stop(None).wait(10)

        rows = exposure_rows(db_path)

        assert previewed.decisions[0].variant_id == served.decisions[0].variant_id
        assert previewed.decisions[0].reason == served.decisions[0].reason
        assert [served.decisions[0].decision_id] == [row[0] for row in rows]

    def test_clean_stop_loses_none(self, split_server: Any, db_path: Path):
        """Decisions made right before a stop are all on disk once it returns."""
        calls = 300
        threads = [
            threading.Thread(
                target=lambda k=k: [
                    split_server.decide("hero", visitor=f"w-{k}-{i}") for i in range(calls // 3)
                ]
            )
            for k in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        split_server.server.stop(None).wait(10)

        assert calls == len(exposure_rows(db_path))

    def test_identify_moves_exposures_to_the_customer(self, split_server: Any, db_path: Path):
        """An identify merge re-points the anonymous id's exposures, as it does events."""
        split_server.decide("hero", visitor="anon-1")
        split_server.server.exposures.flush()
        events = pb_grpc.EventServiceStub(split_server.channel)
        event = pb.Event(
            event_id="id-1",
            visitor_id="anon-1",
            type=pb.EVENT_TYPE_IDENTIFY,
            identify=pb.Identify(customer_id="cust-1"),
        )
        event.timestamp.FromDatetime(NOW)
        events.Track(pb.TrackRequest(events=[event]), timeout=5)

        assert [("cust-1", "anon-1")] == [(row[1], row[2]) for row in exposure_rows(db_path)]


class TestForgetting:
    def test_delete_visitor_leaves_nothing(
        self, split_server: Any, db_path: Path, admin_metadata: Any
    ):
        """After DeleteVisitor no row of any table mentions the visitor, exposures included."""
        split_server.decide("hero", visitor="erase-me")
        split_server.decide("hero", visitor="keep-me")
        profiles = pb_grpc.ProfileServiceStub(split_server.channel)

        deleted = profiles.DeleteVisitor(
            pb.DeleteVisitorRequest(visitor_id="erase-me"), metadata=admin_metadata, timeout=5
        ).deleted
        split_server.server.stop(None).wait(10)

        with sqlite3.connect(db_path) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            text = " ".join(str(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
        # The exposure, its stored assignment, the campaign_served event it recorded and
        # the profile that event made.
        assert (4, False, True) == (deleted, "erase-me" in text, "keep-me" in text)

    def test_export_lists_exposures(self, split_server: Any, admin_metadata: Any):
        """ExportVisitor includes the visitor's exposures (the right of access)."""
        decision = split_server.decide("hero", visitor="v-export").decisions[0]
        profiles = pb_grpc.ProfileServiceStub(split_server.channel)

        export = json.loads(
            profiles.ExportVisitor(
                pb.ExportVisitorRequest(visitor_id="v-export"), metadata=admin_metadata, timeout=5
            ).export_json
        )

        assert [decision.decision_id] == [x["decision_id"] for x in export["exposures"]]


class TestRecorder:
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        file = tmp_path / "profiles.db"
        SQLiteProfileStore(file).close()
        return file

    def test_full_buffer_drops_and_counts(self, path: Path):
        """Past max_pending, record() drops (and counts) instead of blocking."""
        recorder = ExposureRecorder(path, batch_size=10, max_pending=10, start=False)
        row = ("d", "v", "c", "a", (), "p", NOW)

        recorder.record([row] * 8)
        recorder.record([row] * 5)
        recorder.close()

        assert (5, 8) == (recorder.dropped, len(exposure_rows(path)))

    def test_batches_are_written_by_the_thread(self, path: Path):
        """A full batch wakes the writer before the flush interval."""
        recorder = ExposureRecorder(path, batch_size=5, flush_interval=60)
        try:
            recorder.record([(f"d{i}", "v", "c", "a", ("s",), "p", NOW) for i in range(5)])
            for _ in range(200):
                if recorder.written == 5:
                    break
                threading.Event().wait(0.01)

            assert 5 == recorder.written
        finally:
            recorder.close()

    @pytest.mark.parametrize("one_statement", [True, False], ids=["json", "row-by-row"])
    def test_rows_equal_the_exposures_recorded(self, path: Path, one_statement: bool):
        """Shared segment lists and timestamps are encoded once, yet every row is exact,
        written as one statement (JSON) or row by row: repeated, distinct, empty and
        list-typed segments, shared and distinct times, quotes and non-ASCII text."""
        later = datetime(2026, 11, 9, 10, 0, 0, 250, tzinfo=UTC)
        other_zone = datetime(2026, 11, 9, 11, 0, tzinfo=timezone(timedelta(hours=1)))
        recorded = [
            ("d1", "v1", "c1", "control", ("s1", "s2"), "hero", NOW),
            ("d2", "v1", "c2", "holdout", ("s1", "s2"), "side", NOW),
            ("d3", "v2", "c1", "treatment", (), "hero", later),
            ("d4", "v2", "c3", "treatment", ["s3"], "side", later),
            ("d5", "v3", "c1", "control", ("s1", "s2"), "hero", other_zone),
            ("d6", "v3", "c1", "control", ("s2", "s1"), "hero", NOW),
            ("d7", 'q"\\ü✓😀', "c1", "control", ('s"1',), "hero", NOW),
        ]
        recorder = ExposureRecorder(path, start=False)
        recorder._json = one_statement

        recorder.record(recorded)
        recorder.close()

        at_now, at_later = "2026-11-09T10:00:00.000000Z", "2026-11-09T10:00:00.000250Z"
        odd = 'q"\\ü✓😀'
        assert [
            ("d1", "v1", "v1", "c1", "control", '["s1","s2"]', "hero", at_now),
            ("d2", "v1", "v1", "c2", "holdout", '["s1","s2"]', "side", at_now),
            ("d3", "v2", "v2", "c1", "treatment", "[]", "hero", at_later),
            ("d4", "v2", "v2", "c3", "treatment", '["s3"]', "side", at_later),
            ("d5", "v3", "v3", "c1", "control", '["s1","s2"]', "hero", at_now),
            ("d6", "v3", "v3", "c1", "control", '["s2","s1"]', "hero", at_now),
            ("d7", odd, odd, "c1", "control", '["s\\"1"]', "hero", at_now),
        ] == exposure_rows(path)

    def test_nul_characters_are_kept(self, path: Path):
        """SQLite's JSON functions would cut text at a NUL: such a batch is written row
        by row, and the ids arrive whole."""
        recorder = ExposureRecorder(path, start=False)

        recorder.record(
            [
                ("d\x001", "v\x001", "c", "a", ("s\x00",), "p", NOW),
                ("d2", "v", "c", "a", (), "p", NOW),
            ]
        )
        recorder.close()

        assert [("d\x001", "v\x001", '["s\\u0000"]'), ("d2", "v", "[]")] == [
            (row[0], row[1], row[5]) for row in exposure_rows(path)
        ]

    def test_aliases_resolve_in_both_statements(self, path: Path):
        """The stored visitor is the canonical id of an alias, the source id the one
        Decide was called with, whichever statement writes the batch."""
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO aliases (alias, canonical) VALUES ('anon', 'cust')")
        for one_statement in (True, False):
            recorder = ExposureRecorder(path, start=False)
            recorder._json = one_statement
            recorder.record(
                [("d", "anon", "c", "a", (), "p", NOW), ("e", "x", "c", "a", (), "p", NOW)]
            )
            recorder.close()

        rows = exposure_rows(path)

        assert [("cust", "anon"), ("x", "x")] * 2 == [(row[1], row[2]) for row in rows]


class TestDurable:
    """exposures_durable: Decide answers once its exposures are committed and synced."""

    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        file = tmp_path / "profiles.db"
        SQLiteProfileStore(file).close()
        return file

    def test_record_durably_returns_once_the_rows_are_in_the_file(self, path: Path):
        """Each awaited exposure is readable from another connection once its call returns."""
        recorder = ExposureRecorder(path, flush_interval=60, durable=True)

        async def calls() -> list[int]:
            seen = []
            for i in range(5):
                await recorder.record_durably([(f"d{i}", "v", "c", "a", (), "p", NOW)])
                seen.append(len(exposure_rows(path)))
            return seen

        try:
            seen = asyncio.run(calls())
        finally:
            recorder.close()

        assert [1, 2, 3, 4, 5] == seen

    def test_concurrent_calls_share_commits(self, path: Path):
        """200 calls waiting at once: every row stored once, in fewer commits than calls."""
        recorder = ExposureRecorder(path, flush_interval=60, durable=True)
        commits = _count_commits(recorder)

        async def calls() -> None:
            await asyncio.gather(
                *(
                    recorder.record_durably([(f"d{i}", "v", "c", "a", (), "p", NOW)])
                    for i in range(200)
                )
            )

        try:
            asyncio.run(calls())
        finally:
            recorder.close()

        assert sorted(f"d{i}" for i in range(200)) == sorted(row[0] for row in exposure_rows(path))
        assert commits[0] < 200

    def test_a_full_disk_fails_the_call_and_drops_its_rows(self, path: Path, caplog):
        """A failed write fails its call naming the file and drops its rows; the next works."""
        from server.errors import StoreFullError

        recorder = ExposureRecorder(path, flush_interval=60, durable=True)
        (pages,) = recorder._conn.execute("PRAGMA page_count").fetchone()
        recorder._conn.execute(f"PRAGMA max_page_count = {pages}")
        big = [(f"full-{i}", "v" * 200, "c", "a", (), "p", NOW) for i in range(2000)]

        async def full_then_space() -> str:
            with pytest.raises(StoreFullError) as info:
                await recorder.record_durably(big)
            recorder._conn.execute("PRAGMA max_page_count = 1073741823")
            await recorder.record_durably([("after", "v", "c", "a", (), "p", NOW)])
            return str(info.value)

        try:
            with caplog.at_level(logging.WARNING, logger="decide.server"):
                message = asyncio.run(full_then_space())
        finally:
            recorder.close()

        assert str(path) in message
        assert [f"writing exposures to {path} failed"] == [
            r.getMessage().split(":", 1)[0] for r in caplog.records if r.levelno >= logging.WARNING
        ]
        assert (["after"], 2000) == ([row[0] for row in exposure_rows(path)], recorder.dropped)

    def test_a_served_decision_is_on_disk_when_decide_answers(
        self, store: Any, start_server: Any, admin_metadata: Any, db_path: Path
    ):
        """With exposures_durable, an answered Decide's exposure is already in the file."""
        running = start_server(clock=lambda: NOW, exposures_durable=True)
        running.admin.PublishRules(
            pb.PublishRulesRequest(document_json=json.dumps(RULES)), metadata=admin_metadata
        )
        stored = []
        for i in range(10):
            decision_id = running.decide("hero", visitor=f"d-{i}").decisions[0].decision_id
            stored.append(decision_id in {row[0] for row in exposure_rows(db_path)})

        assert [True] * 10 == stored


def _count_commits(recorder: ExposureRecorder) -> list[int]:
    """A one-element list counting the transactions ``recorder`` commits from now on."""
    commits = [0]
    recorder._conn.set_trace_callback(
        lambda statement: commits.__setitem__(0, commits[0] + (statement == "COMMIT"))
    )
    return commits
