"""What only the PostgreSQL backend has: its errors as store errors, schema versions
checked at start, notifications waking the reloader, stale profiles served while the
database is away, and the calls it does not serve yet."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout

from decision import validate_events
from server.config import ConfigError, ServerConfig, parse_store
from server.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreFullError,
    StoreSchemaError,
    StoreUnavailableError,
)
from server.postgres.connections import Database, map_error, redact
from server.postgres.schema import SCHEMA_VERSION, migrate, schema_version
from server.profiles.shared_cache import ProfileCache
from server.profiles.store import MISSING
from server.rules.reloader import Reloader
from server.storage import open_storage

WHERE = "postgresql://decide@db:5432/shop"


def _error(cls: type[psycopg.Error]) -> psycopg.Error:
    return cls("boom")


class TestErrorMapping:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (pg_errors.AdminShutdown, StoreUnavailableError),
            (pg_errors.CannotConnectNow, StoreUnavailableError),
            (pg_errors.TooManyConnections, StoreUnavailableError),
            (pg_errors.ConnectionFailure, StoreUnavailableError),
            (psycopg.OperationalError, StoreUnavailableError),  # refused: no SQLSTATE
            (PoolTimeout, StoreUnavailableError),
            (PoolClosed, StoreUnavailableError),
            (pg_errors.DeadlockDetected, StoreBusyError),
            (pg_errors.SerializationFailure, StoreBusyError),
            (pg_errors.LockNotAvailable, StoreBusyError),
            (pg_errors.DiskFull, StoreFullError),
            (pg_errors.DataCorrupted, StoreCorruptError),
            (pg_errors.IndexCorrupted, StoreCorruptError),
        ],
        ids=lambda value: getattr(value, "__name__", str(value)),
    )
    def test_database_faults_are_store_errors(self, error, expected):
        """Each PostgreSQL fault becomes the store error whose status says what to do."""
        assert expected is type(map_error(_error(error), "profile store", WHERE))

    def test_bugs_are_left_alone(self):
        """A malformed statement is a bug, not a store fault: it stays as it is (INTERNAL)."""
        bug = _error(pg_errors.SyntaxError)

        assert bug is map_error(bug, "profile store", WHERE)

    def test_messages_name_the_database_without_its_password(self):
        """URLs in messages carry user, host, port and database only."""
        assert WHERE == redact("postgresql://decide:s3cret@db:5432/shop?sslmode=require")

    def test_unreachable_database_is_unavailable_at_open(self):
        """A server cannot start on a database nobody answers for: StoreUnavailableError."""
        with pytest.raises(StoreUnavailableError) as caught:
            Database("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1).open(timeout=2)

        assert "postgresql://nobody@127.0.0.1:1/none" in str(caught.value)


class TestConfig:
    @pytest.mark.parametrize(
        ("text", "backend", "where"),
        [
            ("postgresql://u@h:5432/d", "postgresql", "postgresql://u@h:5432/d"),
            ("postgres://u@h/d", "postgresql", "postgres://u@h/d"),
            ("sqlite:///rel/x.db", "sqlite", "rel/x.db"),
            ("sqlite:////abs/x.db", "sqlite", "/abs/x.db"),
            ("decide.db", "sqlite", "decide.db"),
        ],
    )
    def test_store_forms(self, text, backend, where):
        """--store takes a PostgreSQL URL, sqlite:///PATH or a bare path."""
        location = parse_store(text)

        assert (backend, where) == (location.backend, location.url or location.path)

    def test_unknown_scheme_names_the_forms(self):
        """An unknown scheme is a configuration error naming DECIDE_STORE and the forms."""
        with pytest.raises(ConfigError) as caught:
            ServerConfig.from_env({"DECIDE_STORE": "mysql://h/d"})

        assert "DECIDE_STORE" == caught.value.key
        assert "postgresql://" in str(caught.value)

    def test_store_beats_the_db_alias(self):
        """--store names the SQLite file when both it and --db are given."""
        assert "b.db" == ServerConfig.from_env({}, store="b.db", db_path="a.db").db_path


@pytest.fixture
def database(postgres_dsn: str) -> str:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        migrate(conn, postgres_dsn)
    return postgres_dsn


