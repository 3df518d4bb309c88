"""The serving core: no call waits behind another, limits shed load, malformed bytes are
INVALID_ARGUMENT, idle streams are closed, and the response bytes are protobuf's own."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from contextlib import ExitStack
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

DECIDE = "/decisioning.v1.DecisionService/Decide"


def _details(error: grpc.RpcError) -> list[Any]:
    """The google.rpc detail messages of a failed call's status."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            found = []
            for detail in status.details:
                for kind in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo):
                    message = kind()
                    if detail.Unpack(message):
                        found.append(message)
            return found
    return []


def _raw_decide(channel: grpc.Channel, body: bytes, timeout: float = 5) -> grpc.RpcError:
    call = channel.unary_unary(DECIDE)  # no serializers: the body goes out as is
    with pytest.raises(grpc.RpcError) as info:
        call(body, timeout=timeout)
    return info.value


class TestMalformedRequests:
    @pytest.mark.parametrize(
        "body",
        [
            bytes.fromhex("ffffffff0f0102"),  # a truncated varint tag
            b"\x0a\x02\xff\xfe\x12\x01a",  # visitor_id that is not UTF-8
            b"\x0a",  # a field with no value
        ],
        ids=["garbage", "not-utf8", "truncated"],
    )
    def test_bytes_that_do_not_parse_are_invalid_argument(self, running, body, caplog):
        """Bytes that are not a DecideRequest get INVALID_ARGUMENT saying so, and no
        traceback in the log."""
        with caplog.at_level(logging.WARNING):
            error = _raw_decide(running.channel, body)

        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert "not a valid DecideRequest" in error.details()
        assert [] == [r for r in caplog.records if r.levelno >= logging.ERROR]

    def test_context_nested_past_the_parser_limit_is_invalid_argument(self, running, caplog):
        """A context Struct nested 100 deep (past protobuf's recursion limit) is refused
        as malformed, not INTERNAL."""
        value = b"\x1a\x00"  # Value{string_value: ""}
        for _ in range(100):
            struct = b"\x0a" + _len(b"\x0a\x01k" + b"\x12" + _len(value))  # {"k": value}
            value = b"\x2a" + _len(struct)  # Value{struct_value: struct}
        body = b"\x0a\x01v\x12\x01p\x1a" + _len(struct)

        with caplog.at_level(logging.WARNING):
            error = _raw_decide(running.channel, body)

        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert [] == [r for r in caplog.records if r.levelno >= logging.ERROR]

    def test_a_malformed_batch_in_a_stream_names_the_batch(self, running):
        """A TrackStream message that does not parse rejects that batch by index."""
        call = running.channel.stream_unary("/decisioning.v1.EventService/TrackStream")
        event = pb.Event(event_id="e-1", visitor_id="v", type=pb.EVENT_TYPE_SESSION_START)
        event.timestamp.GetCurrentTime()
        good = pb.TrackRequest(events=[event]).SerializeToString()

        with pytest.raises(grpc.RpcError) as info:
            call(iter([good, bytes.fromhex("ffffffff0f")]), timeout=5)

        violations = [
            v.field
            for d in _details(info.value)
            if hasattr(d, "field_violations")
            for v in d.field_violations
        ]
        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
        assert ["batches[1]"] == violations


def _len(data: bytes) -> bytes:
    out = bytearray()
    n = len(data)
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out) + data


