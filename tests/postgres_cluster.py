"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder,
listening on one free loopback port, stopped and removed by its owner (or, if the owner
dies, by a small reaper process).

No pytest here: ``tests/postgres_plugin.py`` wraps it in fixtures, and ``bench/`` scripts
start one directly. PostgreSQL refuses to run as root, so when we are root the cluster
runs as the ``postgres`` system user (Debian's package creates it) or, without one, as a
``decide-pg`` system user created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_BINDIR = "DECIDE_PG_BINDIR"
"""A folder holding ``initdb``, ``pg_ctl`` and ``postgres``; beats every other place."""

ENV_USER = "DECIDE_PG_USER"
"""The system user the cluster runs as when we are root (default: postgres, else decide-pg)."""

ENV_TMPDIR = "DECIDE_PG_TMPDIR"
"""Where the cluster's temporary folder goes (default: /dev/shm when roomy, else TMPDIR)."""

SUPERUSER = "decide"
"""The database superuser (a role in the cluster, not a system user)."""

FALLBACK_SYSTEM_USER = "decide-pg"

# On a disk shared with other jobs, CREATE DATABASE took 200-500 ms (its checkpoint and
# file copy wait on I/O even with fsync off); in memory, 20-30 ms. A test cluster holds
# ~40 MB plus ~8 MB per live database, so use /dev/shm only with room to spare: Docker's
# default 64 MB /dev/shm is not.
_SHM_MIN_FREE = 1 << 30

INSTALL_HINT = (
    "install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install -y postgresql; "
    "`make test` as root on Debian does it) or point DECIDE_PG_BINDIR at their folder"
)

# Settings fit for a cluster that lives for one test session: nothing needs to survive a
# crash, so skip every flush; listen on loopback only, with the socket in our private folder.
_TEST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "64MB",
    "max_connections": "100",
    "timezone": "'UTC'",
    "lc_messages": "'C'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}

# Trust, but only over loopback TCP and over the socket in our 0700 folder.
_PG_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"

# Runs beside the cluster, as its owner's child in a session of its own (Ctrl-C in the
# terminal does not reach it). It waits for end of file on stdin, which comes when the
# owner closes the pipe in stop() or when the owner dies, however it dies; then it makes
# sure the server is stopped and removes the folder. So a killed pytest leaves neither a
# running postmaster nor 40 MB in /tmp.
_REAPER = r"""
import shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
pg_ctl, data, base, uid, gid = sys.argv[1:6]
sys.stdin.buffer.read()
kwargs = {"user": int(uid), "group": int(gid), "extra_groups": []} if int(uid) >= 0 else {}
subprocess.run([pg_ctl, "stop", "-D", data, "-m", "immediate", "-s"], cwd="/",
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, **kwargs)
shutil.rmtree(base, ignore_errors=True)
"""


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


class PostgresStartError(RuntimeError):
    """The binaries are there, but initdb or the server failed; the message has the log."""


@dataclass(frozen=True, slots=True)
class SystemUser:
    """The system user the cluster's processes run as (only when we are root)."""

    name: str
    uid: int
    gid: int


def find_bindir(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder with PostgreSQL's server binaries: $DECIDE_PG_BINDIR, then
    ``pg_config --bindir``, then the newest /usr/lib/postgresql/*/bin, then ``postgres``
    on PATH. Raises PostgresNotFound naming the places it looked."""
    looked: list[str] = []
    explicit = environ.get(ENV_BINDIR)
    if explicit:
        if _has_server_binaries(Path(explicit)):
            return Path(explicit)
        raise PostgresNotFound(
            f"PostgreSQL server binaries not found in {ENV_BINDIR}={explicit} "
            "(it has no initdb, pg_ctl and postgres)"
        )
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            # libpq-dev's pg_config names the server's bindir even when no server is installed.
            candidates.append(Path(out))
    looked.append("pg_config --bindir")
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    candidates.extend(versions)
    looked.append("/usr/lib/postgresql/*/bin")
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    looked.append("PATH")
    for candidate in candidates:
        if _has_server_binaries(candidate):
            return candidate
    raise PostgresNotFound(
        f"PostgreSQL server binaries not found (looked in {ENV_BINDIR}, {', '.join(looked)})"
    )


def _has_server_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def system_user(environ: Mapping[str, str] = os.environ) -> SystemUser | None:
    """None when we are not root (the cluster runs as us). As root: $DECIDE_PG_USER, else
    ``postgres``, else ``decide-pg``, which is created (a system user with no home and no
    login shell) the first time and reused afterwards."""
    if os.geteuid() != 0:
        return None
    wanted = environ.get(ENV_USER)
    for name in [wanted] if wanted else ["postgres", FALLBACK_SYSTEM_USER]:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return SystemUser(name, entry.pw_uid, entry.pw_gid)
    if wanted:
        raise PostgresStartError(f"{ENV_USER}={wanted}: no such system user")
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresStartError(
            f"running as root, PostgreSQL refuses root, and there is neither a postgres nor a "
            f"{FALLBACK_SYSTEM_USER} user, nor useradd to create one; set {ENV_USER}"
        )
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "decide test PostgreSQL",
         FALLBACK_SYSTEM_USER],
        capture_output=True, text=True, timeout=30, check=False,
    )
    try:  # another process may have created it at the same moment: its user is as good
        entry = pwd.getpwnam(FALLBACK_SYSTEM_USER)
    except KeyError:
        raise PostgresStartError(
            f"could not create system user {FALLBACK_SYSTEM_USER}: {result.stderr.strip()}"
        ) from None
    return SystemUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _temp_parent(user: SystemUser | None, environ: Mapping[str, str]) -> Path:
    """Where to make the cluster's folder: $DECIDE_PG_TMPDIR, else /dev/shm when it is a
    memory file system with room to spare, else the temp dir. When the cluster runs as
    another user, every folder on the way must let it through."""
    if environ.get(ENV_TMPDIR):
        candidates = [Path(environ[ENV_TMPDIR])]
    else:
        candidates = [Path(tempfile.gettempdir()), Path("/tmp")]
        with contextlib.suppress(OSError):
            shm = os.statvfs("/dev/shm")
            if shm.f_bavail * shm.f_frsize >= _SHM_MIN_FREE:
                candidates.insert(0, Path("/dev/shm"))
    for candidate in candidates:
        if user is None:
            return candidate
        chain = [candidate.resolve(), *candidate.resolve().parents]
        if all(p.stat().st_mode & stat.S_IXOTH for p in chain):
            return candidate
    raise PostgresStartError(
        f"no temporary folder that user {user.name} can reach (tried "
        f"{', '.join(map(str, candidates))}); set {ENV_TMPDIR}"
    )


