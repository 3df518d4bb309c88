"""Fuzzing every RPC of a real server (Hypothesis): arbitrary bytes and arbitrary
well-typed messages, with and without credentials, get only the statuses a client can
act on; the server stays up and logs at most one line per distinct error.

Requests go over a real channel to a server on 127.0.0.1:0 as raw bytes, so the client
never stands between the fuzzer and the server's parser. Messages are drawn from the
descriptors in ``protos`` (and health's and reflection's): every field of every type,
strings with control characters and characters outside the BMP, integers at the edges
of their type, NaN and infinities, unknown enum values, nested Structs (past the
server's depth limit and past protobuf's recursion limit), repeated fields and oneofs.
Ids are often the demo rules' own, so calls get past "unknown placement" and reach the
engine, the profile fold and the reports.

Runtime: ``DECIDE_FUZZ=long`` selects the "fuzz-long" settings profile (many more
examples); the default "fuzz" profile keeps the module well under 30 s.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import decision
from protos import decisioning_pb2 as pb

ADMIN_TOKEN = "fuzz-admin-token"
API_KEY = "fuzz-api-key"

ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""What a client may get back. DEADLINE_EXCEEDED is not in it: every call has a
deadline far beyond what any answer here takes, so running out of it means the server
hung. UNAVAILABLE, INTERNAL, UNKNOWN and UNIMPLEMENTED are not in it either."""

DEADLINE = 20.0

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("DECIDE_FUZZ_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-long",
    max_examples=int(os.environ.get("DECIDE_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz-long" if os.environ.get("DECIDE_FUZZ") == "long" else "fuzz")

# -- the RPCs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    """One method of the server: its path, request message and streaming shape."""

    path: str
    request: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


def _rpcs_of(method: MethodDescriptor) -> Rpc:
    return Rpc(
        f"/{method.containing_service.full_name}/{method.name}",
        method.input_type,
        method.client_streaming,
        method.server_streaming,
    )


SERVICES = (
    "DecisionService",
    "RulesAdmin",
    "EventService",
    "ProfileService",
    "InsightsService",
    "ActivationService",
)
RPCS = [
    _rpcs_of(method)
    for service in SERVICES
    for method in pb.DESCRIPTOR.services_by_name[service].methods
]
RPCS += [_rpcs_of(m) for m in health_pb2.DESCRIPTOR.services_by_name["Health"].methods]
_REFLECTION = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
RPCS += [_rpcs_of(m) for m in _REFLECTION.methods]
WATCH = "/grpc.health.v1.Health/Watch"
CHANGES = "/decisioning.v1.ActivationService/WatchSegmentChanges"
"""A stream that waits for segment changes for ever: fuzzed for how it starts."""
"""Answers one status and then waits for changes for ever: the fuzzer reads the first."""

# -- values -------------------------------------------------------------------------------

_DEMO = decision.demo_document()
VISITORS = ["v1", "v2", "v3", "customer-1"]
POOLS = {
    "placement": [p["id"] for p in _DEMO["placements"]],
    "campaign": [c["id"] for c in _DEMO["campaigns"]],
    "segment": [s["id"] for s in _DEMO["segments"]],
    "variant": [v["id"] for c in _DEMO["campaigns"] for v in c["variants"]] + ["holdout"],
    "visitor": VISITORS,
    "service": ["", "decisioning.v1.DecisionService", "decisioning.v1.RulesAdmin"],
}
"""Ids the server knows (demo rules, seeded visitors) by the field names that hold
them, so calls get past "unknown segment" and reach the engine, the fold and reports."""
IDS = [i for pool in POOLS.values() for i in pool]

NOW = time.time()

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
"""Any characters protobuf can carry: control characters, NUL, outside the BMP."""
_odd_text = st.sampled_from(
    ["\x00", "a\x00b", "\u202e", "\U0001f600" * 3, "x" * 300, "x" * 3000, " ", "$gt", "a.b"]
)
_ids = st.sampled_from(IDS)
_strings = st.one_of(_ids, _ids, _ids, _ids, _text, _odd_text)
"""Mostly known ids (one_of picks its branches about equally often), else anything."""

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.integers(-(2**60), 2**60),
    st.sampled_from([10**400, 2**53 + 1, -(2**63)]),
    _strings,
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_strings, inner, max_size=4),
    max_leaves=12,
)


