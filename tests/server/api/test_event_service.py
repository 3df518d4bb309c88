"""EventService: proto conversion, Track and TrackStream on a real server with a real
SQLite profile store in tmp_path, and decisions that follow the stored profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

import decision
from decision import InvalidRequestError
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server import limits
from server.api import event_messages as events
from server.rules.documents import dump_document

NOW = datetime.now(UTC).replace(microsecond=0)
ADMIN_TOKEN = "events-admin-token"
API_KEY = "events-api-key"
ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
API = (("x-api-key", API_KEY),)


def stamp(minutes_ago: float = 60) -> datetime:
    """A moment ``minutes_ago`` before the test started."""
    return NOW - timedelta(minutes=minutes_ago)


def event(event_id: str, kind: int, visitor: str = "v-1", minutes_ago: float = 60, **oneof):
    """A proto Event; ``oneof`` sets one properties message, e.g. ``cart=pb.CartChange()``."""
    message = pb.Event(event_id=event_id, visitor_id=visitor, type=kind, **oneof)
    message.timestamp.FromDatetime(stamp(minutes_ago))
    return message


def session(event_id: str, visitor: str = "v-1", minutes_ago: float = 60) -> pb.Event:
    return event(event_id, pb.EVENT_TYPE_SESSION_START, visitor, minutes_ago)


def purchase(event_id: str, value: float, visitor: str = "v-1", order: str = "") -> pb.Event:
    props = pb.Purchase(order_id=order or f"order-{event_id}", value=value, articles=2)
    return event(event_id, pb.EVENT_TYPE_PURCHASE, visitor, purchase=props)


def violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            return [(v.field, v.description) for v in bad_request.field_violations]
    raise AssertionError("no BadRequest detail")


def error_info(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return {"reason": info.reason, **info.metadata}
    raise AssertionError("no ErrorInfo detail")


class Api:
    """Stubs for one server, with its credentials attached."""

    def __init__(self, running) -> None:
        self.running = running
        self.events = pb_grpc.EventServiceStub(running.channel)
        self.profiles = pb_grpc.ProfileServiceStub(running.channel)

    def track(self, *messages: pb.Event) -> pb.TrackResponse:
        return self.events.Track(pb.TrackRequest(events=messages), metadata=API, timeout=10)

    def track_error(self, *messages: pb.Event) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            self.track(*messages)
        return info.value

    def stream(self, *batches: list[pb.Event]) -> pb.TrackResponse:
        requests = iter([pb.TrackRequest(events=b) for b in batches])
        return self.events.TrackStream(requests, metadata=API, timeout=10)

    def profile(self, visitor: str = "v-1") -> dict | None:
        response = self.profiles.GetProfile(
            pb.GetProfileRequest(visitor_id=visitor), metadata=ADMIN, timeout=5
        )
        return json.loads(response.profile_json) if response.found else None

    def decide(self, visitor: str = "v-1", *placements: str, **kwargs) -> pb.DecideResponse:
        request = pb.DecideRequest(visitor_id=visitor, placements=placements or ["home_hero"])
        for key, value in kwargs.items():
            getattr(request, key).update(value)
        return self.running.decisions.Decide(request, metadata=API, timeout=5)


@pytest.fixture
def api(start_server, store):
    """A server with API keys, an admin token and the default SQLite profile store on the
    rules file in tmp_path, serving the demo rules."""
    store.publish(dump_document(decision.demo_document()), comment="demo", author="tests")
    return Api(start_server(admin_token=ADMIN_TOKEN, api_keys=(API_KEY,)))


class TestConversion:
    def test_every_type_converts_to_the_json_event_shape(self):
        """Each properties message becomes the raw dict the engine validates; unset
        optional fields are left out rather than sent as "" or 0."""
        message = event(
            "e1",
            pb.EVENT_TYPE_ADD_TO_CART,
            cart=pb.CartChange(sku="S1", quantity=2),
        )

        raw = events.to_raw(message, "events[0]", [])

        assert {
            "event_id": "e1",
            "visitor_id": "v-1",
            "type": "add_to_cart",
            "timestamp": stamp(),
            "properties": {"sku": "S1", "quantity": 2},
        } == raw

    @pytest.mark.parametrize(
        ("kind", "oneof", "expected"),
        [
            (pb.EVENT_TYPE_SESSION_START, {}, {}),
            (
                pb.EVENT_TYPE_PAGE_VIEW,
                {"page_view": pb.PageView(url="/", page_type="home", category="c")},
                {"url": "/", "page_type": "home", "category": "c"},
            ),
            (
                pb.EVENT_TYPE_PRODUCT_VIEW,
                {"product_view": pb.ProductView(sku="S", brand="B", price=0.0)},
                {"sku": "S", "brand": "B", "price": 0.0},
            ),
            (
                pb.EVENT_TYPE_PURCHASE,
                {"purchase": pb.Purchase(order_id="o", value=9.5, currency="EUR", articles=0)},
                {"order_id": "o", "value": 9.5, "currency": "EUR", "articles": 0},
            ),
            (
                pb.EVENT_TYPE_RETURN,
                {"order_return": pb.OrderReturn(order_id="o", articles=1)},
                {"order_id": "o", "articles": 1},
            ),
            (
                pb.EVENT_TYPE_CAMPAIGN_CLICK,
                {"campaign": pb.CampaignInteraction(campaign="c", decision_id="d", variant="v")},
                {"campaign": "c", "decision_id": "d", "variant": "v"},
            ),
            (
                pb.EVENT_TYPE_IDENTIFY,
                {"identify": pb.Identify(customer_id="cust")},
                {"customer_id": "cust"},
            ),
        ],
        ids=["session", "page", "product", "purchase", "return", "campaign", "identify"],
    )
    def test_properties_by_type(self, kind, oneof, expected):
        """Set fields carry their values, zeros included when the field is set."""
        raw = events.to_raw(event("e", kind, **oneof), "events[0]", [])

        assert expected == raw["properties"]

    def test_custom_struct_becomes_plain_values(self):
        """A custom event's Struct becomes plain JSON values; integral numbers are ints."""
        custom = pb.Custom(name="quiz")
        custom.properties.update({"score": 3, "tags": ["a"], "ratio": 0.5})

        raw = events.to_raw(event("e", pb.EVENT_TYPE_CUSTOM, custom=custom), "events[0]", [])

        assert {"name": "quiz", "properties": {"ratio": 0.5, "score": 3, "tags": ["a"]}} == raw[
            "properties"
        ]

    def test_type_must_agree_with_the_properties_message(self):
        """A properties message of another type is a problem at events[I].properties."""
        problems = []

        events.to_raw(
            event("e", pb.EVENT_TYPE_PRODUCT_VIEW, cart=pb.CartChange(sku="S")),
            "events[4]",
            problems,
        )

        assert [
            (
                "events[4].properties",
                "a product_view event carries product_view properties, got cart",
            )
        ] == [(p.path, p.message) for p in problems]

    @pytest.mark.parametrize(
        ("kind", "message"),
        [(0, "is required"), (99, "unknown event type 99")],
        ids=["unspecified", "unknown"],
    )
    def test_missing_or_unknown_type(self, kind, message):
        """EVENT_TYPE_UNSPECIFIED and numbers the proto does not define are problems."""
        problems = []

        events.to_raw(event("e", kind), "events[0]", problems)

        assert [("events[0].type", message)] == [(p.path, p.message) for p in problems]

    def test_engine_problems_keep_their_request_index(self):
        """When some events fail conversion, the engine's problems about the others still
        name each event's index in the request."""
        batch = [
            session("ok-0"),
            event("bad-1", pb.EVENT_TYPE_PURCHASE, cart=pb.CartChange(sku="S")),
            event("bad-2", pb.EVENT_TYPE_PRODUCT_VIEW, product_view=pb.ProductView(price=-1)),
        ]

        with pytest.raises(InvalidRequestError) as caught:
            events.convert_batch(batch, NOW, max_events=10)

        assert [
            "events[1].properties",
            "events[2].properties.price",
            "events[2].properties.sku",
        ] == [p.path for p in caught.value.problems]

    def test_stream_paths_name_the_batch(self):
        """A streamed batch's problems are prefixed with batches[B]."""
        with pytest.raises(InvalidRequestError) as caught:
            events.convert_batch([session("")], NOW, max_events=10, path="batches[3].events")

        assert ["batches[3].events[0].event_id"] == [p.path for p in caught.value.problems]

    @pytest.mark.parametrize(
        ("count", "message"),
        [(0, "at least one event is required"), (11, "11 events in one batch; at most 10")],
        ids=["empty", "too-many"],
    )
    def test_batch_size(self, count, message):
        """An empty batch and one over the limit are rejected as a whole."""
        batch = [session(f"e{i}") for i in range(count)]

        with pytest.raises(InvalidRequestError) as caught:
            events.convert_batch(batch, NOW, max_events=10)

        assert [("events", message)] == [(p.path, p.message) for p in caught.value.problems]

    def test_every_engine_event_type_has_a_proto_type(self):
        """The proto's EventType and the engine's EVENT_TYPES name the same types."""
        from decision.profile import EVENT_TYPES

        assert sorted(EVENT_TYPES) == sorted(events.TYPE_NAMES.values())
        assert len(pb.EventType.keys()) - 1 == len(EVENT_TYPES)


