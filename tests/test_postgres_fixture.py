"""The throwaway PostgreSQL behind the postgres tests: a real server, a fresh database per
test, loopback only, never root, gone after stop, and the skip-or-fail policy."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tests.postgres_cluster import PostgresCluster
from tests.postgres_plugin import ENV_REQUIRE

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped has stopped running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _refused(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


@pytest.mark.postgres
class TestDatabase:
    @pytest.mark.parametrize("turn", ["first", "second"])
    def test_each_test_gets_a_fresh_empty_database(self, postgres_dsn: str, turn: str) -> None:
        """The database starts with no tables, so both turns can create the same one."""

        async def scenario() -> int:
            conn = await asyncpg.connect(postgres_dsn)
            try:
                tables: int = await conn.fetchval(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                await conn.execute("CREATE TABLE visits (visitor_id text PRIMARY KEY, n int)")
                await conn.execute("INSERT INTO visits VALUES ($1, 1)", turn)
                return tables
            finally:
                await conn.close()

        assert 0 == asyncio.run(scenario())

    def test_dsn_is_loopback_tcp_to_its_own_database(
        self, postgres_dsn: str, postgres_cluster: PostgresCluster
    ) -> None:
        """The DSN reaches the test's database over TCP on 127.0.0.1 as the superuser."""

        async def scenario() -> tuple[object, ...]:
            conn = await asyncpg.connect(postgres_dsn)
            try:
                return tuple(await conn.fetchrow(
                    "SELECT current_database(), host(inet_server_addr()), inet_server_port(), "
                    "current_user"))
            finally:
                await conn.close()

        expected = (postgres_dsn.rsplit("/", 1)[1], "127.0.0.1", postgres_cluster.port, "decide")
        assert expected == asyncio.run(scenario())

    def test_commits_are_visible_across_connections(self, postgres_dsn: str) -> None:
        """Another connection sees a committed row, and not a row still uncommitted."""

        async def scenario() -> tuple[list[int], list[int]]:
            writer = await asyncpg.connect(postgres_dsn)
            reader = await asyncpg.connect(postgres_dsn)
            try:
                await writer.execute("CREATE TABLE rules (version int PRIMARY KEY)")
                await writer.execute("INSERT INTO rules VALUES (1)")
                seen = "SELECT array_agg(version ORDER BY version) FROM rules"
                async with writer.transaction():
                    await writer.execute("INSERT INTO rules VALUES (2)")
                    during = await reader.fetchval(seen)
                return during, await reader.fetchval(seen)
            finally:
                await writer.close()
                await reader.close()

        assert ([1], [1, 2]) == asyncio.run(scenario())

    def test_listen_notify_between_connections(self, postgres_dsn: str) -> None:
        """A notification sent on one connection reaches a listener on another."""

        async def scenario() -> tuple[str, str]:
            listener = await asyncpg.connect(postgres_dsn)
            sender = await asyncpg.connect(postgres_dsn)
            heard: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

            def on_note(_conn: object, _pid: int, channel: str, payload: str) -> None:
                if not heard.done():
                    heard.set_result((channel, payload))

            try:
                await listener.add_listener("rules_published", on_note)
                await sender.execute("SELECT pg_notify('rules_published', '42')")
                return await asyncio.wait_for(heard, 10)
            finally:
                await listener.close()
                await sender.close()

        assert ("rules_published", "42") == asyncio.run(scenario())

    def test_drop_ends_connections_left_open(self, postgres_cluster: PostgresCluster) -> None:
        """Dropping a test database ends a connection the test forgot to close."""

        async def scenario() -> None:
            dsn = postgres_cluster.create_database("left_open", template="decide_template")
            forgotten = await asyncpg.connect(dsn)
            try:
                postgres_cluster.drop_database("left_open")
                with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
                    await forgotten.fetchval("SELECT 1")
            finally:
                forgotten.terminate()

        asyncio.run(scenario())
        assert [] == postgres_cluster.query(
            "SELECT datname FROM pg_database WHERE datname = 'left_open'")


