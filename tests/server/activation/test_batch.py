"""DecideBatch against a real server: Decide's answers for a segment or a list, previews,
recorded sends tagged with a channel, reports and audiences from them, the cap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest

from client import DecisionClient
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

ADMIN_TOKEN = "server-test-admin-token"
BUYERS = 30


def shoppers(make_event: Callable[..., Any], clock: Any, count: int = BUYERS) -> list[Any]:
    """``count`` buyers: a session and a purchase 90 days ago (lapsed), and 5 visitors
    who only looked around."""
    long_ago = clock.now - timedelta(days=90)
    events = []
    for i in range(count):
        events.append(make_event(f"s-{i}", f"buyer-{i:02d}", "session_start", long_ago))
        events.append(
            make_event(
                f"p-{i}",
                f"buyer-{i:02d}",
                "purchase",
                long_ago,
                order_id=f"o-{i}",
                value=50,
                articles=1,
            )
        )
    events += [make_event(f"l-{i}", f"looker-{i}", "session_start", long_ago) for i in range(5)]
    return events


@pytest.fixture
def shop(start_server, publish, rules, clock, make_event) -> Any:
    """A server with the activation rules, 30 lapsed buyers and 5 lookers tracked."""
    publish(rules)
    running = start_server(clock=clock)
    events = pb_grpc.EventServiceStub(running.channel)
    events.Track(pb.TrackRequest(events=shoppers(make_event, clock)), timeout=10)
    return running


def client_for(running: Any) -> DecisionClient:
    """A client with the admin token."""
    return DecisionClient(running.target, admin_token=ADMIN_TOKEN, admin_timeout=30)


def key(decision: Any) -> tuple[Any, ...]:
    """What a decision served, without its (per call) decision id."""
    return (
        decision.placement,
        decision.reason,
        decision.campaign_id,
        decision.variant_id,
        decision.content,
    )


class TestSameAnswersAsDecide:
    def test_a_segment_batch_gives_each_member_what_decide_gives(self, shop, clock):
        """Every lapsed buyer, in id order, with Decide's (preview) decisions."""
        with client_for(shop) as c:
            rows = list(c.decide_batch(["email_hero", "hero"], segment="lapsed"))
            expected = {
                f"buyer-{i:02d}": [
                    key(d)
                    for d in c.decide(
                        f"buyer-{i:02d}", ["email_hero", "hero"], preview=True
                    ).decisions
                ]
                for i in range(BUYERS)
            }

        assert sorted(expected) == [r.visitor_id for r in rows]
        assert expected == {r.visitor_id: [key(d) for d in r.decisions] for r in rows}

    def test_a_list_batch_decides_known_and_unknown_visitors_once_each(self, shop):
        """Listed ids are decided in order, repeats once; an unknown id is a new visitor."""
        with client_for(shop) as c:
            call = c.decide_batch(["hero"], visitor_ids=["buyer-01", "stranger", "buyer-01"])
            rows = list(call)

        assert [("buyer-01", True), ("stranger", False)] == [(r.visitor_id, r.known) for r in rows]
        assert (2, 0, True) == (
            call.summary.visitors,
            call.summary.exposures,
            call.summary.complete,
        )

    def test_the_header_lists_the_content_fields_for_a_csv(self, shop):
        """The header names each placement's possible content keys."""
        with client_for(shop) as c:
            call = c.decide_batch(["email_hero"], visitor_ids=["buyer-01"])
            list(call)

        assert {"email_hero": ("headline", "code")} == call.header.fields

    def test_a_batch_at_a_later_moment_decides_then(self, shop, clock):
        """now = the launch date: the scheduled campaign is in every answer."""
        with client_for(shop) as c:
            rows = list(
                c.decide_batch(
                    ["hero"],
                    visitor_ids=["buyer-01", "looker-1"],
                    now=clock.now + timedelta(days=20),
                )
            )

        assert {"summer_launch"} == {r["hero"].campaign_id for r in rows}