def _mutated_demo(path_and_value: tuple[list[Any], Any]) -> str:
    """The demo rules with the value at one path replaced."""
    document = json.loads(json.dumps(_DEMO))
    steps, value = path_and_value
    node = document
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = value
    return json.dumps(document)


_demo_paths = st.sampled_from(
    [
        ["campaigns", 0, "priority"],
        ["campaigns", 1, "variants"],
        ["campaigns", 2, "audience"],
        ["campaigns", 0, "variants", 0, "weight"],
        ["campaigns", 0, "variants", 0, "content"],
        ["segments", 1, "filter"],
        ["segments", 2, "filter"],
        ["placements", 0, "fallback"],
        ["placements", 0, "id"],
        ["exclusion_groups"],
    ]
)
_json_text = st.one_of(
    _text,
    _json.map(lambda v: json.dumps(v, allow_nan=True)),
    st.tuples(_demo_paths, _json).map(_mutated_demo),
    st.integers(0, 200).map(lambda n: '{"$and":[' * n + "{}" + "]}" * n),
    st.just(json.dumps(_DEMO)),
)
"""For fields holding JSON text (rules documents, filters)."""


def _struct_value(value: Any) -> Any:
    """What Struct.update takes: numbers as floats (an int past 2^1023 would not fit)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) < 2**1000 else 1e308
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        return [_struct_value(v) for v in value]
    return {str(k): _struct_value(v) for k, v in value.items()}


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1.0}
    for _ in range(depth):
        node = {"n": node}
    return node


Fill = Callable[[Any], None]
"""Writes drawn values into a message in place. Messages are filled where they sit
(``parent.field``, ``parent.repeated.add()``) rather than built apart and copied in:
protobuf copies a message by parsing it, which fails past its own recursion limit, and
deeper than that is one of the things the server must refuse."""


def _struct_fill(value: dict[str, Any]) -> Fill:
    return lambda message: message.update(value)


_structs = st.one_of(
    st.dictionaries(_strings, _json, max_size=6).map(_struct_value),
    st.integers(0, 12).map(_nested),  # past MAX_STRUCT_DEPTH
    st.integers(30, 120).map(_nested),  # past protobuf's recursion limit
    st.just({f"k{i}": float(i) for i in range(300)}),  # past MAX_STRUCT_KEYS
).map(_struct_fill)


def _struct_from(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def _timestamp_fill(seconds_nanos: tuple[int, int]) -> Fill:
    def fill(message: Any) -> None:
        message.seconds, message.nanos = seconds_nanos

    return fill


_timestamps = st.tuples(
    st.one_of(
        st.integers(int(NOW) - 30 * 86400, int(NOW) + 3600),
        st.integers(-(2**63), 2**63 - 1),
        st.sampled_from([0, -1, 253402300799, 253402300800, -62135596800, -62135596801]),
    ),
    st.one_of(st.integers(0, 999_999_999), st.sampled_from([-1, 10**9, 2 * 10**9, -(2**31)])),
).map(_timestamp_fill)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, 0, 1, -1, 2**31, 2**53 + 1) if low <= v <= high]
    return st.one_of(
        st.integers(max(low, -3), min(high, 1000)), st.sampled_from(edges), st.integers(low, high)
    )


def _pool(name: str) -> list[str] | None:
    """The known ids a string field of this name holds, if any."""
    if name == "customer_id":
        return VISITORS
    return next((ids for key, ids in POOLS.items() if key in name), None)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        if field.name.endswith("_json"):
            return _json_text
        pool = _pool(field.name)
        if pool is None:
            return _strings
        known = st.sampled_from(pool)
        return st.one_of(known, known, known, known, _text, _odd_text)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        width = 64 if kind == FieldDescriptor.TYPE_DOUBLE else 32
        return st.one_of(st.floats(width=width), st.floats(0, 1000, width=width))
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), _integers(-(2**31), 2**31 - 1))
    low, high = _INT_RANGES[kind]
    return _integers(low, high)


_FILLS: dict[str, st.SearchStrategy[Fill]] = {}


def fills(descriptor: Descriptor) -> st.SearchStrategy[Fill]:
    """Arbitrary contents for a message of ``descriptor``'s type: every field and oneof
    drawn (each may stay unset)."""
    name = descriptor.full_name
    if name not in _FILLS:
        if name == "google.protobuf.Struct":
            strategy: st.SearchStrategy[Fill] = _structs
        elif name == "google.protobuf.Timestamp":
            strategy = _timestamps
        else:
            strategy = st.deferred(lambda: _fields(descriptor))
        if name == "decisioning.v1.Event":
            strategy = st.one_of(strategy, _plausible_events())
        _FILLS[name] = strategy
    return _FILLS[name]


def messages(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """Arbitrary messages of ``descriptor``'s type, serialized."""
    cls = message_factory.GetMessageClass(descriptor)

    def build(fill: Fill) -> bytes:
        message = cls()
        fill(message)
        return message.SerializeToString()  # type: ignore[no-any-return]

    return fills(descriptor).map(build)