class TestTrack:
    def test_accepted_and_duplicates(self, api):
        """New events are accepted; sending them again counts duplicates, stores nothing."""
        first = api.track(session("s1"), session("s2"))
        again = api.track(session("s1"), session("s2"), session("s3"))

        assert (2, 0) == (first.accepted, first.duplicates)
        assert (1, 2) == (again.accepted, again.duplicates)
        assert 3 == api.profile()["visits"]

    def test_bad_batch_is_rejected_whole(self, api):
        """One bad event rejects the batch: every bad event by index and field, and nothing
        of it (not even the good events) is stored."""
        future = event("e3", pb.EVENT_TYPE_SESSION_START, minutes_ago=-3 * 24 * 60)

        error = api.track_error(
            session("e0"),
            event("e1", pb.EVENT_TYPE_PRODUCT_VIEW, product_view=pb.ProductView(price=-2)),
            session("e2", visitor=""),
            future,
        )

        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert [
            ("events[1].properties.price", "must be >= 0"),
            ("events[1].properties.sku", "is required"),
            ("events[2].visitor_id", "is required"),
            ("events[3].timestamp", "is more than 24 hours in the future"),
        ] == violations(error)
        assert None is api.profile()

    def test_poison_purchase_is_refused_and_the_visitor_keeps_working(self, api):
        """Issue 12: a purchase of 1e308 is INVALID_ARGUMENT naming the value (two of them
        once overflowed the visitor's profile, failing every later batch); the visitor's
        next batch is accepted."""
        error = api.track_error(purchase("p1", 1e308))
        accepted = api.track(purchase("p2", 10.0), session("s1"))

        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert [("events[0].properties.value", "must be <= 1000000000000")] == violations(error)
        assert 2 == accepted.accepted
        assert 10.0 == api.profile()["customer_segment"]["outbounds_value_total"]

    def test_type_mismatch_is_a_violation(self, api):
        """A type whose properties message is another type's is INVALID_ARGUMENT."""
        error = api.track_error(
            event("e0", pb.EVENT_TYPE_PURCHASE, product_view=pb.ProductView(sku="S"))
        )

        assert [
            (
                "events[0].properties",
                "a purchase event carries purchase properties, got product_view",
            )
        ] == violations(error)

    def test_batch_limit(self, api):
        """More than MAX_EVENTS_PER_BATCH events is rejected, naming the limit."""
        batch = [session(f"e{i}") for i in range(limits.MAX_EVENTS_PER_BATCH + 1)]

        error = api.track_error(*batch)

        assert [
            ("events", f"{len(batch)} events in one batch; at most {limits.MAX_EVENTS_PER_BATCH}")
        ] == violations(error)

    def test_events_are_counted_in_metrics(self, api):
        """decide_events_total counts committed events by type, duplicates separately."""
        api.track(session("s1"), purchase("p1", 10))
        api.track(session("s1"))
        api.track_error(session(""))

        registry = api.running.server.metrics.registry

        assert (2, 1, 1) == (
            registry.get_sample_value("decide_events_total", {"type": "session_start"}),
            registry.get_sample_value("decide_events_total", {"type": "purchase"}),
            registry.get_sample_value("decide_events_duplicates_total"),
        )


