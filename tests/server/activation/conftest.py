"""Fixtures for activation tests: a rules document with notify segments and campaigns, a
clock the test moves, real servers on 127.0.0.1:0 and a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

RULES: dict[str, Any] = {
    "segments": [
        {
            "id": "buyers",
            "filter": {"customer_segment.outbounds_number_total": {"$gte": 1}},
            "notify": True,
        },
        {
            "id": "lapsed",
            "filter": {"customer_segment.last_purchase_date": {"$lte": {"$daysAgo": 60}}},
            "notify": True,
        },
        {
            "id": "winback_not_clicked",
            "filter": {
                "$and": [
                    {"campaigns.seen": "winback_email"},
                    {"campaigns.clicked": {"$ne": "winback_email"}},
                ]
            },
        },
        {"id": "visitors", "filter": {"visits": {"$gte": 1}}},
    ],
    "placements": [
        {"id": "hero", "fallback": {"headline": "Welcome"}},
        {"id": "email_hero", "fallback": {"headline": "Hello again"}},
    ],
    "campaigns": [
        {
            "id": "hero_test",
            "placements": ["hero"],
            "variants": [
                {"id": "a", "weight": 1, "content": {"headline": "A"}},
                {"id": "b", "weight": 1, "content": {"headline": "B"}},
            ],
        },
        {
            "id": "summer_launch",
            "placements": ["hero"],
            "priority": 10,
            "schedule": {"start": "2026-07-15T00:00:00Z"},
            "variants": [{"id": "launch", "content": {"headline": "Summer is here"}}],
        },
        {
            "id": "winback_email",
            "placements": ["email_hero"],
            "audience": {"segments": ["lapsed"]},
            "holdout": 20,
            "variants": [
                {"id": "control", "control": True},
                {"id": "discount", "content": {"headline": "We miss you", "code": "BACK15"}},
            ],
        },
    ],
}


class Clock:
    """The servers' clock, moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    """A clock at NOW that the test moves."""
    return Clock()


@pytest.fixture
def rules() -> dict[str, Any]:
    """A copy of the activation test rules, for the test to edit before publishing."""
    return copy.deepcopy(RULES)


@pytest.fixture
def publish(db_path: Path) -> Callable[[dict[str, Any]], None]:
    """``publish(document)``: store a rules document as the active version."""
    from server.rules.sqlite import SQLiteRulesStore

    def publish(document: dict[str, Any]) -> None:
        with SQLiteRulesStore(db_path, seed=False) as store:
            store.publish(json.dumps(document), comment="activation test", author="tests")

    return publish


def wait_for(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy (its value), failing at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def until() -> Callable[..., Any]:
    """``until(condition, timeout=15)``: poll until truthy; a deadline, not a measure."""
    return wait_for


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request; ``answers`` (HTTP statuses,
    popped one per request; then 200) and ``hang`` (an Event the handler waits on
    before answering) script its behaviour."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        self.hang: threading.Event | None = None
        self.hanging = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    hang = receiver.hang
                if hang is not None:
                    receiver.hanging.set()
                    hang.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/decide"
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        """Every request body received, parsed."""
        with self.lock:
            return [json.loads(body) for _, body in self.requests]

    def stop(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1:0, stopped when the test ends."""
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


def event(event_id: str, visitor: str, kind: str, at: datetime, **properties: Any) -> Any:
    """A proto Event (the properties message chosen by ``kind``)."""
    from protos import decisioning_pb2 as pb

    messages = {
        "session_start": ("session_start", pb.SessionStart),
        "purchase": ("purchase", pb.Purchase),
        "identify": ("identify", pb.Identify),
        "campaign_click": ("campaign", pb.CampaignInteraction),
    }
    field, message = messages[kind]
    built = pb.Event(
        event_id=event_id,
        visitor_id=visitor,
        type=pb.EventType.Value(f"EVENT_TYPE_{kind.upper()}"),
        **{field: message(**properties)},
    )
    built.timestamp.FromDatetime(at)
    return built


@pytest.fixture
def make_event() -> Callable[..., Any]:
    """``make_event(event_id, visitor, kind, at, **properties)``: a proto Event."""
    return event