def _field_fill(field: FieldDescriptor) -> st.SearchStrategy[Fill]:
    """Fills that set ``field`` (every element of a repeated one) to arbitrary values."""
    name = field.name
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        one = fills(field.message_type)
        if not field.is_repeated:
            return one.map(lambda fill: lambda m: fill(getattr(m, name)))

        def add_all(items: list[Fill]) -> Fill:
            def fill(message: Any) -> None:
                for item in items:
                    item(getattr(message, name).add())

            return fill

        return st.lists(one, max_size=4).map(add_all)
    if field.is_repeated:  # mostly short; up to 40: past MAX_PLACEMENTS (32)
        scalar = _scalar(field)
        values = st.one_of(st.lists(scalar, max_size=3), st.lists(scalar, max_size=40))
        return values.map(lambda vs: lambda m: getattr(m, name).extend(vs))
    return _scalar(field).map(lambda value: lambda m: setattr(m, name, value))


def _fields(descriptor: Descriptor) -> st.SearchStrategy[Fill]:
    """Fills for every field of ``descriptor``: each plain field set two times in three
    (an unset required field ends most calls at the first check), and each oneof left
    unset or set through one of its members."""
    plain = [
        f
        for f in descriptor.fields
        if f.containing_oneof is None or len(f.containing_oneof.fields) == 1
    ]
    oneofs = [o for o in descriptor.oneofs if len(o.fields) > 1]
    parts = [st.one_of(st.none(), _field_fill(f), _field_fill(f)) for f in plain]
    parts += [st.one_of(st.none(), *(_field_fill(f) for f in o.fields)) for o in oneofs]

    def combine(chosen: tuple[Fill | None, ...]) -> Fill:
        def fill(message: Any) -> None:
            for one in chosen:
                if one is not None:
                    one(message)

        return fill

    return st.tuples(*parts).map(combine)


_EVENT_SHAPES = {
    pb.EVENT_TYPE_SESSION_START: "session_start",
    pb.EVENT_TYPE_PAGE_VIEW: "page_view",
    pb.EVENT_TYPE_PRODUCT_VIEW: "product_view",
    pb.EVENT_TYPE_ADD_TO_CART: "cart",
    pb.EVENT_TYPE_REMOVE_FROM_CART: "cart",
    pb.EVENT_TYPE_PURCHASE: "purchase",
    pb.EVENT_TYPE_RETURN: "order_return",
    pb.EVENT_TYPE_CAMPAIGN_IMPRESSION: "campaign",
    pb.EVENT_TYPE_CAMPAIGN_CLICK: "campaign",
    pb.EVENT_TYPE_CAMPAIGN_CONVERSION: "campaign",
    pb.EVENT_TYPE_IDENTIFY: "identify",
    pb.EVENT_TYPE_CUSTOM: "custom",
}


