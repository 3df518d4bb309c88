"""Webhooks against a real server and a receiver on 127.0.0.1: signatures, retries, the
dead-letter list, the allow-list, a hanging receiver, and one deliverer per file."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any

import pytest

from client import DecisionClient
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

ADMIN_TOKEN = "server-test-admin-token"
SECRET = "webhook-test-secret"


def client_for(running: Any) -> DecisionClient:
    """A client with the admin token."""
    return DecisionClient(running.target, admin_token=ADMIN_TOKEN, admin_timeout=30)


def track(running: Any, *events: Any) -> None:
    """Store events through EventService.Track."""
    pb_grpc.EventServiceStub(running.channel).Track(pb.TrackRequest(events=events), timeout=5)


def buyers(make_event: Callable[..., Any], clock: Any, *names: str) -> list[Any]:
    """A purchase for each of ``names``."""
    return [
        make_event(f"{n}-p", n, "purchase", clock.now, order_id=f"{n}-o", value=10, articles=1)
        for n in names
    ]


@pytest.fixture
def hooked(start_server, publish, rules, clock, receiver, until) -> Callable[..., Any]:
    """``hooked(**config)``: a server whose rules POST buyers changes to the receiver,
    with the receiver allowed and its secret configured (both overridable), after the
    worker's baseline sweep (unless ``baseline=False``)."""
    rules["webhooks"] = [{"id": "crm", "url": receiver.url, "segments": ["buyers"]}]
    publish(rules)

    def start(*, baseline: bool = True, **config: Any) -> Any:
        settings = {
            "webhook_allow": (receiver.origin,),
            "webhook_secrets": (("crm", SECRET),),
            "webhook_backoff": 0.05,
            "webhook_attempts": 3,
            "webhook_timeout": 5.0,
            **config,
        }
        running = start_server(clock=clock, **settings)
        if baseline:
            until(lambda: running.server.activation.worker.last_sweep is not None)
        return running

    return start


def deliveries(running: Any, **query: Any) -> list[Any]:
    """The server's delivery log."""
    with client_for(running) as c:
        return c.webhook_deliveries(**query)


class TestDelivery:
    def test_changes_arrive_signed_in_order(self, hooked, receiver, make_event, clock, until):
        """Changes arrive in seq order, HMAC-SHA256 signed, and the log says delivered."""
        running = hooked()
        track(running, *buyers(make_event, clock, "ada", "bob"))

        until(lambda: sum(len(b["changes"]) for b in receiver.bodies()) == 2)
        headers, body = receiver.requests[0]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        changes = [c for b in receiver.bodies() for c in b["changes"]]
        log = until(lambda: [d for d in deliveries(running) if d.status == "delivered"])

        assert expected == headers["X-Decide-Signature"]
        assert [("ada", "buyers", "entered"), ("bob", "buyers", "entered")] == [
            (c["visitor_id"], c["segment"], c["change"]) for c in changes
        ]
        assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
        assert headers["X-Decide-Delivery"] == log[-1].delivery_id

    def test_failed_attempts_are_retried_with_the_same_delivery_id(
        self, hooked, receiver, make_event, clock, until
    ):
        """Two 503s then a 200: three attempts of one delivery, then delivered."""
        receiver.answers = [503, 503]
        running = hooked()
        track(running, *buyers(make_event, clock, "ada"))

        (done,) = until(lambda: deliveries(running, status="delivered"))

        assert (3, 200) == (done.attempts, done.http_status)
        assert {done.delivery_id} == {h["X-Decide-Delivery"] for h, _ in receiver.requests}
        assert ["1", "2", "3"] == [h["X-Decide-Attempt"] for h, _ in receiver.requests]

    def test_a_delivery_failing_every_attempt_is_dead_and_can_be_sent_again(
        self, hooked, receiver, make_event, clock, until
    ):
        """Three 500s: the delivery is dead (the dead-letter list); redelivered, it goes."""
        receiver.answers = [500, 500, 500]
        running = hooked()
        track(running, *buyers(make_event, clock, "ada"))
        (dead,) = until(lambda: deliveries(running, status="dead"))

        with client_for(running) as c:
            queued = c.redeliver_webhook(dead.delivery_id)
        (done,) = until(lambda: deliveries(running, status="delivered"))

        assert (3, 500, "HTTP 500") == (dead.attempts, dead.http_status, dead.error)
        assert ("pending", dead.delivery_id) == (queued.status, done.delivery_id)
        assert 4 == len(receiver.requests)


class TestRefused:
    def test_a_target_off_the_allow_list_is_blocked_not_sent(
        self, hooked, receiver, make_event, clock, until
    ):
        """Without the receiver's origin on the allow-list nothing is sent; the log says why."""
        running = hooked(webhook_allow=("https://crm.example.com",))
        track(running, *buyers(make_event, clock, "ada"))

        (blocked,) = until(lambda: deliveries(running, status="blocked"))

        assert [] == receiver.requests
        assert "allow-list" in blocked.error

    def test_a_webhook_without_a_secret_is_blocked(
        self, hooked, receiver, make_event, clock, until
    ):
        """No secret, no delivery: unsigned changes are never sent."""
        running = hooked(webhook_secrets=())
        track(running, *buyers(make_event, clock, "ada"))

        (blocked,) = until(lambda: deliveries(running, status="blocked"))

        assert ([], True) == (receiver.requests, "secret" in blocked.error)


class TestIsolation:
    def test_a_hanging_receiver_slows_neither_decide_nor_track(
        self, hooked, receiver, make_event, clock, until
    ):
        """While a POST hangs in the receiver, Decide and Track calls keep completing."""
        receiver.hang = threading.Event()
        running = hooked(webhook_timeout=30.0)
        track(running, *buyers(make_event, clock, "ada"))
        assert receiver.hanging.wait(15)

        decided = [running.decide("hero", visitor=f"v{i}").decisions[0].reason for i in range(50)]
        for i in range(20):
            track(running, *buyers(make_event, clock, f"later-{i}"))
        still_hanging = not receiver.hang.is_set() and len(receiver.requests) == 1
        receiver.hang.set()

        assert 50 == len(decided)
        assert still_hanging

    def test_two_servers_on_one_file_deliver_each_change_once(
        self, hooked, receiver, make_event, clock, until
    ):
        """Two servers sharing one file: one holds the lease and each change arrives once."""
        first = hooked()
        second = hooked(baseline=False)  # the lease is the first one's
        names = [f"b{i}" for i in range(10)]
        track(first, *buyers(make_event, clock, *names[:5]))
        track(second, *buyers(make_event, clock, *names[5:]))

        until(lambda: sum(len(b["changes"]) for b in receiver.bodies()) >= 10)
        delivered = [c["visitor_id"] for b in receiver.bodies() for c in b["changes"]]
        holders = [first.server.activation.worker.holding, second.server.activation.worker.holding]

        assert sorted(names) == sorted(delivered)
        assert 1 == holders.count(True)
