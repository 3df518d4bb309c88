"""Client events and profiles, sync and aio, against a real demo server: plain dicts in,
typed results out, and every error with the path of the event at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from client import (
    BatchRejected,
    InvalidArgument,
    TrackEvent,
    TrackResult,
    Unauthenticated,
    errors,
)
from client import _events as convert

NOW = datetime.now(UTC).replace(microsecond=0)


def ev(event_id: str, type_: str = "session_start", visitor: str = "v-1", **properties):
    """An event dict in the JSONL shape, an hour old."""
    return {
        "event_id": event_id,
        "visitor_id": visitor,
        "type": type_,
        "timestamp": (NOW - timedelta(hours=1)).isoformat(),
        "properties": properties,
    }


class TestConversion:
    def test_dicts_and_track_events_give_the_same_message(self):
        """A TrackEvent and the equivalent dict become the same proto event."""
        stamp = NOW - timedelta(hours=1)
        as_dict = ev("e1", "add_to_cart", sku="S1", quantity=2, price=9.5)
        as_event = TrackEvent(
            "e1", "v-1", "add_to_cart", stamp, {"sku": "S1", "quantity": 2, "price": 9.5}
        )

        assert convert.track_request([as_dict]) == convert.track_request([as_event])

    def test_timestamp_offsets_are_honoured(self):
        """'Z', '+02:00' and an aware datetime for one moment give one timestamp."""
        moment = datetime(2026, 5, 4, 10, 15, tzinfo=UTC)
        stamps = ["2026-05-04T10:15:00Z", "2026-05-04T12:15:00+02:00", moment]

        seconds = {
            convert.track_request([{**ev("e"), "timestamp": s}]).events[0].timestamp.seconds
            for s in stamps
        }

        assert {int(moment.timestamp())} == seconds

    def test_what_a_request_cannot_carry_is_rejected_with_paths(self):
        """Unknown types, properties and fields, wrong JSON types and naive timestamps are
        InvalidArgument listing every problem at events[I].field; nothing is sent."""
        batch = [
            {**ev("e0"), "timestamp": "2026-05-04T10:15:00", "extra": 1},
            ev("e1", "nope"),
            ev("e2", "add_to_cart", sku="S", quantity=1.5, price="3", colour="red"),
            "not an event",
            ev("e4", "product_view", sku="S", on_sale="yes"),
        ]

        with pytest.raises(InvalidArgument) as caught:
            convert.track_request(batch)

        assert [
            ("events[0].extra", "unknown field"),
            ("events[0].timestamp", "needs a UTC offset, e.g. 2026-05-04T10:15:00Z"),
            ("events[1].type", "unknown event type 'nope'"),
            ("events[2].properties.quantity", "must be an integer"),
            ("events[2].properties.price", "must be a number"),
            ("events[2].properties.colour", "unknown property of a add_to_cart event"),
            ("events[3]", "must be an object, not str"),
            ("events[4].properties.on_sale", "must be true or false"),
        ] == caught.value.violations
        assert None is caught.value.code

    def test_batch_rejected_is_read_from_error_info(self):
        """A status with ErrorInfo reason BATCH_REJECTED becomes BatchRejected."""
        info = error_details_pb2.ErrorInfo(
            reason="BATCH_REJECTED", metadata={"batch": "2", "accepted": "7", "duplicates": "1"}
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        status = status_pb2.Status(code=3, message="batch 2 rejected", details=[packed])

        class Failed(grpc.RpcError):
            def code(self):
                return grpc.StatusCode.INVALID_ARGUMENT

            def details(self):
                return "batch 2 rejected"

            def trailing_metadata(self):
                return (("grpc-status-details-bin", status.SerializeToString()),)

        error = errors.map_rpc_error(Failed())

        assert isinstance(error, BatchRejected)
        assert (2, 7, 1) == (error.batch, error.accepted, error.duplicates)


class TestTrack:
    def test_track_counts_new_events_and_duplicates(self, client):
        """track returns a TrackResult; the same events again are duplicates."""
        first = client.track([ev("e1"), ev("e2")])
        again = client.track([ev("e1"), ev("e3")])

        assert TrackResult(accepted=2, duplicates=0) == first
        assert TrackResult(accepted=1, duplicates=1) == again

    def test_server_rejection_names_events(self, client):
        """A batch the server refuses raises InvalidArgument with its violations, and
        nothing of it is stored."""
        with pytest.raises(InvalidArgument) as caught:
            client.track([ev("e1"), ev("e2", "purchase", order_id="o1", value=-5, articles=1)])

        assert [("events[1].properties.value", "must be >= 0")] == caught.value.violations
        assert None is client.get_profile("v-1")

    def test_track_needs_the_api_key(self, make_client, demo_server):
        """Without the server's API key, track is Unauthenticated."""
        anonymous = make_client(demo_server.target)

        with pytest.raises(Unauthenticated):
            anonymous.track([ev("e1")])