def _plausible_events() -> st.SearchStrategy[Fill]:
    """Events whose type agrees with their properties and whose time is recent, so they
    get past the shape checks and into the profile fold."""
    event = pb.DESCRIPTOR.message_types_by_name["Event"]

    def one(kind: int) -> st.SearchStrategy[Fill]:
        name = _EVENT_SHAPES[kind]

        def combine(parts: tuple[str, str, int, Fill]) -> Fill:
            event_id, visitor, seconds, properties = parts

            def fill(message: Any) -> None:
                message.event_id, message.visitor_id, message.type = event_id, visitor, kind
                message.timestamp.seconds = seconds
                getattr(message, name).SetInParent()
                properties(getattr(message, name))

            return fill

        return st.tuples(
            st.one_of(st.uuids().map(str), _strings),
            st.one_of(st.sampled_from(VISITORS), _strings),
            st.integers(int(NOW) - 7 * 86400, int(NOW)),
            fills(event.fields_by_name[name].message_type),
        ).map(combine)

    return st.sampled_from(sorted(_EVENT_SHAPES)).flatmap(one)


# -- near-valid requests: one field of a request that works replaced ---------------------


def _recent_purchase(visitor: str) -> pb.Event:
    return pb.Event(
        event_id=f"near-{visitor}",
        visitor_id=visitor,
        type=pb.EVENT_TYPE_PURCHASE,
        timestamp=timestamp_pb2.Timestamp(seconds=int(NOW) - 120),
        purchase=pb.Purchase(order_id="near-1", value=25.0, articles=2),
    )


TEMPLATES: dict[str, Any] = {
    "Decide": pb.DecideRequest(
        visitor_id="v1",
        placements=POOLS["placement"],
        context=_struct_from({"device": "mobile", "page": {"type": "home"}}),
    ),
    "GetVisitorSegments": pb.GetVisitorSegmentsRequest(visitor_id="v1"),
    "ValidateRules": pb.ValidateRulesRequest(document_json=json.dumps(_DEMO)),
    "PublishRules": pb.PublishRulesRequest(document_json=json.dumps(_DEMO), comment="fuzz"),
    "GetRules": pb.GetRulesRequest(version=1),
    "ListVersions": pb.ListVersionsRequest(limit=10),
    "Rollback": pb.RollbackRequest(version=1, comment="fuzz"),
    "GetStatus": pb.GetStatusRequest(),
    "Track": pb.TrackRequest(events=[_recent_purchase("v1")]),
    "TrackStream": pb.TrackRequest(events=[_recent_purchase("v2")]),
    "GetProfile": pb.GetProfileRequest(visitor_id="v1"),
    "SetAttributes": pb.SetAttributesRequest(
        visitor_id="v2", attributes=_struct_from({"tier": "gold"})
    ),
    "DeleteVisitor": pb.DeleteVisitorRequest(visitor_id="v3"),
    "ExportVisitor": pb.ExportVisitorRequest(visitor_id="v1"),
    "CampaignReport": pb.CampaignReportRequest(campaign=POOLS["campaign"][0], by_segment=True),
    "SegmentReport": pb.SegmentReportRequest(segments=POOLS["segment"][:3]),
    "EstimateSegment": pb.EstimateSegmentRequest(filter_json='{"visits": {"$gte": 1}}'),
    "ExportSegment": pb.ExportSegmentRequest(segment=POOLS["segment"][0], page_size=2),
    "DecideBatch": pb.DecideBatchRequest(
        placements=POOLS["placement"][:1], segment=POOLS["segment"][0], page_size=2
    ),
    "WatchSegmentChanges": pb.WatchSegmentChangesRequest(from_start=True),
    "ListWebhookDeliveries": pb.ListWebhookDeliveriesRequest(limit=10),
    "RedeliverWebhook": pb.RedeliverWebhookRequest(delivery_id="no-such-delivery"),
    "Check": health_pb2.HealthCheckRequest(service=""),
    "List": health_pb2.HealthListRequest(),
    "Watch": health_pb2.HealthCheckRequest(service=""),
    "ServerReflectionInfo": reflection_pb2.ServerReflectionRequest(list_services=""),
}
"""A request each method answers with OK (before a fuzzed call changed the store)."""