class TestSchema:
    def test_an_unmigrated_database_is_refused_with_what_to_run(self, postgres_dsn):
        """A server refuses an empty database and says which command prepares it."""
        with pytest.raises(StoreSchemaError) as caught:
            open_storage(ServerConfig(store=postgres_dsn))

        assert (0, SCHEMA_VERSION) == (caught.value.found, caught.value.expected)
        assert "decide store migrate --store" in str(caught.value)

    def test_a_newer_schema_is_refused(self, database):
        """A database migrated by a later decide is refused, naming both versions."""
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO decide_schema (version, description) VALUES (%s, 'future')",
                (SCHEMA_VERSION + 1,),
            )

        with pytest.raises(StoreSchemaError) as caught:
            open_storage(ServerConfig(store=database))

        assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)
        assert f"knows version {SCHEMA_VERSION}" in str(caught.value)

    def test_migrating_twice_changes_nothing(self, database):
        """migrate applies only what is missing: the second run is a no-op."""
        with psycopg.connect(database, autocommit=True) as conn:
            again = migrate(conn, database)
            version = schema_version(conn)

        assert ((SCHEMA_VERSION, SCHEMA_VERSION), SCHEMA_VERSION) == (again, version)


class TestNotifications:
    def test_a_publish_wakes_the_reloader_before_its_poll(self, database):
        """With a 60 s poll interval, only the notification can bring a publish in."""
        reader = open_storage(ServerConfig(store=database))
        writer = open_storage(ServerConfig(store=database))
        loaded = threading.Event()
        reloader = Reloader(
            reader.watch_rules(), poll_interval=60, on_load=lambda snapshot: loaded.set()
        )
        try:
            reloader.poll_once()
            reloader.start()
            assert _wait(lambda: reloader.watcher.listening)
            loaded.clear()

            info = writer.rules.publish(writer.rules.get()[1], comment="notify me")

            assert loaded.wait(10)
            assert info.version == reloader.snapshot.version
        finally:
            reloader.stop()
            reader.close()
            writer.close()


class TestStaleIfError:
    def test_a_cached_profile_outlives_its_ttl_only_while_the_database_is_away(self):
        """Past its TTL an entry is no longer fresh, but ``stale`` still has it."""
        now = [0.0]
        cache = ProfileCache(maxsize=10, ttl=1.0, timer=lambda: now[0])
        cache.put("v", {"visits": 1}, cache.generation)

        now[0] = 2.0

        assert (MISSING, {"visits": 1}) == (cache.fresh("v"), cache.stale("v"))

    def test_get_serves_the_stale_profile_when_the_database_is_down(self, database):
        """A profile store whose database stops answering serves what it last read."""
        now = [0.0]
        storage = open_storage(ServerConfig(store=database, profile_cache_ttl=1.0))
        profiles = storage.profiles
        profiles.cache._timer = lambda: now[0]
        at = datetime(2026, 1, 5, 12, tzinfo=UTC)
        raw = {"event_id": "e", "visitor_id": "known", "type": "session_start", "timestamp": at}
        profiles.track(validate_events([{**raw, "properties": {}}], at))
        read = profiles.get("known")
        storage.db.close()  # the database goes away for this store
        now[0] = 5.0

        try:
            assert read is profiles.get("known")
            with pytest.raises(StoreUnavailableError):
                profiles.get("never-read")
        finally:
            storage.close()


class TestNotYetOnPostgres:
    def test_reports_answer_failed_precondition(self, database, tmp_path: Path):
        """Reports, estimates and exports say they are not on PostgreSQL yet, and why."""
        from client import DecisionClient
        from client.errors import FailedPrecondition
        from server.app import create_server

        config = ServerConfig(
            store=database, host="127.0.0.1", port=0, admin_token="t", grace=0
        )
        server, port = create_server(config)
        try:
            with DecisionClient(f"127.0.0.1:{port}", admin_token="t") as client:
                with pytest.raises(FailedPrecondition) as report:
                    client.campaign_report("any")
                with pytest.raises(FailedPrecondition) as estimate:
                    client.estimate_segment({"visits": {"$gte": 1}})
        finally:
            server.stop(None).wait(10)

        assert grpc.StatusCode.FAILED_PRECONDITION == report.value.code
        assert "CampaignReport is not available on the PostgreSQL store yet" in report.value.details
        assert "EstimateSegment" in estimate.value.details
        assert None is server.sizes


def _wait(condition, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