class TestShedding:
    def test_calls_past_the_cap_are_refused_at_once(
        self, start_server, store, gate, gated_profiles
    ):
        """With Decide's cap reached, another Decide is RESOURCE_EXHAUSTED (not queued:
        the held calls end only after it), health still answers, and the refusal is
        counted by its code."""
        running = start_server(profiles=gated_profiles, max_in_flight=(("Decide", 2),))
        held = [
            running.decisions.Decide.future(
                pb.DecideRequest(visitor_id=f"slow-{i}", placements=["slot_0"]), timeout=10
            )
            for i in range(2)
        ]
        assert gate.entered.wait(5)
        _wait_until(lambda: running.server.edge.in_flight[DECIDE][0] == 2)

        with pytest.raises(grpc.RpcError) as info:
            running.decide(visitor="quick")
        health = health_pb2_grpc.HealthStub(running.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=2
        )
        gate.release()
        answered = [call.result().decisions[0].placement for call in held]

        assert grpc.StatusCode.RESOURCE_EXHAUSTED == info.value.code()
        assert "2 Decide calls are in flight" in info.value.details()
        assert health_pb2.HealthCheckResponse.SERVING == health.status
        assert ["slot_0", "slot_0"] == answered
        assert 1.0 == running.server.metrics.registry.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_service": "decisioning.v1.DecisionService",
                "grpc_method": "Decide",
                "grpc_code": "RESOURCE_EXHAUSTED",
            },
        )

    def test_a_full_pool_refuses_its_work(self, start_server, store, gate, gated_profiles):
        """When the read pool's threads and queue are taken, one more call that needs it
        is RESOURCE_EXHAUSTED instead of waiting behind them."""
        running = start_server(profiles=gated_profiles, read_threads=1, read_queue=1)
        held = [
            running.decisions.Decide.future(
                pb.DecideRequest(visitor_id=f"slow-{i}", placements=["slot_0"]), timeout=10
            )
            for i in range(2)
        ]
        assert gate.entered.wait(5)
        _wait_until(lambda: running.server.pools.reads.busy == 2)

        with pytest.raises(grpc.RpcError) as info:
            running.decide(visitor="another")
        gate.release()
        for call in held:
            call.result()

        assert grpc.StatusCode.RESOURCE_EXHAUSTED == info.value.code()
        assert "decide-reads queue is full" in info.value.details()


class TestStarvation:
    @pytest.mark.slow
    def test_idle_streams_and_half_open_connections_starve_nothing(self, start_server, store):
        """200 TrackStreams that send nothing and 200 connections that never finish
        their handshake: Decide and Health still answer within 2 s, and the server
        closes every idle stream after its idle timeout with DEADLINE_EXCEEDED."""
        running = start_server(idle_stream_timeout=3.0, handshake_timeout=30.0)
        address = ("127.0.0.1", running.port)

        async def scenario() -> tuple[list[Any], list[Any], list[grpc.StatusCode]]:
            channels = [
                grpc.aio.insecure_channel(
                    f"127.0.0.1:{running.port}", options=[("grpc.use_local_subchannel_pool", 1)]
                )
                for _ in range(4)
            ]
            try:
                streams = []
                for i in range(200):
                    stub = pb_grpc.EventServiceStub(channels[i % 4])
                    streams.append(stub.TrackStream(timeout=30))  # opened, never written
                await asyncio.sleep(0.5)
                decide = pb_grpc.DecisionServiceStub(channels[0])
                health = health_pb2_grpc.HealthStub(channels[1])
                answers = []
                for _ in range(5):
                    response = await decide.Decide(
                        pb.DecideRequest(visitor_id="v", placements=["slot_0"]), timeout=2
                    )
                    status = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    answers.append((response.decisions[0].placement, status.status))
                codes = []
                for call in streams:
                    try:
                        await call
                        codes.append(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as error:
                        codes.append(error.code())
                errors = [
                    d for call in streams[:3] for d in _details_aio(await call.trailing_metadata())
                ]
                return answers, errors, codes
            finally:
                for channel in channels:
                    await channel.close()

        with ExitStack() as stack:
            for _ in range(200):
                sock = stack.enter_context(socket.create_connection(address, timeout=5))
                sock.sendall(b"PRI * HTTP/2.0\r\n")  # half a preface, then silence
            answers, infos, codes = asyncio.run(scenario())

        serving = health_pb2.HealthCheckResponse.SERVING
        assert [("slot_0", serving)] * 5 == answers
        assert [grpc.StatusCode.DEADLINE_EXCEEDED] * 200 == codes
        assert ["STREAM_IDLE"] * 3 == [i.reason for i in infos]


def _details_aio(metadata: Any) -> list[Any]:
    for key, value in metadata or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            found = []
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    found.append(info)
            return found
    return []


class TestResponses:
    def test_encoded_response_is_protobufs_own_bytes(self, running):
        """Decide's pre-encoded response is byte for byte what protobuf would write for
        the same message, for every reason, and parses to the same decisions."""
        channel = running.channel
        raw = channel.unary_unary(DECIDE)(
            pb.DecideRequest(
                visitor_id="v", placements=["slot_0", "slot_1", "nope"]
            ).SerializeToString(),
            timeout=5,
        )
        message = pb.DecideResponse.FromString(raw)

        assert raw == message.SerializeToString()
        assert ["slot_0", "slot_1", "nope"] == [d.placement for d in message.decisions]
        assert pb.REASON_UNKNOWN_PLACEMENT == message.decisions[2].reason
        assert 3 == len({d.decision_id for d in message.decisions})


def _wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