class TestRecordedSend:
    def test_a_recorded_send_is_reported_by_channel(self, shop, make_event, clock):
        """A recorded send is reported for channel email with its clicks; web and previews count none."""
        with client_for(shop) as c:
            list(c.decide_batch(["email_hero"], segment="lapsed"))  # a preview records nothing
            call = c.decide_batch(
                ["email_hero"], segment="lapsed", record=True, channel="email", send_id="winback-1"
            )
            rows = list(call)
            served = [r for r in rows if r["email_hero"].variant_id == "discount"]
            clock.advance(hours=2)
            clicks = [
                make_event(f"click-{r.visitor_id}", r.visitor_id, "campaign_click", clock.now,
                           campaign="winback_email", decision_id=r["email_hero"].decision_id)
                for r in served[:4]
            ]  # fmt: skip
            pb_grpc.EventServiceStub(shop.channel).Track(pb.TrackRequest(events=clicks), timeout=5)
            clock.advance(hours=1)
            start, end = clock.now - timedelta(days=1), clock.now
            email = c.campaign_report(
                "winback_email", start=start, end=end, channel="email", min_sample=1
            )
            web = c.campaign_report(
                "winback_email", start=start, end=end, channel="web", min_sample=1
            )

        arms = {v.counts.variant_id: v.counts for v in email.variants}
        assert ("winback-1", "email", BUYERS) == (
            call.header.send_id,
            call.header.channel,
            call.summary.exposures,
        )
        assert BUYERS == sum(counts.exposed for counts in arms.values())
        assert 4 == arms["discount"].clicks
        assert 0 == sum(v.counts.exposed for v in web.variants)

    def test_a_served_email_fills_campaigns_seen_and_a_segment_built_on_it(
        self, shop, make_event, clock, until
    ):
        """Served (not held out) visitors see the email in campaigns.seen until they click."""
        with client_for(shop) as c:
            rows = list(
                c.decide_batch(["email_hero"], segment="lapsed", record=True, channel="email")
            )
            served = sorted(r.visitor_id for r in rows if r["email_hero"].reason == "CAMPAIGN")
            held_out = sorted(r.visitor_id for r in rows if r["email_hero"].reason == "HOLDOUT")

            def members() -> list[str]:
                return sorted(c.export_segment("winback_not_clicked"))

            until(lambda: members() == served)
            clicked = served[0]
            click = make_event(
                "c-1", clicked, "campaign_click", clock.now, campaign="winback_email"
            )
            pb_grpc.EventServiceStub(shop.channel).Track(pb.TrackRequest(events=[click]), timeout=5)
            after_click = until(lambda: (m := members()) != served and m)
            seen = c.get_profile(served[1])["campaigns"]["seen"]

        assert held_out and served
        assert served[1:] == after_click
        assert ["winback_email"] == seen

    def test_profiles_rebuilt_from_the_event_log_are_the_same(self, shop, until):
        """The served campaigns are in the event log: a rebuild changes no profile."""
        with client_for(shop) as c:
            list(c.decide_batch(["email_hero"], segment="lapsed", record=True, channel="email"))
            served = until(lambda: [v for v in c.export_segment("winback_not_clicked")])
            before = {v: c.get_profile(v) for v in served}
            profiles = shop.server.profiles
            profiles.rebuild_all()
            after = {v: c.get_profile(v) for v in served}

        assert before == after

    def test_recording_needs_a_channel(self, shop):
        """record without a channel is INVALID_ARGUMENT, naming the field."""
        with client_for(shop) as c, pytest.raises(Exception) as info:
            list(c.decide_batch(["email_hero"], segment="lapsed", record=True))

        assert ("channel",) == tuple(field for field, _ in info.value.violations)

    def test_a_recorded_send_must_be_near_the_servers_clock(self, shop, clock):
        """A recorded batch 2 days ahead is refused: exposures are stamped with it."""
        with client_for(shop) as c, pytest.raises(Exception) as info:
            list(
                c.decide_batch(
                    ["email_hero"],
                    segment="lapsed",
                    record=True,
                    channel="email",
                    now=clock.now + timedelta(days=2),
                )
            )

        assert ("now",) == tuple(field for field, _ in info.value.violations)


class TestBounds:
    def test_a_segment_batch_stops_at_the_cap_and_continues_where_it_stopped(
        self, start_server, publish, rules, clock, make_event
    ):
        """With a cap of 12, three calls decide the 30 lapsed buyers once each."""
        publish(rules)
        running = start_server(clock=clock, max_batch_visitors=12)
        pb_grpc.EventServiceStub(running.channel).Track(
            pb.TrackRequest(events=shoppers(make_event, clock)), timeout=10
        )
        seen: list[str] = []
        summaries = []
        after = ""
        with client_for(running) as c:
            while True:
                call = c.decide_batch(
                    ["email_hero"], segment="lapsed", start_after=after, page_size=5
                )
                seen += [r.visitor_id for r in call]
                summaries.append((call.summary.visitors, call.summary.complete))
                if call.summary.complete:
                    break
                after = call.summary.next_start_after

        assert [f"buyer-{i:02d}" for i in range(BUYERS)] == seen
        assert [(12, False), (12, False), (6, True)] == summaries

    def test_a_list_longer_than_the_cap_is_refused(self, start_server, publish, rules, clock):
        """More listed ids than the cap: INVALID_ARGUMENT before anything is decided."""
        publish(rules)
        running = start_server(clock=clock, max_batch_visitors=3)
        with client_for(running) as c, pytest.raises(Exception) as info:
            list(c.decide_batch(["hero"], visitor_ids=["a", "b", "c", "d"]))

        assert ("visitor_ids.ids",) == tuple(field for field, _ in info.value.violations)

    def test_batches_need_the_admin_token(self, shop):
        """Membership of a segment is personal data: no token, no batch."""
        stub = pb_grpc.ActivationServiceStub(shop.channel)
        request = pb.DecideBatchRequest(placements=["hero"], segment="lapsed")

        with pytest.raises(grpc.RpcError) as info:
            list(stub.DecideBatch(request, timeout=5))

        assert grpc.StatusCode.UNAUTHENTICATED == info.value.code()
