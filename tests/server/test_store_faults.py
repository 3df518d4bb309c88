"""Storage faults get a status that names the cause and the file: a full disk, a file that
cannot be opened, a damaged file (at start and while serving)."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.errors import StoreCorruptError, StoreUnavailableError


def _events(prefix: str, count: int, padding: int = 0) -> pb.TrackRequest:
    request = pb.TrackRequest()
    for i in range(count):
        event = request.events.add(
            event_id=f"{prefix}-{i}", visitor_id=f"{prefix}-visitor-{i % 50}"
        )
        event.type = pb.EVENT_TYPE_PAGE_VIEW
        event.timestamp.FromDatetime(datetime.now(UTC))
        event.page_view.url = "/p/" + "x" * padding
    return request


def _corrupt(path: Path, *, pages: range) -> None:
    """Overwrite whole pages in the middle of a SQLite file with garbage."""
    with sqlite3.connect(path) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as f:
        for page in pages:
            f.seek(page * page_size)
            f.write(bytes([0xA5]) * page_size)


class TestFullDisk:
    def test_a_full_disk_is_resource_exhausted_naming_the_file_and_heals(
        self, running, api_metadata, caplog
    ):
        """Track on a full disk answers RESOURCE_EXHAUSTED saying the disk holding the
        profile store is full (no 'cannot rollback'); once space is back, Track works."""
        events = pb_grpc.EventServiceStub(running.channel)
        events.Track(_events("before", 10), metadata=api_metadata, timeout=10)
        # SQLite's own way to make a database "full": its writer may not grow the file.
        writer = running.server.profiles._db.conn
        (pages,) = writer.execute("PRAGMA page_count").fetchone()
        writer.execute(f"PRAGMA max_page_count = {pages}")

        with caplog.at_level(logging.WARNING), pytest.raises(grpc.RpcError) as info:
            events.Track(_events("full", 400, padding=2000), metadata=api_metadata, timeout=10)
        writer.execute("PRAGMA max_page_count = 1073741823")
        after = events.Track(_events("after", 10), metadata=api_metadata, timeout=10)

        assert grpc.StatusCode.RESOURCE_EXHAUSTED == info.value.code()
        assert "disk is full" in info.value.details()
        assert str(running.server.profiles.path) in info.value.details()
        assert "cannot rollback" not in caplog.text
        assert 10 == after.accepted


class TestUnusableFile:
    def test_a_store_that_cannot_be_opened_names_its_file(self, tmp_path):
        """A store in a folder that does not exist is StoreUnavailableError naming the
        file, and `decide serve` says so and exits 1."""
        from server.app import create_server
        from server.config import ServerConfig
        from server.processes import serve

        missing = tmp_path / "no-such-folder" / "decide.db"
        config = ServerConfig(db_path=str(missing), port=0, processes=1)
        root = logging.getLogger()
        saved = (list(root.handlers), root.level)

        with pytest.raises(StoreUnavailableError) as info:
            create_server(config)
        try:
            code = serve(config)
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])

        assert str(missing) in str(info.value)
        assert "unable to open" in str(info.value)
        assert 1 == code


class TestDamagedFile:
    @pytest.fixture
    def damaged(self, tmp_path, populate) -> Path:
        """A store file with profiles whose middle pages were overwritten."""
        path = tmp_path / "damaged.db"
        from server.rules.sqlite import SQLiteRulesStore

        SQLiteRulesStore(path).close()
        now = datetime.now(UTC)
        from datetime import timedelta

        populate(
            path, 3000, seed=3, start=now - timedelta(days=2), spacing=timedelta(seconds=1), now=now
        )
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
        _corrupt(path, pages=range(pages // 2, pages // 2 + 3))
        return path

    def test_a_damaged_file_is_refused_at_start(self, damaged):
        """The server does not start on a damaged file: StoreCorruptError names it."""
        from server.app import create_server
        from server.config import ServerConfig

        with pytest.raises(StoreCorruptError) as info:
            create_server(ServerConfig(db_path=str(damaged), port=0))

        assert str(damaged) in str(info.value)

    def test_store_check_reports_the_damage(self, damaged, capsys):
        """`decide store check` prints what is wrong with the file and exits 1; a sound
        file is ok and exits 0."""
        sound = damaged.parent / "sound.db"
        from server.rules.sqlite import SQLiteRulesStore

        SQLiteRulesStore(sound).close()

        from cli import main

        bad = main(["store", "check", "--db", str(damaged)])
        bad_out = capsys.readouterr().out
        good = main(["store", "check", "--db", str(sound)])
        good_out = capsys.readouterr().out

        assert 1 == bad
        assert f"rules store {damaged}: the rules store ({damaged}) is damaged" in bad_out
        assert (0, f"rules store {sound}: ok\n") == (good, good_out)

    def test_damage_found_while_serving_is_data_loss_not_internal(
        self, start_server, db_path, populate, admin_metadata
    ):
        """Pages damaged under a running server: reads that hit them answer DATA_LOSS
        naming the file; no call is INTERNAL."""
        from datetime import timedelta

        now = datetime.now(UTC)
        running = start_server()
        populate(
            db_path,
            3000,
            seed=5,
            start=now - timedelta(days=2),
            spacing=timedelta(seconds=1),
            now=now,
        )
        with sqlite3.connect(db_path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
        _corrupt(db_path, pages=range(pages // 4, pages - 2))
        profiles = pb_grpc.ProfileServiceStub(running.channel)
        codes: dict[Any, int] = {}
        details = []

        for v in range(0, 3000, 15):
            try:
                profiles.ExportVisitor(
                    pb.ExportVisitorRequest(visitor_id=f"v{v:05d}"),
                    metadata=admin_metadata,
                    timeout=10,
                )
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
                details.append(error.details())
            codes[code] = codes.get(code, 0) + 1

        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.DATA_LOSS}
        assert codes.get(grpc.StatusCode.DATA_LOSS, 0) > 0
        assert all(str(db_path) in d for d in details)
