"""Assignments that survive login: a real server, real Track and Decide calls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

VISITORS = 40


def decide(running: Any, visitor: str, *, preview: bool = False, **request: Any) -> Any:
    """The server's hero decision for ``visitor`` (recorded unless ``preview``)."""
    response = running.decisions.Decide(
        pb.DecideRequest(visitor_id=visitor, placements=["hero"], preview=preview, **request),
        timeout=5,
    )
    return response.decisions[0]


def track(running: Any, *events: Any) -> None:
    """Store events through EventService.Track."""
    pb_grpc.EventServiceStub(running.channel).Track(pb.TrackRequest(events=events), timeout=5)


def reweigh(rules: dict[str, Any], a: int, b: int, **changes: Any) -> dict[str, Any]:
    """``rules`` with hero_test's weights set to a:b and other campaign keys changed."""
    test = next(c for c in rules["campaigns"] if c["id"] == "hero_test")
    test["variants"][0]["weight"], test["variants"][1]["weight"] = a, b
    test.update(changes)
    return rules


class TestLoginTrial:
    def run_trial(
        self,
        start_server: Callable[..., Any],
        publish: Callable[[dict[str, Any]], None],
        rules: dict[str, Any],
        clock: Any,
        make_event: Callable[..., Any],
        **campaign: Any,
    ) -> tuple[list[str], list[str], list[str], dict[int, str]]:
        """40 visitors exposed to hero_test, 10 of their customer ids exposed before on
        another device; then the weights move 1:1 -> 1:9 and traffic to 30 %, each visitor
        identifies as its customer, and decides again. Returns the variants seen before,
        after (by the anonymous id) and by the customer id, and the customers' own."""
        publish(reweigh(rules, 1, 1, **campaign))
        running = start_server(clock=clock)
        customers = {
            i: decide(running, f"customer-{i}").variant_id  # exposed on another device
            for i in range(0, VISITORS, 4)
        }
        before = [decide(running, f"anon-{i}").variant_id for i in range(VISITORS)]

        publish(reweigh(rules, 1, 9, traffic_allocation=30, **campaign))
        until_version = running.server.reloader.poll_once
        until_version()
        clock.advance(minutes=5)
        track(
            running,
            *[
                make_event(
                    f"login-{i}", f"anon-{i}", "identify", clock.now, customer_id=f"customer-{i}"
                )
                for i in range(VISITORS)
            ],
        )
        after = [decide(running, f"anon-{i}").variant_id for i in range(VISITORS)]
        as_customer = [
            decide(running, f"customer-{i}", preview=True).variant_id for i in range(VISITORS)
        ]
        return before, after, as_customer, customers

    def test_no_visitor_flips_after_login_reweighting_and_traffic_changes(
        self, start_server, publish, rules, clock, make_event
    ):
        """The issue's trial: 0 of 40 visitors flip after login, re-weighting and a traffic change."""
        before, after, as_customer, customers = self.run_trial(
            start_server, publish, rules, clock, make_event
        )

        assert None not in before
        assert any(variant != before[i] for i, variant in customers.items())  # conflicts met
        assert before == after
        assert before == as_customer

    def test_hashed_assignment_lets_the_same_trial_flip(
        self, start_server, publish, rules, clock, make_event
    ):
        """With "assignment": "hashed" the same trial moves visitors (the trial can fail)."""
        before, after, _, _ = self.run_trial(
            start_server, publish, rules, clock, make_event, assignment="hashed"
        )

        flips = sum(b != a for b, a in zip(before, after, strict=True))
        assert flips > 0


class TestCanonicalBuckets:
    def test_an_identified_visitor_draws_the_customers_buckets(
        self, start_server, publish, rules, clock, make_event
    ):
        """Never exposed before login, a visitor then decides exactly as its customer id."""
        publish(rules)
        running = start_server(clock=clock)
        track(
            running,
            *[
                make_event(
                    f"login-{i}", f"new-{i}", "identify", clock.now, customer_id=f"known-{i}"
                )
                for i in range(20)
            ],
        )

        by_visitor = [decide(running, f"new-{i}", preview=True).variant_id for i in range(20)]
        by_customer = [decide(running, f"known-{i}", preview=True).variant_id for i in range(20)]

        assert by_customer == by_visitor


class TestPreviewInTime:
    def test_a_preview_at_a_later_moment_shows_the_scheduled_campaign(
        self, start_server, publish, rules, clock
    ):
        """now = the launch date shows summer_launch; the server's now does not yet."""
        publish(rules)
        running = start_server(clock=clock)
        launch = pb.DecideRequest(visitor_id="v1", placements=["hero"], preview=True)
        launch.now.FromDatetime(clock.now + timedelta(days=14))

        later = running.decisions.Decide(launch, timeout=5).decisions[0]
        today = decide(running, "v1", preview=True)

        assert ("summer_launch", "hero_test") == (later.campaign_id, today.campaign_id)

    def test_now_without_preview_is_refused(self, start_server, publish, rules, clock):
        """A served decision cannot be made at another moment: INVALID_ARGUMENT."""
        publish(rules)
        running = start_server(clock=clock)
        request = pb.DecideRequest(visitor_id="v1", placements=["hero"])
        request.now.FromDatetime(clock.now + timedelta(days=14))

        with pytest.raises(grpc.RpcError) as info:
            running.decisions.Decide(request, timeout=5)

        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