Slot = tuple[tuple[str, ...], FieldDescriptor]


def _slots(message: Any, path: tuple[str, ...] = ()) -> list[Slot]:
    """Every field of ``message`` and of the messages set in it: (path to its message,
    field). A repeated message field is entered at its first element."""
    found = [(path, field) for field in message.DESCRIPTOR.fields]
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type.full_name in (
            "google.protobuf.Struct",
            "google.protobuf.Timestamp",
        ):
            continue
        inner = value[0] if field.is_repeated else value
        found += _slots(inner, (*path, field.name))
    return found


def near_valid(rpc: Rpc) -> st.SearchStrategy[bytes]:
    """The method's template with one field, anywhere in it, replaced by an arbitrary
    value of its type (or cleared)."""
    template = TEMPLATES[rpc.name]
    slots = _slots(template)
    if not slots:  # a request without fields: only its template
        return st.just(template.SerializeToString())

    def edit(choice: tuple[int, Fill | None]) -> bytes:
        index, fill = choice
        path, field = slots[index]
        message = type(template)()
        message.CopyFrom(template)
        node = message
        for name in path:
            node = getattr(node, name)
            if hasattr(node, "add"):  # a repeated field: its first element
                node = node[0]
        node.ClearField(field.name)
        if fill is not None:
            fill(node)
        return message.SerializeToString()  # type: ignore[no-any-return]

    def fill_for(index: int) -> st.SearchStrategy[tuple[int, Fill | None]]:
        field = slots[index][1]
        return st.tuples(st.just(index), st.one_of(st.none(), _field_fill(field)))

    return st.integers(0, len(slots) - 1).flatmap(fill_for).map(edit)


# -- bytes --------------------------------------------------------------------------------


def _mutate(raw_and_edit: tuple[bytes, tuple[int, int, bytes]]) -> bytes:
    raw, (cut, keep, extra) = raw_and_edit
    cut %= len(raw) + 1
    return raw[:cut] + extra + raw[cut + keep :]


def arbitrary_bytes(rpc: Rpc) -> st.SearchStrategy[bytes]:
    """Bytes that are rarely a valid message: random, or a valid one cut and spliced."""
    valid = messages(rpc.request)
    edits = st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.binary(max_size=12))
    return st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"\xff\xff\xff\xff\x0f\x01\x02", b"\x0a\xff\xff\xff\xff\x0f", b"\x80"]),
        st.tuples(valid, edits).map(_mutate),
    )


_BOTH = (("x-api-key", API_KEY), ("authorization", f"Bearer {ADMIN_TOKEN}"))
_OTHER_CREDENTIALS = st.sampled_from(
    [
        (),
        (("x-api-key", API_KEY),),
        (("authorization", f"Bearer {ADMIN_TOKEN}"),),
        (("x-api-key", API_KEY + "x"),),
        (("authorization", f"Bearer {ADMIN_TOKEN[:-1]}"),),
        (("authorization", "Basic x"),),
        (("authorization", "Bearer"),),
        (("x-decide-author", " %00 " * 40), ("x-decide-author-bin", b"\xff\x00")),
    ]
)
CREDENTIALS = st.one_of(st.just(_BOTH), st.just(_BOTH), _OTHER_CREDENTIALS)
"""Both credentials two times in three (so calls get past the edge), else none, each
one alone, near misses and malformed metadata."""

# -- the server ---------------------------------------------------------------------------


