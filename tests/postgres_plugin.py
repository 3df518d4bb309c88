"""pytest fixtures for a real PostgreSQL: one throwaway cluster per session, a fresh
empty database per test.

- ``postgres_bindir`` (session): the folder with ``initdb``, ``pg_ctl`` and ``postgres``,
  for tests that start clusters of their own (``PostgresCluster(postgres_bindir)``).
- ``postgres_cluster`` (session): a started ``PostgresCluster`` (tests/postgres_cluster.py),
  stopped and removed at the end of the session, whatever the tests did.
- ``postgres_dsn``: ``postgresql://decide@127.0.0.1:PORT/<db>`` of a database created
  for this test alone (a copy of the session's empty template) and dropped after it.

Every test that uses any of them gets the ``postgres`` marker, so ``-m "not postgres"`` leaves
them out. Without PostgreSQL's server binaries they skip, saying how to install them;
with ``DECIDE_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it) a missing PostgreSQL is a
failure, and so is a ``postgres`` test that skips for any reason: in CI they must run.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Generator, Iterator
from itertools import count
from pathlib import Path

import pytest

from tests.postgres_cluster import INSTALL_HINT, PostgresCluster, PostgresNotFound, find_bindir

ENV_REQUIRE = "DECIDE_REQUIRE_POSTGRES"
MARKER = "postgres"
TEMPLATE = "decide_template"

_FIXTURES = frozenset({"postgres_bindir", "postgres_cluster", "postgres_dsn"})
_database_numbers = count(1)
_STARTED = pytest.StashKey[list[PostgresCluster]]()


def postgres_required() -> bool:
    """True when a missing or skipped PostgreSQL must fail the run (CI)."""
    return os.environ.get(ENV_REQUIRE, "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_bindir() -> Path:
    """The folder with PostgreSQL's server binaries. Without one the test skips, saying
    how to install them, or fails under DECIDE_REQUIRE_POSTGRES."""
    try:
        return find_bindir()
    except PostgresNotFound as exc:
        missing = f"{exc}; {INSTALL_HINT}"
    if postgres_required():
        pytest.fail(f"{ENV_REQUIRE} is set and {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="session")
def postgres_cluster(
    postgres_bindir: Path, pytestconfig: pytest.Config
) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on a free loopback port for the whole session, with
    an empty ``decide_template`` database to copy; stopped and removed at the end."""
    cluster = PostgresCluster(postgres_bindir)
    # Binaries that are there but fail to start are an error, never a skip.
    cluster.start()
    pytestconfig.stash.setdefault(_STARTED, []).append(cluster)
    try:
        cluster.create_database(TEMPLATE)
        cluster.create_seconds.clear()  # the per-test figures should not include it
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_dsn(
    postgres_cluster: PostgresCluster, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The DSN of a new empty database for this test alone, dropped when it ends (with
    any connection the test left open)."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    name = f"t{next(_database_numbers)}_{slug}"[:63]
    dsn = postgres_cluster.create_database(name, template=TEMPLATE)
    try:
        yield dsn
    finally:
        postgres_cluster.drop_database(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL, directly or through another fixture."""
    for item in items:
        if _FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(MARKER)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under DECIDE_REQUIRE_POSTGRES, a postgres test that skips has failed."""
    report = yield
    if (report.skipped and not hasattr(report, "wasxfail") and postgres_required()
            and item.get_closest_marker(MARKER) is not None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"{ENV_REQUIRE} is set: PostgreSQL tests must run, but this one skipped: {reason}"
        )
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """One line with what the cluster cost this session, when one was started."""
    for cluster in config.stash.get(_STARTED, []):
        creates, drops = cluster.create_seconds, cluster.drop_seconds
        line = f"postgres: cluster started in {cluster.start_seconds:.2f} s"
        if creates:
            line += (f"; {len(creates)} test databases, created in "
                     f"{statistics.median(creates) * 1000:.0f} ms (median, max "
                     f"{max(creates) * 1000:.0f}), dropped in "
                     f"{statistics.median(drops or [0]) * 1000:.0f} ms")
        terminalreporter.write_line(line)