class TestTrackStream:
    def test_batches_are_totalled(self, api):
        """The response totals every streamed batch, duplicates included."""
        response = api.stream([session("a"), session("b")], [session("b"), session("c")])

        assert (3, 1) == (response.accepted, response.duplicates)
        assert 3 == api.profile()["visits"]

    def test_bad_batch_stops_the_stream_and_keeps_earlier_batches(self, api):
        """A bad batch ends the call with INVALID_ARGUMENT at batches[B].events[I]; the
        batches before it stay stored, the rest is not, and the error says how many
        events were stored."""
        with pytest.raises(grpc.RpcError) as info:
            api.stream(
                [session("a"), session("b")],
                [session("c"), session("", visitor="v-1")],
                [session("d")],
            )

        error = info.value
        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert [("batches[1].events[1].event_id", "is required")] == violations(error)
        assert {"reason": "BATCH_REJECTED", "batch": "1", "accepted": "2", "duplicates": "0"} == (
            error_info(error)
        )
        assert "earlier batches stored 2 new events" in error.details()
        assert 2 == api.profile()["visits"]

    def test_empty_stream(self, api):
        """A stream without batches stores nothing and says so."""
        response = api.stream()

        assert (0, 0) == (response.accepted, response.duplicates)


class TestDecisionsFollowTheProfile:
    def test_decide_changes_as_events_arrive(self, api):
        """A new visitor gets the welcome offer; after a second visit and a 1500 order the
        same visitor is a high-value customer and gets VIP early access."""
        before = api.decide("carol").decisions[0].campaign_id
        api.track(session("s1", "carol", 120))

        after_visit = api.decide("carol").decisions[0].campaign_id
        api.track(session("s2", "carol", 30), purchase("p1", 1500, "carol"))

        after_order = api.decide("carol")

        assert ("welcome_offer", "welcome_offer") == (before, after_visit)
        assert "vip_early_access" == after_order.decisions[0].campaign_id
        assert ["high_value_customers"] == list(after_order.decisions[0].matched_segments)

    def test_overrides_replace_stored_fields(self, api):
        """profile_overrides still win over the stored profile, field by field."""
        api.track(session("s1", "dan"), session("s2", "dan"), purchase("p1", 1500, "dan"))

        response = api.decide("dan", profile_overrides={"customer_segment": {}})

        assert "vip_early_access" != response.decisions[0].campaign_id

    def test_identify_merges_profiles(self, api):
        """After identify, the anonymous id and the customer id share one profile holding
        both histories."""
        api.track(session("s1", "anon-7"), purchase("p1", 600, "anon-7"))
        api.track(session("s2", "cust-7"), purchase("p2", 700, "cust-7"))

        api.track(
            event(
                "i1", pb.EVENT_TYPE_IDENTIFY, "anon-7", identify=pb.Identify(customer_id="cust-7")
            )
        )

        merged = api.profile("cust-7")
        assert merged == api.profile("anon-7")
        assert (2, 2, 1300) == (
            merged["visits"],
            merged["customer_segment"]["outbounds_number_total"],
            merged["customer_segment"]["outbounds_value_total"],
        )
        assert "vip_early_access" == api.decide("anon-7").decisions[0].campaign_id


