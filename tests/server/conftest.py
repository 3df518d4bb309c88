"""Fixtures for server tests: rules documents, a store in tmp_path and real servers on
127.0.0.1:0 that each test's fixture stops in ``finally``."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

ADMIN_TOKEN = "server-test-admin-token"
API_KEY = "server-test-api-key"
ADMIN_METADATA = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
API_METADATA = (("x-api-key", API_KEY),)


def rules_document(marker: str = "v1", *, placements: int = 3) -> dict[str, Any]:
    """A small valid rules document without segment filters. ``marker`` appears in the
    campaign content, so a test can tell which document served a decision."""
    ids = [f"slot_{i}" for i in range(placements)]
    return {
        "segments": [],
        "placements": [{"id": pid, "name": pid, "fallback": {"fallback": pid}} for pid in ids],
        "exclusion_groups": [],
        "campaigns": [
            {
                "id": "main",
                "placements": ids[:1],
                "variants": [{"id": "only", "weight": 1, "content": {"marker": marker}}],
            }
        ],
    }


def rules_json(marker: str = "v1", **kwargs: Any) -> str:
    """``rules_document`` as JSON text."""
    return json.dumps(rules_document(marker, **kwargs), indent=2)


INVALID_RULES_JSON = json.dumps(
    {
        "segments": [],
        "placements": [{"id": "slot_0"}],
        "exclusion_groups": [],
        "campaigns": [{"id": "broken", "placements": ["nowhere"], "variants": []}],
    }
)
"""Parses as JSON but fails validation (unknown placement, no variants)."""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's SQLite rules store lives."""
    return tmp_path / "rules.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Any]:
    """An open RulesStore holding ``rules_json("v1")`` as version 1."""
    from server.rules.sqlite import SQLiteRulesStore as RulesStore

    rules_store = RulesStore(db_path, seed=False)
    try:
        rules_store.publish(rules_json("v1"), comment="test rules", author="tests")
        yield rules_store
    finally:
        rules_store.close()


@dataclass
class Running:
    """A started server with a channel and stubs to call it."""

    server: Any
    port: int
    channel: grpc.Channel
    decisions: pb_grpc.DecisionServiceStub
    admin: pb_grpc.RulesAdminStub
    config: Any
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def decide(self, *placements: str, visitor: str = "visitor-1", **kwargs: Any) -> Any:
        """Decide with the test API key (if the server wants one)."""
        request = pb.DecideRequest(visitor_id=visitor, placements=placements or ["slot_0"])
        return self.decisions.Decide(request, metadata=API_METADATA, timeout=5, **kwargs)

    def status(self) -> pb.GetStatusResponse:
        return self.admin.GetStatus(pb.GetStatusRequest(), metadata=ADMIN_METADATA, timeout=5)


StartServer = Callable[..., Running]


@pytest.fixture
def start_server(db_path: Path) -> Iterator[StartServer]:
    """A factory: ``start_server(**config_fields, store=, profiles=, clock=)`` starts a
    server on 127.0.0.1:0 (by default with the test admin token and poll_interval 0.05).
    Every server it started is stopped when the test ends."""
    from server.app import create_server
    from server.config import ServerConfig

    started: list[Running] = []

    def start(**kwargs: Any) -> Running:
        create_kwargs = {k: kwargs.pop(k) for k in ("store", "profiles", "clock") if k in kwargs}
        fields = {
            "db_path": str(db_path),
            "host": "127.0.0.1",
            "port": 0,
            "admin_token": ADMIN_TOKEN,
            "poll_interval": 0.05,
            "grace": 0.0,
            **kwargs,
        }
        config = ServerConfig(**fields)
        server, port = create_server(config, **create_kwargs)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        running = Running(
            server=server,
            port=port,
            channel=channel,
            decisions=pb_grpc.DecisionServiceStub(channel),
            admin=pb_grpc.RulesAdminStub(channel),
            config=config,
        )
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.channel.close()
            running.server.stop(None).wait(10)