@pytest.mark.postgres
class TestCluster:
    def test_listens_on_loopback_only_with_trust_for_loopback_only(
        self, postgres_cluster: PostgresCluster
    ) -> None:
        """The server listens on 127.0.0.1 alone; trust covers loopback TCP and its socket."""
        listen = postgres_cluster.query("SHOW listen_addresses")
        rules = postgres_cluster.query(
            "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number")

        assert [("127.0.0.1",)] == listen
        assert [("local", None, "trust"), ("host", "127.0.0.1", "trust")] == rules

    def test_settings_fit_for_tests(self, postgres_cluster: PostgresCluster) -> None:
        """Nothing is flushed to disk: the cluster lives for one session."""
        settings = {
            name: postgres_cluster.query(f"SHOW {name}")[0][0]
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }

        assert {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"} == settings

    def test_server_never_runs_as_root(self, postgres_cluster: PostgresCluster) -> None:
        """The postmaster runs as the cluster's system user when we are root, else as us."""
        pid = postgres_cluster.postmaster_pid
        assert pid is not None
        expected = postgres_cluster.user.uid if postgres_cluster.user else os.geteuid()

        assert expected == _uid_of(pid)
        assert 0 != _uid_of(pid)

    @pytest.mark.slow
    def test_stop_leaves_nothing_behind(self, postgres_bindir: Path) -> None:
        """After stop the server process is gone, its port refuses and its folder is removed."""
        cluster = PostgresCluster(postgres_bindir)
        cluster.start()
        try:
            pid, port, base = cluster.postmaster_pid, cluster.port, cluster.base
            assert pid is not None and base is not None
            assert [(1,)] == cluster.query("SELECT 1")
        finally:
            cluster.stop()

        assert (False, True, False) == (_alive(pid), _refused(port), base.exists())

    @pytest.mark.slow
    def test_cluster_of_a_killed_owner_is_reaped(self, postgres_bindir: Path) -> None:
        """When the process that started a cluster dies by SIGKILL, the cluster stops and
        its folder goes anyway."""
        script = (
            "import sys, time\n"
            "from pathlib import Path\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.postgres_cluster import PostgresCluster\n"
            f"c = PostgresCluster(Path({str(postgres_bindir)!r})); c.start()\n"
            "print(c.postmaster_pid, c.port, c.base, flush=True)\n"
            "time.sleep(120)\n"
        )
        with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True) as owner:
            try:
                assert owner.stdout is not None
                started = owner.stdout.readline()
                assert started, "the owner process did not start its cluster"
                pid_text, port_text, base_text = started.split()
            finally:
                owner.send_signal(signal.SIGKILL)
        pid, port, base = int(pid_text), int(port_text), Path(base_text)
        deadline = time.monotonic() + 30
        while (_alive(pid) or base.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert (False, True, False) == (_alive(pid), _refused(port), base.exists())


class TestPolicy:
    """When postgres tests skip and when they fail: pytest run inside the test."""

    # Without hypothesis's plugin: the inner run would import it afresh each time (seconds).
    ARGS = ("-p", "tests.postgres_plugin", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")

    TEST_FILE = (
        "def test_needs_database(postgres_dsn):\n"
        "    '''Wants a database.'''\n"
    )

    @pytest.fixture
    def no_postgres(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                    tmp_path: Path) -> pytest.Pytester:
        """A pytester whose runs find no PostgreSQL binaries (an empty DECIDE_PG_BINDIR)."""
        empty = tmp_path / "empty-bin"
        empty.mkdir()
        monkeypatch.setenv("DECIDE_PG_BINDIR", str(empty))
        pytester.makepyfile(test_inner=self.TEST_FILE)
        return pytester

    def test_missing_postgres_skips_saying_how_to_install(
        self, no_postgres: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a developer's machine without PostgreSQL the test skips with an install hint."""
        monkeypatch.delenv(ENV_REQUIRE, raising=False)
        result = no_postgres.runpytest(*self.ARGS, "-rs")

        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*server binaries not found*apt-get install -y postgresql*"])

    def test_missing_postgres_fails_when_required(
        self, no_postgres: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With DECIDE_REQUIRE_POSTGRES=1 (CI) a missing PostgreSQL is an error, not a skip."""
        monkeypatch.setenv(ENV_REQUIRE, "1")
        result = no_postgres.runpytest(*self.ARGS)

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([f"*{ENV_REQUIRE} is set and PostgreSQL server binaries*"])

    def test_skipped_postgres_test_fails_when_required(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With DECIDE_REQUIRE_POSTGRES=1 a postgres test that skips for any reason fails."""
        monkeypatch.setenv(ENV_REQUIRE, "1")
        pytester.makepyfile(test_inner=(
            "import pytest\n"
            "@pytest.mark.postgres\n"
            "def test_driver_missing():\n"
            "    '''Skips.'''\n"
            "    pytest.importorskip('no_such_driver')\n"
        ))
        result = pytester.runpytest(*self.ARGS)

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*PostgreSQL tests must run, but this one skipped*"])