class TestTrackStream:
    def test_batches_are_totalled(self, client):
        """track_stream sends every batch and totals them."""
        batches = ([ev(f"b{b}-{i}") for i in range(3)] for b in range(4))

        result = client.track_stream(batches)

        assert TrackResult(accepted=12, duplicates=0) == result
        assert 12 == client.get_profile("v-1")["visits"]

    def test_server_rejects_a_batch(self, client):
        """A batch the server refuses stops the stream: BatchRejected says which batch and
        what the earlier ones stored, and only they are stored."""
        batches = [[ev("a"), ev("b")], [ev("c", "product_view")], [ev("d")]]

        with pytest.raises(BatchRejected) as caught:
            client.track_stream(batches)

        rejected = caught.value
        assert (1, 2, 0) == (rejected.batch, rejected.accepted, rejected.duplicates)
        assert [("batches[1].events[0].properties.sku", "is required")] == rejected.violations
        assert 2 == client.get_profile("v-1")["visits"]

    def test_client_rejects_a_batch(self, client):
        """A batch the client cannot send ends the stream cleanly: earlier batches are
        stored and BatchRejected says so, without a status code."""
        batches = [[ev("a")], [ev("b", "nope")], [ev("c")]]

        with pytest.raises(BatchRejected) as caught:
            client.track_stream(batches)

        rejected = caught.value
        assert (None, 1, 1) == (rejected.code, rejected.batch, rejected.accepted)
        assert [("batches[1].events[0].type", "unknown event type 'nope'")] == (rejected.violations)
        assert 1 == client.get_profile("v-1")["visits"]

    def test_failing_iterator_is_raised_after_earlier_batches_commit(self, client):
        """An exception from the caller's iterator surfaces as itself; batches before it
        are stored."""

        def batches():
            yield [ev("a")]
            raise RuntimeError("source broke")

        with pytest.raises(RuntimeError, match="source broke"):
            client.track_stream(batches())

        assert 1 == client.get_profile("v-1")["visits"]


class TestProfiles:
    def test_profile_follows_events(self, client):
        """get_profile is None for an unknown visitor and a dict once events arrive."""
        before = client.get_profile("v-1")
        client.track([ev("s1"), ev("p1", "purchase", order_id="o1", value=1200, articles=2)])

        after = client.get_profile("v-1")

        assert None is before
        assert (1, 1200) == (after["visits"], after["customer_segment"]["outbounds_value_total"])

    def test_products_viewed_on_sale_make_a_sale_seeker(self, client):
        """Two products viewed on sale make a sale seeker; at full price they do not."""
        client.track(
            [
                ev("a", "product_view", "v-1", sku="S1", on_sale=True),
                ev("b", "product_view", "v-1", sku="S2", on_sale=True),
                ev("c", "product_view", "v-2", sku="S1", on_sale=False),
                ev("d", "product_view", "v-2", sku="S2"),
            ]
        )

        seekers = ["sale_seekers" in client.visitor_segments(v).segment_ids for v in ("v-1", "v-2")]

        assert [True, False] == seekers

    def test_decide_uses_the_stored_profile(self, client):
        """After a second visit and a large order, decide serves VIP content."""
        before = client.decide("v-1", ["home_hero"])["home_hero"].campaign_id
        client.track(
            [ev("s1"), ev("s2"), ev("p1", "purchase", order_id="o1", value=1200, articles=2)]
        )

        after = client.decide("v-1", ["home_hero"])["home_hero"].campaign_id

        assert ("welcome_offer", "vip_early_access") == (before, after)

    def test_set_attributes(self, client):
        """set_attributes returns the profile with the attributes set."""
        profile = client.set_attributes("v-1", {"loyalty_tier": "gold"})

        assert {"loyalty_tier": "gold"} == profile["attributes"]

    def test_delete_and_export(self, client):
        """export_visitor holds the events; delete_visitor forgets them all."""
        client.track([ev("s1"), ev("s2")])

        export = client.export_visitor("v-1")
        deleted = client.delete_visitor("v-1")

        assert ["s1", "s2"] == [e["event_id"] for e in export["events"]]
        assert 3 == deleted
        assert None is client.get_profile("v-1")
        assert [] == client.export_visitor("v-1")["events"]

    def test_profiles_need_the_admin_token(self, make_client, demo_server):
        """Profile calls with only the API key are Unauthenticated."""
        shop = make_client(demo_server.target, api_key=demo_server.api_key)

        with pytest.raises(Unauthenticated):
            shop.get_profile("v-1")


class TestAsyncSources:
    def test_aio_client_streams_an_async_iterable(self, demo_server):
        """AsyncDecisionClient.track_stream also takes an async iterable of batches."""
        import asyncio

        from client import AsyncDecisionClient

        async def batches():
            for b in range(3):
                await asyncio.sleep(0)
                yield [ev(f"b{b}-{i}") for i in range(2)]

        async def run() -> TrackResult:
            async with AsyncDecisionClient(
                demo_server.target, api_key=demo_server.api_key
            ) as client:
                return await client.track_stream(batches())

        assert TrackResult(accepted=6, duplicates=0) == asyncio.run(run())
