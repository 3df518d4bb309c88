"""One behaviour table, every backend: the fixtures that open a storage on each.

``backend`` is parametrized over the SQLite store (a file in ``tmp_path``) and the
PostgreSQL store (a fresh database from ``postgres_dsn``, migrated). A test asks it
for as many storages on the same store as it needs (``backend.open()``), as several
server processes or deciders would hold; each is closed when the test ends. The
PostgreSQL variant carries the ``postgres`` marker, so it skips without a PostgreSQL
(and fails instead under DECIDE_REQUIRE_POSTGRES, as in CI).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from decision import Event, validate_events
from server.config import ServerConfig
from server.postgres.schema import migrate
from server.storage import Storage, open_storage

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@dataclass
class Backend:
    """Opens storages on one store of one backend; closes them all at teardown."""

    name: str
    store: str
    opened: list[Storage] = field(default_factory=list)

    def config(self, **fields: Any) -> ServerConfig:
        return ServerConfig(store=self.store, **{"profile_cache_ttl": 60.0, **fields})

    def open(self, **fields: Any) -> Storage:
        """A storage on the store (a 60 s profile cache unless ``fields`` say)."""
        storage = open_storage(self.config(**fields))
        self.opened.append(storage)
        return storage

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the store directly (around the API); its rows."""
        if self.name == "postgres":
            with psycopg.connect(self.store, autocommit=True) as conn:
                cursor = conn.execute(statement.replace("?", "%s"), args)  # type: ignore[arg-type]
                return cursor.fetchall() if cursor.description else []
        import sqlite3

        conn = sqlite3.connect(self.store)
        try:
            with conn:
                return conn.execute(statement, args).fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        for storage in reversed(self.opened):
            storage.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A store of each backend, empty (PostgreSQL: migrated to the current schema)."""
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn, dsn)
        opened = Backend("postgres", dsn)
    else:
        opened = Backend("sqlite", str(tmp_path / "store.db"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def storage(backend: Backend) -> Storage:
    """One storage on the backend's store."""
    return backend.open()


def rules_json(marker: str = "v1") -> str:
    """A small valid rules document; ``marker`` is in its campaign's content."""
    return json.dumps(
        {
            "segments": [],
            "placements": [{"id": "slot_0", "fallback": {"fallback": "slot_0"}}],
            "exclusion_groups": [],
            "campaigns": [
                {
                    "id": "main",
                    "placements": ["slot_0"],
                    "variants": [{"id": "only", "weight": 1, "content": {"marker": marker}}],
                }
            ],
        }
    )


@pytest.fixture
def make_rules() -> Callable[[str], str]:
    """``make_rules(marker)``: a valid rules document as JSON text."""
    return rules_json


def make_events(*specs: tuple[Any, ...], visitor: str = "v-1") -> list[Event]:
    """Validated events from ``(event_id, type, minutes_before_NOW, properties[, visitor])``."""
    raw = []
    for spec in specs:
        event_id, kind, minutes = spec[:3]
        raw.append(
            {
                "event_id": event_id,
                "visitor_id": spec[4] if len(spec) > 4 else visitor,
                "type": kind,
                "timestamp": NOW - timedelta(minutes=minutes),
                "properties": spec[3] if len(spec) > 3 else {},
            }
        )
    return validate_events(raw, NOW)


@pytest.fixture
def events() -> Callable[..., list[Event]]:
    """``events(*specs, visitor=)``: validated events (see ``make_events``)."""
    return make_events


_KINDS = ["session_start", "product_view", "add_to_cart", "purchase", "return", "identify"]


def random_log(rng: random.Random, count: int, visitors: int) -> list[Event]:
    """A random valid log over ``visitors`` ids, with colliding order ids and identify
    events (visitor i becomes customer i // 2)."""
    raw = []
    for index in range(count):
        kind = rng.choice(_KINDS)
        properties: dict[str, Any] = {}
        if kind == "product_view":
            properties = {"sku": f"sku-{rng.randrange(9)}", "category": f"c{rng.randrange(5)}"}
        elif kind == "add_to_cart":
            properties = {"sku": f"sku-{rng.randrange(4)}", "quantity": 1, "price": 5}
        elif kind == "purchase":
            properties = {
                "order_id": f"o-{rng.randrange(6)}",
                "value": rng.choice([10, 0.3, 99]),
                "articles": rng.randrange(0, 4),
            }
        elif kind == "return":
            properties = {"order_id": f"o-{rng.randrange(6)}", "articles": 1}
        elif kind == "identify":
            properties = {"customer_id": f"customer-{rng.randrange(visitors) // 2}"}
        raw.append(
            {
                "event_id": f"ev-{index}",
                "visitor_id": f"visitor-{rng.randrange(visitors)}",
                "type": kind,
                "timestamp": NOW - timedelta(minutes=rng.randrange(600)),
                "properties": properties,
            }
        )
    return validate_events(raw, NOW)


@pytest.fixture
def log_of() -> Callable[..., list[Event]]:
    """``log_of(seed, count, visitors)``: a random valid event log (see ``random_log``)."""
    return lambda seed, count, visitors: random_log(random.Random(seed), count, visitors)