class TestRegistration:
    def test_event_and_profile_services_are_serving(self, api):
        """Health reports both services SERVING."""
        stub = health_pb2_grpc.HealthStub(api.running.channel)

        statuses = [
            stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            for name in ("decisioning.v1.EventService", "decisioning.v1.ProfileService")
        ]

        assert [health_pb2.HealthCheckResponse.SERVING] * 2 == statuses


class TestAuth:
    def test_events_need_the_api_key(self, api):
        """Track and TrackStream without the API key are UNAUTHENTICATED."""
        with pytest.raises(grpc.RpcError) as unary:
            api.events.Track(pb.TrackRequest(events=[session("e")]), timeout=5)
        with pytest.raises(grpc.RpcError) as stream:
            api.events.TrackStream(iter([pb.TrackRequest(events=[session("e")])]), timeout=5)

        assert [grpc.StatusCode.UNAUTHENTICATED] * 2 == [
            unary.value.code(),
            stream.value.code(),
        ]
        assert None is api.profile("v-1")

    def test_admin_token_is_not_an_api_key(self, api):
        """The admin token does not open EventService."""
        with pytest.raises(grpc.RpcError) as info:
            api.events.Track(pb.TrackRequest(events=[session("e")]), metadata=ADMIN, timeout=5)

        assert grpc.StatusCode.UNAUTHENTICATED == info.value.code()
