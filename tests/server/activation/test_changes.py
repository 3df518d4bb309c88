"""Segment changes against a real server: found after events and by the sweep, streamed
in order, resumable, merged and expired."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from client import DecisionClient, InvalidArgument
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

ADMIN_TOKEN = "server-test-admin-token"


def client_for(running: Any) -> DecisionClient:
    """A client with the admin token."""
    return DecisionClient(running.target, admin_token=ADMIN_TOKEN, admin_timeout=30)


def track(running: Any, *events: Any) -> None:
    """Store events through EventService.Track."""
    pb_grpc.EventServiceStub(running.channel).Track(pb.TrackRequest(events=events), timeout=5)


def buy(make_event: Callable[..., Any], visitor: str, at: Any, n: int = 0) -> list[Any]:
    """A session and a purchase of ``visitor`` at ``at``."""
    return [
        make_event(f"{visitor}-s{n}", visitor, "session_start", at),
        make_event(
            f"{visitor}-p{n}",
            visitor,
            "purchase",
            at,
            order_id=f"{visitor}-{n}",
            value=10,
            articles=1,
        ),
    ]


class Collector:
    """Reads a WatchSegmentChanges stream on a thread; ``changes`` grows as they come."""

    def __init__(self, client: DecisionClient, **watch: Any) -> None:
        self.changes: list[Any] = []
        self.tokens: list[str] = []
        self._stream: Iterator[Any] = client.watch_segment_changes(timeout=60, **watch)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self._stream:
                self.changes += message.changes
                self.tokens.append(message.resume_token)
        except BaseException as exc:  # the stream ends when the test closes the client
            self.error = exc

    def seen(self) -> list[tuple[str, str, str, str]]:
        return [(c.visitor_id, c.segment, c.change, c.reason) for c in self.changes]


@pytest.fixture
def served(start_server, publish, rules, clock, until) -> Any:
    """A server with the activation rules, after its worker's first sweep (the baseline;
    the next is 10 minutes away)."""
    publish(rules)
    running = start_server(clock=clock)
    until(lambda: running.server.activation.worker.last_sweep is not None)
    return running


class TestStream:
    def test_a_purchase_makes_the_visitor_enter_buyers_on_the_stream(
        self, served, make_event, clock, until
    ):
        """Track a purchase: the open stream receives buyers/entered (reason event)."""
        with client_for(served) as c:
            watch = Collector(c)
            until(lambda: served.server.activation.feed._waiters)
            track(served, *buy(make_event, "ada", clock.now))

            until(lambda: watch.changes)

        assert [("ada", "buyers", "entered", "event")] == watch.seen()

    def test_a_stream_resumes_after_its_token_with_later_changes_only(
        self, served, make_event, clock, until
    ):
        """Reconnecting with the last token gives the changes after it, in order."""
        with client_for(served) as c:
            first = Collector(c)
            until(lambda: served.server.activation.feed._waiters)
            track(served, *buy(make_event, "ada", clock.now))
            until(lambda: first.changes)
            token = first.tokens[-1]
            track(served, *buy(make_event, "bob", clock.now), *buy(make_event, "cy", clock.now))
            until(lambda: len(first.changes) == 3)
            resumed = Collector(c, resume_token=token)
            until(lambda: len(resumed.changes) == 2)

        assert [
            ("bob", "buyers", "entered", "event"),
            ("cy", "buyers", "entered", "event"),
        ] == resumed.seen()
        assert [c.seq for c in first.changes] == sorted(c.seq for c in first.changes)

    def test_from_start_replays_kept_changes_of_the_chosen_segments(
        self, served, make_event, clock, until
    ):
        """from_start and a segment filter: every kept change of that segment."""
        track(served, *buy(make_event, "ada", clock.now))
        until(lambda: served.server.activation.stores.changes.last_seq())
        with client_for(served) as c:
            watch = Collector(c, segments=["buyers"], from_start=True)
            until(lambda: watch.changes)

        assert [("ada", "buyers", "entered", "event")] == watch.seen()

    def test_a_segment_not_marked_notify_is_refused(self, served):
        """Watching a segment without "notify" is INVALID_ARGUMENT naming it."""
        with client_for(served) as c, pytest.raises(InvalidArgument) as info:
            list(c.watch_segment_changes(["visitors"], timeout=5))

        assert ("segments[0]",) == tuple(field for field, _ in info.value.violations)

    def test_a_token_older_than_the_kept_log_is_out_of_range(
        self, served, make_event, clock, until
    ):
        """After pruning, a token from before it cannot resume: OUT_OF_RANGE."""
        import grpc

        track(served, *buy(make_event, "ada", clock.now))
        until(lambda: served.server.activation.stores.changes.last_seq())
        track(served, *buy(make_event, "bob", clock.now))
        until(lambda: served.server.activation.stores.changes.last_seq() >= 2)
        served.server.activation.stores.changes.prune(clock.now + timedelta(days=1))

        with client_for(served) as c, pytest.raises(InvalidArgument) as info:
            list(c.watch_segment_changes(resume_token="1", timeout=5))

        assert grpc.StatusCode.OUT_OF_RANGE == info.value.code


class TestDetection:
    def test_time_passing_is_found_by_the_sweep(self, served, make_event, clock):
        """No event for 61 days: the sweep finds the buyer lapsed (reason sweep)."""
        changes = served.server.activation.stores.changes
        track(served, *buy(make_event, "ada", clock.now))
        worker = served.server.activation.worker
        worker.watcher.detect_once()
        before = changes.last_seq()

        clock.advance(days=61)
        found = worker.watcher.sweep_once()

        assert [("ada", "lapsed", True, "sweep")] == [
            (c.visitor_id, c.segment, c.entered, c.reason) for c in found
        ]
        assert found == changes.changes_after(before, None, 10)

    def test_members_before_the_mark_are_a_silent_baseline(
        self, start_server, publish, rules, clock, make_event, until
    ):
        """Buyers who bought before "buyers" was marked enter nothing; a new one does."""
        for segment in rules["segments"]:
            segment.pop("notify", None)
        publish(rules)
        running = start_server(clock=clock)
        worker = running.server.activation.worker
        until(lambda: worker.last_sweep is not None)
        track(running, *buy(make_event, "early", clock.now))
        marked = {
            **rules,
            "segments": [{**s, "notify": s["id"] == "buyers"} for s in rules["segments"]],
        }
        publish(marked)
        running.server.reloader.poll_once()
        worker.watcher.sweep_once()  # the baseline (or after the worker's own, a no-op)
        track(running, *buy(make_event, "late", clock.now))
        changes = running.server.activation.stores.changes

        found = until(lambda: changes.changes_after(0, None, 10))

        assert [("late", "buyers", True)] == [(c.visitor_id, c.segment, c.entered) for c in found]

    def test_identify_leaves_for_the_anonymous_id_and_enters_for_the_customer(
        self, served, make_event, clock
    ):
        """An anonymous buyer logs in: it leaves (merge, into the customer) and the customer enters."""
        track(served, *buy(make_event, "anon", clock.now))
        worker = served.server.activation.worker
        worker.watcher.detect_once()
        before = served.server.activation.stores.changes.last_seq()

        track(served, make_event("login", "anon", "identify", clock.now, customer_id="cust"))
        worker.watcher.detect_once()
        after = served.server.activation.stores.changes.changes_after(before, None, 10)

        assert [
            ("anon", "buyers", False, "merge", "cust"),
            ("cust", "buyers", True, "event", ""),
        ] == [(c.visitor_id, c.segment, c.entered, c.reason, c.merged_into) for c in after]