@dataclass
class FuzzTarget:
    """The fuzzed server and a channel to it."""

    server: Any
    channel: grpc.Channel

    def call(self, rpc: Rpc, payloads: list[bytes], metadata: Any) -> grpc.StatusCode:
        """Send ``payloads`` (one for a unary request) as raw bytes; the final status."""
        channel = self.channel
        try:
            if rpc.client_streaming and rpc.server_streaming:
                for _ in channel.stream_stream(rpc.path)(
                    iter(payloads), metadata=metadata, timeout=DEADLINE
                ):
                    pass
            elif rpc.client_streaming:
                channel.stream_unary(rpc.path)(iter(payloads), metadata=metadata, timeout=DEADLINE)
            elif rpc.path == WATCH:
                call = channel.unary_stream(rpc.path)(
                    payloads[0], metadata=metadata, timeout=DEADLINE
                )
                next(call)  # the current status; then it waits for changes for ever
                call.cancel()
            elif rpc.path == CHANGES:
                call = channel.unary_stream(rpc.path)(
                    payloads[0], metadata=metadata, timeout=DEADLINE
                )
                # Its backlog, then it waits for new changes for ever: a refusal comes
                # at once, so a call still open after a moment was accepted.
                timer = threading.Timer(1.0, call.cancel)
                timer.start()
                try:
                    for _ in call:
                        pass
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.CANCELLED:
                        raise
                finally:
                    timer.cancel()
            elif rpc.server_streaming:
                for _ in channel.unary_stream(rpc.path)(
                    payloads[0], metadata=metadata, timeout=DEADLINE
                ):
                    pass
            else:
                channel.unary_unary(rpc.path)(payloads[0], metadata=metadata, timeout=DEADLINE)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    def restore(self) -> None:
        """Publish the demo rules and seed the visitors again: fuzzed calls may have
        replaced the rules (PublishRules, Rollback) or deleted a visitor, and calls reach
        deeper code with known segments, campaigns and visitors."""
        from protos import decisioning_pb2_grpc as pb_grpc

        admin = pb_grpc.RulesAdminStub(self.channel)
        request = pb.PublishRulesRequest(document_json=json.dumps(_DEMO), comment="fuzz: reset")
        admin.PublishRules(request, metadata=_BOTH, timeout=DEADLINE)
        _seed(self.channel)

    def health(self) -> int:
        """The overall health status the server reports."""
        stub = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        response = stub(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return response.status  # type: ignore[no-any-return]


def _seed(channel: grpc.Channel) -> None:
    """Purchases and exposures for visitors v1-v3 (and exposures for customer-1), so
    reads and reports find data. Idempotent: the events have fixed ids."""
    from protos import decisioning_pb2_grpc as pb_grpc

    stamp = timestamp_pb2.Timestamp(seconds=int(NOW) - 60)
    batch = [
        pb.Event(
            event_id=f"seed-{v}-{i}",
            visitor_id=v,
            type=pb.EVENT_TYPE_PURCHASE,
            timestamp=stamp,
            purchase=pb.Purchase(order_id=f"o-{v}-{i}", value=40.0 * (i + 1), articles=1),
        )
        for v in VISITORS[:3]
        for i in range(2)
    ]
    pb_grpc.EventServiceStub(channel).Track(
        pb.TrackRequest(events=batch), metadata=_BOTH, timeout=DEADLINE
    )
    decisions = pb_grpc.DecisionServiceStub(channel)
    for visitor in VISITORS:
        request = pb.DecideRequest(visitor_id=visitor, placements=POOLS["placement"])
        decisions.Decide(request, metadata=_BOTH, timeout=DEADLINE)


SERVER_KINDS = {
    "keys": "an admin token and an API key: decision and event calls need the key",
    "open": "an admin token, no API keys: decision and event calls are open, and only the"
    " admin token shows a visitor's segments",
}
OPEN_SERVICES = ("decisioning.v1.DecisionService", "decisioning.v1.EventService")
"""Whose answers depend on whether API keys are configured: fuzzed on both servers."""
CASES = [(rpc, "keys") for rpc in RPCS] + [
    (rpc, "open") for rpc in RPCS if rpc.path.split("/")[1] in OPEN_SERVICES
]


@pytest.fixture(scope="module")
def fuzz_targets(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], FuzzTarget]]:
    """``target(kind)``: a demo server of that kind (``SERVER_KINDS``) on 127.0.0.1:0,
    seeded, started on first use and stopped when the module ends."""
    from server.app import create_server
    from server.config import ServerConfig

    started: dict[str, FuzzTarget] = {}

    def target(kind: str) -> FuzzTarget:
        if kind not in started:
            folder: Path = tmp_path_factory.mktemp(f"fuzz-{kind}")
            config = ServerConfig(
                db_path=str(folder / "rules.db"),
                host="127.0.0.1",
                port=0,
                demo=True,
                admin_token=ADMIN_TOKEN,
                api_keys=(API_KEY,) if kind == "keys" else (),
                poll_interval=0.05,
                grace=0.0,
                scan_processes=1,
            )
            server, port = create_server(config)
            started[kind] = FuzzTarget(server, grpc.insecure_channel(f"127.0.0.1:{port}"))
            _seed(started[kind].channel)
        return started[kind]

    try:
        yield target
    finally:
        for running in started.values():
            running.channel.close()
            running.server.stop(None).wait(10)


