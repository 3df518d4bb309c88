"""grpc.health.v1 and server reflection, on a real server."""

from __future__ import annotations

import logging
import sqlite3

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos import decisioning_pb2 as pb

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ("", "decisioning.v1.DecisionService", "decisioning.v1.RulesAdmin")


def _health(running, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(running.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


@pytest.fixture
def bad_store(db_path, invalid_rules):
    """A store file whose only (active) version is invalid, written around the API."""
    from server.rules.sqlite import SQLiteRulesStore as RulesStore

    RulesStore(db_path, seed=False).close()
    raw = sqlite3.connect(db_path)
    try:
        with raw:
            raw.execute(
                "INSERT INTO versions (version, document, content_hash, created_at)"
                " VALUES (1, ?, 'x', '2026-01-01T00:00:00Z')",
                [invalid_rules],
            )
            raw.execute("INSERT INTO active (id, version, updated_at) VALUES (1, 1, 'now')")
    finally:
        raw.close()
    return db_path


class TestHealth:
    def test_serving_once_rules_are_loaded(self, running):
        """With a good store, the overall and per-service statuses are SERVING."""
        assert [SERVING] * 3 == [_health(running, s) for s in SERVICES]

    def test_not_serving_until_the_first_good_load(
        self, start_server, bad_store, make_rules, admin_metadata
    ):
        """Decisions are NOT_SERVING until a good ruleset loads; the admin API serves."""
        server = start_server()
        before = [_health(server, s) for s in SERVICES]

        server.admin.PublishRules(
            pb.PublishRulesRequest(document_json=make_rules("fixed")), metadata=admin_metadata
        )
        after = [_health(server, s) for s in SERVICES]

        assert [NOT_SERVING, NOT_SERVING, SERVING] == before
        assert [SERVING] * 3 == after

    def test_not_serving_on_shutdown(self, running):
        """A watcher sees NOT_SERVING as soon as shutdown begins."""
        stub = health_pb2_grpc.HealthStub(running.channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert SERVING == next(watch).status

        stopped = running.server.stop(5)
        update = next(watch).status
        watch.cancel()

        assert NOT_SERVING == update
        assert stopped.wait(5)

    def test_unknown_service_is_not_found(self, running):
        """Checking a service the server does not know is NOT_FOUND."""
        with pytest.raises(grpc.RpcError) as info:
            _health(running, "no.such.Service")

        assert grpc.StatusCode.NOT_FOUND == info.value.code()


class TestReflection:
    def test_lists_every_service(self, running):
        """Reflection lists the decide services, health and reflection itself."""
        stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")

        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))

        names = sorted(s.name for s in response.list_services_response.service)
        assert [
            "decisioning.v1.ActivationService",
            "decisioning.v1.DecisionService",
            "decisioning.v1.EventService",
            "decisioning.v1.InsightsService",
            "decisioning.v1.ProfileService",
            "decisioning.v1.RulesAdmin",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ] == names

    def test_describes_the_decide_messages(self, running):
        """Reflection serves the proto file, so grpcurl can build requests."""
        stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="decisioning.v1.DecisionService"
        )

        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))

        assert response.file_descriptor_response.file_descriptor_proto


MALFORMED = b"\xff\xff\xff\xff\x0f\x01\x02"
"""Bytes that are no message of any type: a field tag past the largest field number."""


class TestMalformedRequests:
    """Health and reflection are registered by their packages' helpers; bytes that do
    not parse must get the answer the decide services give (found by tests/server/
    test_fuzz.py: UNKNOWN and an ERROR traceback per call before)."""

    @pytest.mark.parametrize(
        "path", ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"]
    )
    def test_health_is_invalid_argument_and_logs_nothing(self, running, path, caplog):
        """Malformed bytes to Check or Watch: INVALID_ARGUMENT naming the type, no log."""
        caplog.set_level(logging.INFO)
        call = (
            running.channel.unary_stream(path)
            if path.endswith("Watch")
            else running.channel.unary_unary(path)
        )

        with pytest.raises(grpc.RpcError) as info:
            result = call(MALFORMED, timeout=5)
            if path.endswith("Watch"):
                next(result)

        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
        assert "not a valid HealthCheckRequest message" in info.value.details()
        assert [] == [r for r in caplog.records if r.levelno >= logging.WARNING]

    def test_reflection_stream_is_invalid_argument_and_logs_nothing(self, running, caplog):
        """A malformed message in a reflection stream: INVALID_ARGUMENT, no log."""
        caplog.set_level(logging.INFO)
        call = running.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        )

        with pytest.raises(grpc.RpcError) as info:
            list(call(iter([MALFORMED]), timeout=5))

        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
        assert "not a valid ServerReflectionRequest message" in info.value.details()
        assert [] == [r for r in caplog.records if r.levelno >= logging.WARNING]

    def test_list_answers_every_status(self, running, caplog):
        """Health/List names every service's status (it was UNIMPLEMENTED with a traceback)."""
        caplog.set_level(logging.INFO)
        stub = health_pb2_grpc.HealthStub(running.channel)

        response = stub.List(health_pb2.HealthListRequest(), timeout=5)

        expected = {
            "": SERVING,
            "decisioning.v1.DecisionService": SERVING,
            "decisioning.v1.RulesAdmin": SERVING,
            "decisioning.v1.EventService": SERVING,
            "decisioning.v1.ProfileService": SERVING,
            "decisioning.v1.InsightsService": SERVING,
            "decisioning.v1.ActivationService": SERVING,
        }
        assert expected == {name: s.status for name, s in response.statuses.items()}
        assert [] == [r for r in caplog.records if r.levelno >= logging.WARNING]

    def test_unknown_method_names_are_not_kept(self):
        """1,000 unknown method names leave the guard's handler cache as it was."""
        from collections import namedtuple

        from server.api.handlers import _GuardedGeneric
        from server.api.status import ErrorLog

        async def check(request, context):
            return health_pb2.HealthCheckResponse()

        inner = grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    check, request_deserializer=health_pb2.HealthCheckRequest.FromString
                )
            },
        )
        guarded = _GuardedGeneric(inner, ErrorLog())
        details = namedtuple("Details", "method invocation_metadata")
        known = guarded.service(details("/grpc.health.v1.Health/Check", ()))

        unknown = [
            guarded.service(details(f"/grpc.health.v1.Health/NoSuch{i}", ())) for i in range(1000)
        ]

        assert known is not None
        assert ([None] * 1000, ["/grpc.health.v1.Health/Check"]) == (
            unknown,
            list(guarded._guarded),
        )