class PostgresCluster:
    """One throwaway cluster. ``start()`` runs initdb and the server; ``stop()`` stops it
    and removes its folder. Also a context manager.

    Connect over TCP with ``dsn(dbname)``: ``postgresql://decide@127.0.0.1:PORT/dbname``,
    no password (trust, loopback only).
    """

    def __init__(self, bindir: Path | None = None, *, environ: Mapping[str, str] = os.environ,
                 settings: Mapping[str, str] | None = None) -> None:
        self.bindir = bindir if bindir is not None else find_bindir(environ)
        self.user = system_user(environ)
        self.parent = _temp_parent(self.user, environ)
        self.settings = {**_TEST_SETTINGS, **(settings or {})}
        self.host = "127.0.0.1"
        self.port = 0
        self.base: Path | None = None
        self.start_seconds = 0.0
        self.create_seconds: list[float] = []
        self.drop_seconds: list[float] = []
        self._reaper: subprocess.Popen[bytes] | None = None
        self._admin: _AdminConnection | None = None

    @property
    def datadir(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URI for ``dbname`` over loopback TCP."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """initdb into a new temporary folder and start the server on a free loopback
        port; raises PostgresStartError with the log when either fails."""
        began = time.perf_counter()
        self.base = Path(tempfile.mkdtemp(prefix="decide-pg-", dir=self.parent))
        try:
            if self.user is not None:
                os.chown(self.base, self.user.uid, self.user.gid)
            self._initdb()
            self._start_reaper()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - began

    def stop(self) -> None:
        """Stop the server (immediate shutdown: nothing in it is worth a checkpoint) and
        remove the folder; safe to call twice, and on a cluster that failed to start."""
        if self.base is None:
            return
        if self._admin is not None:
            with contextlib.suppress(Exception):  # stopping anyway
                self._admin.close()
            self._admin = None
        if (self.datadir / "postmaster.pid").exists():
            self._run([self.bindir / "pg_ctl", "stop", "-D", self.datadir, "-m", "immediate",
                       "-w", "-s"], check=False)
        if self._reaper is not None:
            assert self._reaper.stdin is not None
            self._reaper.stdin.close()
            try:
                self._reaper.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait()
            self._reaper = None
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        self.port = 0

    def shutdown(self, mode: str = "fast") -> None:
        """Stop the server but keep its data and port, as a crash or an operator's
        restart would (``mode``: pg_ctl's smart, fast or immediate); ``resume()``
        starts it again. Clients' connections are cut."""
        if self._admin is not None:
            with contextlib.suppress(Exception):  # its connection is about to go anyway
                self._admin.close()
            self._admin = None
        self._run([self.bindir / "pg_ctl", "stop", "-D", self.datadir, "-m", mode, "-w", "-s"])

    def resume(self) -> None:
        """Start the server again after ``shutdown()``, on the same port with the same data."""
        self._run([self.bindir / "pg_ctl", "start", "-D", self.datadir, "-l", self.log_path,
                   "-w", "-t", "60", "-s", "-o", f"-p {self.port}"])

    @property
    def postmaster_pid(self) -> int | None:
        """The server's pid while it runs, from postmaster.pid."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    # -- databases -------------------------------------------------------------------

    def query(self, statement: str, *args: object) -> list[tuple[Any, ...]]:
        """Run ``statement`` as the superuser in the ``postgres`` database (one connection,
        kept open) and return its rows as tuples; callable from sync code or a loop."""
        if self._admin is None:
            self._admin = _AdminConnection(self.dsn())
        return self._admin.query(statement, *args)

    def create_database(self, name: str, template: str = "template1") -> str:
        """Create an empty database ``name`` as a copy of ``template``; returns its DSN.

        FILE_COPY: copying a small template's files beats WAL-logging every page of it
        (PostgreSQL 15's default), which is for large templates."""
        statement = f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(template)}"
        if self.server_version() >= 15:  # STRATEGY is new in 15
            statement += " STRATEGY FILE_COPY"
        began = time.perf_counter()
        self.query(statement)
        self.create_seconds.append(time.perf_counter() - began)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any connection a test left open to it."""
        began = time.perf_counter()
        self.query(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        self.drop_seconds.append(time.perf_counter() - began)

    def server_version(self) -> int:
        """The server's major version, e.g. 15."""
        return int(self.query("SHOW server_version_num")[0][0]) // 10000

    # -- steps -----------------------------------------------------------------------

    def _initdb(self) -> None:
        self._run([self.bindir / "initdb", "-D", self.datadir, "-U", SUPERUSER, "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        (self.datadir / "pg_hba.conf").write_text(_PG_HBA)
        settings = {**self.settings, "unix_socket_directories": f"'{self.socket_dir}'"}
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# decide tests (tests/postgres_cluster.py)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_reaper(self) -> None:
        uid, gid = (self.user.uid, self.user.gid) if self.user else (-1, -1)
        self._reaper = subprocess.Popen(
            [sys.executable, "-c", _REAPER, str(self.bindir / "pg_ctl"), str(self.datadir),
             str(self.base), str(uid), str(gid)],
            stdin=subprocess.PIPE, start_new_session=True, close_fds=True,
        )

    def _start_server(self) -> None:
        # The port is free when we ask and may be taken before the server binds it;
        # then pick another.
        for _attempt in range(5):
            self.port = free_port()
            result = self._run(
                [self.bindir / "pg_ctl", "start", "-D", self.datadir, "-l", self.log_path,
                 "-w", "-t", "60", "-s", "-o", f"-p {self.port}"],
                check=False,
            )
            if result.returncode == 0:
                return
            if "Address already in use" not in self._log_tail():
                break
        raise PostgresStartError(
            f"PostgreSQL did not start (pg_ctl exit {result.returncode}): "
            f"{result.stdout.strip()} {result.stderr.strip()}\n--- {self.log_path}\n"
            f"{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _run(self, args: list[str | Path], *, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the cluster's user, in its folder, with none of the
        caller's PG* variables (a developer's PGPORT must not leak in)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs.update(user=self.user.uid, group=self.user.gid, extra_groups=[])
        result = subprocess.run(
            [str(a) for a in args], cwd=self.base, env=env, capture_output=True, text=True,
            timeout=timeout, check=False, **kwargs,  # type: ignore[call-overload]
        )
        if check and result.returncode != 0:
            raise PostgresStartError(
                f"{Path(args[0]).name} failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result


@contextlib.contextmanager
def running_cluster(**kwargs: object) -> Iterator[PostgresCluster]:
    """``with running_cluster() as cluster:`` for scripts (bench/)."""
    cluster = PostgresCluster(**kwargs)  # type: ignore[arg-type]
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class _AdminConnection:
    """An asyncpg connection on an event loop of its own, in a thread of its own, so sync
    fixtures can use it, and so can code that already runs inside another loop."""

    def __init__(self, dsn: str) -> None:
        import asyncpg

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postgres-admin", daemon=True)
        self._thread.start()
        try:
            self._conn = self._run(asyncpg.connect(dsn))
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    def query(self, statement: str, *args: object) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._run(self._conn.fetch(statement, *args))]

    def close(self) -> None:
        try:
            self._run(self._conn.close(timeout=10))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