@pytest.fixture
def running(store: Any, start_server: StartServer) -> Running:
    """A server on the ``store`` fixture's file, serving ``rules_json("v1")``."""
    return start_server()


class Gate:
    """A blocking point for tests: ``wait_entered`` until a thread reaches ``block``,
    which then waits until ``release``."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def block(self) -> None:
        self.entered.set()
        if not self.released.wait(10):
            raise TimeoutError("gate never released")

    def release(self) -> None:
        self.released.set()


class GatedProfileStore:
    """A profile reader like a networked store's: ``peek`` never answers, and ``get``
    (called from the server's read pool) blocks on a Gate for visitors named
    ``slow...``: it holds a Decide call in flight."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.needs: Any = None

    def peek(self, visitor_id: str) -> Any:
        from server.profiles.store import MISSING

        return MISSING

    def use_activity(self, needs: Any) -> None:
        self.needs = needs  # it keeps no profiles, so nothing to back-fill

    def activity_status(self) -> Any:
        from server.profiles.backfill import BackfillStatus

        return BackfillStatus()

    def close(self) -> None:
        pass

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        if visitor_id.startswith("slow"):
            self.gate.block()
        return None


# Helpers reach tests as fixtures: with --import-mode=importlib a test module cannot
# import this conftest by name.


@pytest.fixture
def make_rules() -> Callable[..., str]:
    """``make_rules(marker="v1", placements=3)``: a valid rules document as JSON text."""
    return rules_json


@pytest.fixture
def invalid_rules() -> str:
    """JSON text of a document that parses but fails validation."""
    return INVALID_RULES_JSON


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A Gate, released at teardown so no thread stays blocked."""
    g = Gate()
    try:
        yield g
    finally:
        g.release()


@pytest.fixture
def gated_profiles(gate: Gate) -> GatedProfileStore:
    """A ProfileStore that blocks visitors named ``slow...`` on the ``gate``."""
    return GatedProfileStore(gate)


@pytest.fixture
def admin_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata carrying the test admin token."""
    return ADMIN_METADATA


@pytest.fixture
def api_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata carrying the test API key."""
    return API_METADATA


def track_population(
    path: Path, visitors: int, *, seed: int, start: datetime, spacing: timedelta, now: datetime
) -> None:
    """Track ``visitors`` seeded shoppers into the profile store at ``path``: one to three
    sessions each, up to two purchases of 20, 90 or 150, a cart for about one in five;
    visitor ``v`` (id ``v{v:05d}``) arrives at ``start + v * spacing``."""
    from decision import validate_events
    from server.profiles.sqlite import SQLiteProfileStore

    rng = random.Random(seed)
    raw = []
    for v in range(visitors):
        at = start + spacing * v
        mine: list[tuple[str, datetime, dict[str, Any]]] = [
            ("session_start", at + timedelta(seconds=s), {}) for s in range(rng.choice([1, 1, 2, 3]))
        ]
        for o in range(rng.choice([0, 0, 0, 1, 2])):
            value = rng.choice([20, 90, 150])
            order = {"order_id": f"{v}-{o}", "value": value, "articles": 1}
            mine.append(("purchase", at + timedelta(seconds=10 + o), order))
        if rng.random() < 0.2:
            mine.append(("add_to_cart", at + timedelta(seconds=20), {"sku": "S"}))
        raw += [
            {
                "event_id": f"p{v}-{i}",
                "visitor_id": f"v{v:05d}",
                "type": kind,
                "timestamp": ts,
                "properties": props,
            }
            for i, (kind, ts, props) in enumerate(mine)
        ]
    events = validate_events(raw, now)
    with SQLiteProfileStore(path) as profiles:
        for first in range(0, len(events), 1000):
            profiles.track(events[first : first + 1000])


@pytest.fixture(scope="session")
def populate() -> Callable[..., None]:
    """``populate(path, visitors, seed=, start=, spacing=, now=)``: seeded shoppers
    tracked into a profile store (see ``track_population``)."""
    return track_population