def _errors_per_kind(records: list[logging.LogRecord]) -> Counter[tuple[str, str, str]]:
    """ERROR lines by logger, message (without its repeat count) and exception type."""
    return Counter(
        (
            r.name,
            r.getMessage().split(" (", 1)[0],
            r.exc_info[0].__name__ if r.exc_info and r.exc_info[0] else "",
        )
        for r in records
        if r.levelno >= logging.ERROR
    )


def _fuzz(
    target: FuzzTarget, rpc: Rpc, payloads: st.SearchStrategy[list[bytes]], caplog: Any
) -> None:
    """Send drawn payloads with drawn credentials: every status allowed; afterwards the
    server is SERVING and has logged no ERROR line twice."""
    target.restore()
    caplog.set_level(logging.WARNING)

    @FUZZ
    @given(payloads=payloads, metadata=CREDENTIALS)
    def one(payloads: list[bytes], metadata: Any) -> None:
        code = target.call(rpc, payloads, metadata)

        assert code in ALLOWED, f"{rpc.path} answered {code.name}"

    one()

    assert health_pb2.HealthCheckResponse.SERVING == target.health()
    repeated = {kind: n for kind, n in _errors_per_kind(caplog.records).items() if n > 1}
    assert {} == repeated


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rpc", "kind"), CASES, ids=[f"{kind}:{rpc.path.lstrip('/')}" for rpc, kind in CASES]
)
class TestFuzz:
    def test_arbitrary_bytes(self, fuzz_targets, rpc: Rpc, kind: str, caplog):
        """Arbitrary bytes as the request, with or without credentials: an allowed status."""
        one = arbitrary_bytes(rpc)
        payloads = (
            st.lists(one, min_size=1, max_size=3)
            if rpc.client_streaming
            else one.map(lambda raw: [raw])
        )

        _fuzz(fuzz_targets(kind), rpc, payloads, caplog)

    def test_arbitrary_messages(self, fuzz_targets, rpc: Rpc, kind: str, caplog):
        """Arbitrary and near-valid messages, with or without credentials: an allowed status."""
        one = st.one_of(messages(rpc.request), near_valid(rpc))
        payloads = (
            st.lists(one, max_size=3) if rpc.client_streaming else one.map(lambda raw: [raw])
        )

        _fuzz(fuzz_targets(kind), rpc, payloads, caplog)


def test_every_rpc_is_fuzzed(fuzz_targets):
    """The fuzzed methods are every method of every service the server lists by reflection."""
    from google.protobuf import descriptor_pool
    from grpc_reflection.v1alpha import reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(fuzz_targets("keys").channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = stub.ServerReflectionInfo(iter([request]), timeout=DEADLINE)
    pool = descriptor_pool.Default()

    expected = sorted(
        f"/{service.name}/{method.name}"
        for service in response.list_services_response.service
        for method in pool.FindServiceByName(service.name).methods
    )

    assert expected == sorted(r.path for r in RPCS)
